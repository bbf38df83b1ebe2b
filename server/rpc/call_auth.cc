#include "server/rpc/call_auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace qcal::server {

absl::StatusOr<absl::string_view> BearerToken(absl::string_view authorization) {
  authorization = absl::StripAsciiWhitespace(authorization);
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not 'Bearer TOKEN' (this server takes bearer tokens, "
        "--auth-tokens)");
  }
  return absl::StripLeadingAsciiWhitespace(authorization.substr(kScheme.size()));
}

absl::StatusOr<Grant> AuthenticateCall(const grpc::ServerContext& context,
                                       const TokenAuthority* tokens) {
  if (tokens == nullptr) return OpenGrant();
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find("authorization");
  if (found == metadata.end()) {
    return absl::UnauthenticatedError(
        "this server takes bearer tokens (--auth-tokens): the call carries no 'authorization: "
        "Bearer TOKEN' metadata (qcal: --token or $QCAL_TOKEN)");
  }
  absl::StatusOr<absl::string_view> token =
      BearerToken(absl::string_view(found->second.data(), found->second.size()));
  if (!token.ok()) return token.status();
  return tokens->Authenticate(*token);
}

absl::StatusOr<Grant> AuthorizeCall(const grpc::ServerContext& context,
                                    const TokenAuthority* tokens, Method method) {
  absl::StatusOr<Grant> grant = AuthenticateCall(context, tokens);
  if (!grant.ok()) return grant.status();
  if (absl::Status allowed = CheckMethod(*grant, method); !allowed.ok()) return allowed;
  return grant;
}

}  // namespace qcal::server
