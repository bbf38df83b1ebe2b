#include "server/auth/permissions.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/base/names.h"

namespace qcal::server {

const char* MethodName(Method method) {
  switch (method) {
    case Method::kCreateModel:
      return "CreateModel";
    case Method::kGetModel:
      return "GetModel";
    case Method::kListModels:
      return "ListModels";
    case Method::kDeleteModel:
      return "DeleteModel";
    case Method::kResetModel:
      return "ResetModel";
    case Method::kRecord:
      return "Record";
    case Method::kComputeAmax:
      return "ComputeAmax";
    case Method::kGetAmaxTable:
      return "GetAmaxTable";
    case Method::kGetHistogram:
      return "GetHistogram";
    case Method::kUploadOnnx:
      return "UploadOnnx";
    case Method::kExportOnnx:
      return "ExportOnnx";
    case Method::kSaveState:
      return "SaveState";
    case Method::kLoadState:
      return "LoadState";
    case Method::kCommit:
      return "Commit";
  }
  return "unknown";
}

Role RequiredRole(Method method) {
  switch (method) {
    case Method::kGetModel:
    case Method::kListModels:
    case Method::kGetHistogram:
    case Method::kGetAmaxTable:
    case Method::kSaveState:
      return Role::kReader;
    case Method::kCreateModel:
    case Method::kRecord:
    case Method::kComputeAmax:
    case Method::kUploadOnnx:
    case Method::kExportOnnx:
    case Method::kCommit:
      return Role::kTrainer;
    case Method::kDeleteModel:
    case Method::kResetModel:
    case Method::kLoadState:
      return Role::kAdmin;
  }
  return Role::kAdmin;  // Unreachable; the strictest for safety.
}

bool CoversModel(const Grant& grant, absl::string_view model) {
  return absl::StartsWith(model, grant.model_prefix);
}

absl::Status CheckMethod(const Grant& grant, Method method) {
  const Role needed = RequiredRole(method);
  if (static_cast<int>(grant.role) >= static_cast<int>(needed)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(MethodName(method), " needs the ",
                                                  RoleName(needed), " role; this token's role is ",
                                                  RoleName(grant.role)));
}

absl::Status CheckCall(const Grant& grant, Method method, absl::string_view model) {
  if (absl::Status status = CheckMethod(grant, method); !status.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("model '", ShortForMessage(model), "', ", status.message()));
  }
  if (CoversModel(grant, model)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("model '", ShortForMessage(model), "', ", MethodName(method),
                   ": this token is limited to the models whose names start with '",
                   ShortForMessage(grant.model_prefix), "'"));
}

}  // namespace qcal::server
