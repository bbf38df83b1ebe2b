// The roles a bearer token carries (README, "Security"), each allowed what the one before it is,
// and more: reader < trainer < admin.
#ifndef QCAL_SERVER_AUTH_ROLE_H_
#define QCAL_SERVER_AUTH_ROLE_H_

#include <optional>

#include "absl/strings/string_view.h"

namespace qcal::server {

enum class Role { kReader = 0, kTrainer = 1, kAdmin = 2 };

// "reader", "trainer", "admin".
inline const char* RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kTrainer:
      return "trainer";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

// The role named `name` exactly (lower case), or none.
inline std::optional<Role> RoleFromName(absl::string_view name) {
  if (name == "reader") return Role::kReader;
  if (name == "trainer") return Role::kTrainer;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

}  // namespace qcal::server

#endif  // QCAL_SERVER_AUTH_ROLE_H_
