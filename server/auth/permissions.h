// Who may call what (README, "Security"): the one table of which role each Calibration RPC needs,
// and the model-prefix rule. Free of gRPC types: the RPC front-end names the method and the model
// and maps the Status.
//
//   QCAL_RETURN_IF_ERROR(CheckCall(grant, Method::kDeleteModel, request.model()));
#ifndef QCAL_SERVER_AUTH_PERMISSIONS_H_
#define QCAL_SERVER_AUTH_PERMISSIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/auth/role.h"

namespace qcal::server {

// The RPCs of qcal.v1.Calibration (grpc.health.v1 is open to all and not listed).
enum class Method {
  kCreateModel,
  kGetModel,
  kListModels,
  kDeleteModel,
  kResetModel,
  kRecord,
  kComputeAmax,
  kGetAmaxTable,
  kGetHistogram,
  kUploadOnnx,
  kExportOnnx,
  kSaveState,
  kLoadState,
  kCommit,
};

inline constexpr Method kAllMethods[] = {
    Method::kCreateModel,  Method::kGetModel,   Method::kListModels,  Method::kDeleteModel,
    Method::kResetModel,   Method::kRecord,     Method::kComputeAmax, Method::kGetAmaxTable,
    Method::kGetHistogram, Method::kUploadOnnx, Method::kExportOnnx,  Method::kSaveState,
    Method::kLoadState,    Method::kCommit};

// The RPC's name, e.g. "DeleteModel".
const char* MethodName(Method method);

// The least role that may call `method`:
//   reader:  GetModel, ListModels, GetHistogram, GetAmaxTable, SaveState
//   trainer: CreateModel, Record, ComputeAmax, UploadOnnx, ExportOnnx, Commit
//   admin:   DeleteModel, ResetModel, LoadState
Role RequiredRole(Method method);

// What an authenticated call may do: its token's role and model prefix.
struct Grant {
  Role role = Role::kAdmin;
  // Empty: every model.
  std::string model_prefix;
};

// The grant of a server without --auth-tokens: everything.
inline Grant OpenGrant() { return Grant{}; }

// True when `grant` reaches `model` (its name starts with the prefix). ListModels lists only these.
bool CoversModel(const Grant& grant, absl::string_view model);

// OK when the grant's role may call `method`; PERMISSION_DENIED "METHOD needs the ROLE role; this
// token's role is ROLE" otherwise.
absl::Status CheckMethod(const Grant& grant, Method method);

// CheckMethod, then PERMISSION_DENIED "model 'MODEL', METHOD: this token is limited to the models
// whose names start with 'PREFIX'" when the prefix does not cover `model` (the name escaped and
// cut, as in every message).
absl::Status CheckCall(const Grant& grant, Method method, absl::string_view model);

}  // namespace qcal::server

#endif  // QCAL_SERVER_AUTH_PERMISSIONS_H_
