#include "server/auth/permissions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

// The README's roles table, written out: every method and the least role it needs.
const std::map<std::string, Role>& ExpectedRoles() {
  static const auto* roles = new std::map<std::string, Role>{
      {"GetModel", Role::kReader},     {"ListModels", Role::kReader},
      {"GetHistogram", Role::kReader}, {"GetAmaxTable", Role::kReader},
      {"SaveState", Role::kReader},    {"CreateModel", Role::kTrainer},
      {"Record", Role::kTrainer},      {"ComputeAmax", Role::kTrainer},
      {"UploadOnnx", Role::kTrainer},  {"ExportOnnx", Role::kTrainer},
      {"Commit", Role::kTrainer},      {"DeleteModel", Role::kAdmin},
      {"ResetModel", Role::kAdmin},    {"LoadState", Role::kAdmin}};
  return *roles;
}

TEST(PermissionsTest, EveryMethodNeedsTheRoleOfTheTable) {
  EXPECT_EQ(std::size(kAllMethods), ExpectedRoles().size());
  for (const Method method : kAllMethods) {
    const std::string name = MethodName(method);
    ASSERT_TRUE(ExpectedRoles().count(name)) << name;
    EXPECT_EQ(RequiredRole(method), ExpectedRoles().at(name)) << name;
    for (const Role role : {Role::kReader, Role::kTrainer, Role::kAdmin}) {
      const absl::Status status = CheckCall(Grant{.role = role}, method, "m");
      const bool allowed = static_cast<int>(role) >= static_cast<int>(ExpectedRoles().at(name));
      EXPECT_EQ(status.ok(), allowed) << name << " as " << RoleName(role);
      if (!allowed) {
        EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
        EXPECT_THAT(std::string(status.message()),
                    HasSubstr(absl::StrCat("model 'm', ", name, " needs the ",
                                           RoleName(ExpectedRoles().at(name)),
                                           " role; this token's role is ", RoleName(role))));
      }
    }
  }
}

TEST(PermissionsTest, PrefixLimitsTheModels) {
  const Grant tenant{.role = Role::kAdmin, .model_prefix = "team-a/"};
  EXPECT_TRUE(CheckCall(tenant, Method::kDeleteModel, "team-a/resnet").ok());
  EXPECT_TRUE(CheckCall(tenant, Method::kDeleteModel, "team-a/").ok());
  const absl::Status other = CheckCall(tenant, Method::kGetModel, "team-b/resnet");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(other.message(),
            "model 'team-b/resnet', GetModel: this token is limited to the models whose names "
            "start with 'team-a/'");
  EXPECT_FALSE(CoversModel(tenant, "team-a"));
  EXPECT_TRUE(CoversModel(OpenGrant(), "anything"));
  EXPECT_TRUE(CheckCall(OpenGrant(), Method::kLoadState, "x").ok());
}

}  // namespace
}  // namespace qcal::server
