// The gRPC side of bearer tokens: reads a call's "authorization: Bearer TOKEN" metadata and asks
// the TokenAuthority (server/auth/) for its grant. Each Calibration handler calls it first, with
// its method (and, once known, the model), so the rule lives in one table
// (auth/permissions.h) and grpc.health.v1, a service of its own, stays open. A server
// interceptor or AuthMetadataProcessor could not see the model of a streaming call, which comes
// in the first message.
#ifndef QCAL_SERVER_RPC_CALL_AUTH_H_
#define QCAL_SERVER_RPC_CALL_AUTH_H_

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "server/auth/permissions.h"
#include "server/auth/token_authority.h"

namespace qcal::server {

// The call's grant: OpenGrant() when `tokens` is null (no --auth-tokens). UNAUTHENTICATED when
// the call carries no "authorization" metadata, one that is not "Bearer TOKEN" (the scheme in any
// case), or a token the authority does not know.
absl::StatusOr<Grant> AuthenticateCall(const grpc::ServerContext& context,
                                       const TokenAuthority* tokens);

// AuthenticateCall, then CheckMethod's PERMISSION_DENIED when the role may not call `method`: for
// calls whose model comes later (streams) or that have none (ListModels).
absl::StatusOr<Grant> AuthorizeCall(const grpc::ServerContext& context,
                                    const TokenAuthority* tokens, Method method);

// The token of an "authorization" value "Bearer TOKEN" (scheme case-insensitive, blanks around
// TOKEN ignored); UNAUTHENTICATED otherwise. Shared with /metrics, whose header has the same form.
absl::StatusOr<absl::string_view> BearerToken(absl::string_view authorization);

}  // namespace qcal::server

#endif  // QCAL_SERVER_RPC_CALL_AUTH_H_
