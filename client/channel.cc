#include "client/channel.h"

#include <grpcpp/support/client_interceptor.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "qcal/tls_pem.h"

namespace qcal::internal {
namespace {

// The whole of a small PEM file; INVALID_ARGUMENT naming the option and the path.
absl::StatusOr<std::string> ReadPem(const char* option, const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, " file '", path, "' is a directory, not a PEM file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", option, " file '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad() || text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, " file '", path, "' holds no PEM block"));
  }
  return text.str();
}

// Adds "authorization: Bearer TOKEN" to each call's initial metadata.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class TokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(const std::string& token)
      : header_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(&header_);
  }

 private:
  // The channel owns the factory and outlives its calls' interceptors.
  const std::string header_;
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const ClientOptions& options) {
  if (options.tls_ca.empty()) {
    if (!options.tls_cert.empty() || !options.tls_key.empty()) {
      return absl::InvalidArgumentError(
          "tls_cert and tls_key (--tls-cert, --tls-key) need tls_ca (--tls-ca): the CA that "
          "signed the server's certificate");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert and tls_key (--tls-cert, --tls-key) go together: the client's certificate "
        "and its key");
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> pem = ReadPem("tls_ca (--tls-ca)", options.tls_ca);
  if (!pem.ok()) return pem.status();
  if (absl::Status bad = CheckCertificatePem("tls_ca (--tls-ca)", options.tls_ca, *pem);
      !bad.ok()) {
    return bad;
  }
  ssl.pem_root_certs = *std::move(pem);
  if (!options.tls_cert.empty()) {
    pem = ReadPem("tls_cert (--tls-cert)", options.tls_cert);
    if (!pem.ok()) return pem.status();
    ssl.pem_cert_chain = *std::move(pem);
    pem = ReadPem("tls_key (--tls-key)", options.tls_key);
    if (!pem.ok()) return pem.status();
    ssl.pem_private_key = *std::move(pem);
    // gRPC would say only "empty address list" for a key that is not the certificate's.
    if (absl::Status bad = CheckKeyMatchesCertificate("tls_cert (--tls-cert)", options.tls_cert,
                                                      ssl.pem_cert_chain, "tls_key (--tls-key)",
                                                      options.tls_key, ssl.pem_private_key);
        !bad.ok()) {
      return bad;
    }
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

// gRPC's own retries (gRFC A6) for the one-off calls: after a server restart the channel spends
// up to its reconnect backoff (2 s) failing calls at once with UNAVAILABLE, which a long-lived
// Client would otherwise pass to its caller. Four retries, 0.2 s doubling to 1.6 s, outlast it.
// Only calls that a second try cannot make wrong: DeleteModel is left out (a delete whose file
// removal failed is UNAVAILABLE with the model gone; a retry would say NOT_FOUND), and the
// streams, whose sessions resend themselves (record_sender.h).
constexpr char kRetryServiceConfig[] = R"json({
  "methodConfig": [{
    "name": [
      {"service": "qcal.v1.Calibration", "method": "CreateModel"},
      {"service": "qcal.v1.Calibration", "method": "GetModel"},
      {"service": "qcal.v1.Calibration", "method": "ListModels"},
      {"service": "qcal.v1.Calibration", "method": "ResetModel"},
      {"service": "qcal.v1.Calibration", "method": "ComputeAmax"},
      {"service": "qcal.v1.Calibration", "method": "GetAmaxTable"},
      {"service": "qcal.v1.Calibration", "method": "GetHistogram"},
      {"service": "qcal.v1.Calibration", "method": "Commit"}
    ],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.2s",
      "maxBackoff": "1.6s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
})json";

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address,
                                                           const ClientOptions& options) {
  for (const char c : options.token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "the token (token, --token or $QCAL_TOKEN) holds a byte outside printable ASCII or a "
          "blank");
    }
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // A session reconnects after a server restart (record_sender.h); the channel's own reconnect
  // backoff (gRPC's default grows to 120 s) must not keep it failing long after the server is
  // back.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetServiceConfigJSON(kRetryServiceConfig);
  if (options.token.empty()) return grpc::CreateCustomChannel(address, *credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<TokenInterceptorFactory>(options.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, *credentials, args,
                                                                 std::move(factories));
}

}  // namespace qcal::internal
