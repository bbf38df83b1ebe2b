#include "server/auth/token_authority.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace qcal::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class TokenAuthorityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/qcal_tokens_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/tokens";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  void Write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }

  std::string dir_;
  std::string path_;
};

TEST_F(TokenAuthorityTest, AuthenticatesKnownTokensOnly) {
  Write("reader reader-token-0123456789\ntrainer trainer-token-0123456789 team-a/\n");
  absl::StatusOr<std::unique_ptr<TokenAuthority>> tokens = TokenAuthority::FromFile(path_);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)->size(), 2u);
  absl::StatusOr<Grant> reader = (*tokens)->Authenticate("reader-token-0123456789");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(reader->role, Role::kReader);
  EXPECT_EQ(reader->model_prefix, "");
  absl::StatusOr<Grant> trainer = (*tokens)->Authenticate("trainer-token-0123456789");
  ASSERT_TRUE(trainer.ok());
  EXPECT_EQ(trainer->role, Role::kTrainer);
  EXPECT_EQ(trainer->model_prefix, "team-a/");
  for (const char* wrong :
       {"", "reader-token-012345678", "reader-token-0123456789x", "READER-TOKEN-0123456789"}) {
    absl::StatusOr<Grant> refused = (*tokens)->Authenticate(wrong);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << wrong;
  }
}

TEST_F(TokenAuthorityTest, ReloadSwapsTheTableAndAFailedReloadKeepsTheOld) {
  Write("admin old-token-0123456789abc\n");
  absl::StatusOr<std::unique_ptr<TokenAuthority>> tokens = TokenAuthority::FromFile(path_);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  Write("admin new-token-0123456789abc\n");
  ASSERT_TRUE((*tokens)->Reload().ok());
  EXPECT_FALSE((*tokens)->Authenticate("old-token-0123456789abc").ok());
  EXPECT_TRUE((*tokens)->Authenticate("new-token-0123456789abc").ok());

  Write("admin new-token-0123456789abc\nsuperuser next-token-0123456789\n");
  const absl::Status failed = (*tokens)->Reload();
  EXPECT_EQ(failed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(failed.message()), HasSubstr("line 2: the first field is no role"));
  EXPECT_THAT(std::string(failed.message()), HasSubstr(path_));
  EXPECT_THAT(std::string(failed.message()), Not(HasSubstr("next-token")));
  EXPECT_TRUE((*tokens)->Authenticate("new-token-0123456789abc").ok());
  EXPECT_FALSE((*tokens)->Authenticate("next-token-0123456789").ok());

  unlink(path_.c_str());
  EXPECT_THAT(std::string((*tokens)->Reload().message()),
              HasSubstr("cannot read --auth-tokens file '" + path_ + "': No such file"));
  EXPECT_TRUE((*tokens)->Authenticate("new-token-0123456789abc").ok());
}

TEST_F(TokenAuthorityTest, StartErrorsNameTheFile) {
  absl::StatusOr<std::unique_ptr<TokenAuthority>> missing = TokenAuthority::FromFile(path_);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("cannot read --auth-tokens file '" + path_ + "'"));
  absl::StatusOr<std::unique_ptr<TokenAuthority>> directory = TokenAuthority::FromFile(dir_);
  EXPECT_THAT(std::string(directory.status().message()), HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace qcal::server
