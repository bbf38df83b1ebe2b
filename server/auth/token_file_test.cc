#include "server/auth/token_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace qcal::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "0123456789abcdef-reader";

TEST(ParseTokenFileTest, ReadsRolesTokensPrefixesAndSkipsCommentsAndBlanks) {
  absl::StatusOr<TokenTable> table = ParseTokenFile(
      "# qcal tokens\n"
      "\n"
      "reader 0123456789abcdef-reader\n"
      "  trainer\t0123456789abcdef-trainer team-a/  \r\n"
      "   # indented comment\n"
      "admin 0123456789abcdef-admin");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->entries.size(), 3u);
  EXPECT_EQ(table->entries[0].role, Role::kReader);
  EXPECT_EQ(table->entries[0].model_prefix, "");
  EXPECT_EQ(table->entries[0].line, 3);
  EXPECT_EQ(table->entries[0].digest, DigestToken("0123456789abcdef-reader"));
  EXPECT_EQ(table->entries[1].role, Role::kTrainer);
  EXPECT_EQ(table->entries[1].model_prefix, "team-a/");
  EXPECT_EQ(table->entries[1].line, 4);
  EXPECT_EQ(table->entries[1].digest, DigestToken("0123456789abcdef-trainer"));
  EXPECT_EQ(table->entries[2].role, Role::kAdmin);
  EXPECT_EQ(table->entries[2].line, 6);
}

// A file saved by an editor that writes a UTF-8 byte order mark reads as without it; one inside
// the file is no role.
TEST(ParseTokenFileTest, ALeadingUtf8ByteOrderMarkIsSkipped) {
  absl::StatusOr<TokenTable> table = ParseTokenFile("\xEF\xBB\xBFreader 0123456789abcdef-reader\n");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->entries.size(), 1u);
  EXPECT_EQ(table->entries[0].role, Role::kReader);
  EXPECT_EQ(table->entries[0].digest, DigestToken("0123456789abcdef-reader"));
  EXPECT_FALSE(ParseTokenFile("reader 0123456789abcdef-reader\n\xEF\xBB\xBFadmin "
                              "0123456789abcdef-admin\n")
                   .ok());
}

TEST(ParseTokenFileTest, DigestIsSha256) {
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  const TokenDigest digest = DigestToken("abc");
  EXPECT_EQ(digest[0], 0xba);
  EXPECT_EQ(digest[1], 0x78);
  EXPECT_EQ(digest[31], 0xad);
}

// Each bad line is refused with its line number, and the message quotes no field of the file.
TEST(ParseTokenFileTest, RefusesBadLinesNamingTheLineNeverTheToken) {
  const struct {
    std::string text;
    std::string expected;
  } cases[] = {
      {"# c\nwriter 0123456789abcdef-reader\n", "line 2: the first field is no role"},
      {"Reader 0123456789abcdef-reader\n", "line 1: the first field is no role"},
      // The columns swapped: the token must not show up as "unknown role".
      {"0123456789abcdef-reader reader\n", "line 1: the first field is no role"},
      {"reader\n", "line 1: the token is missing"},
      {"reader 0123456789abcde\n", "line 1: the token is 15 characters long; at least 16"},
      {"reader " + std::string(4097, 'x') + "\n", "longer than 4096"},
      {"reader 0123456789abcdef-reader\nadmin 0123456789abcdef-reader\n",
       "line 2: the same token as line 1"},
      {"reader 0123456789abcdef-reader team-a/ extra\n", "line 1: more than three fields"},
      {"reader 0123456789abcdef-reader team\x01"
       "a/\n",
       "line 1: the model prefix is no valid name"},
      {"reader 0123456789abcdef-reader \xff\xfe\n", "line 1: the model prefix is no valid name"},
      {"reader 0123456789abcdef-r\xc3\xa9"
       "ader\n",
       "line 1: the token holds a byte outside"},
      {"", "the file holds no token"},
      {"# only comments\n\n", "the file holds no token"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<TokenTable> table = ParseTokenFile(c.text);
    ASSERT_FALSE(table.ok()) << c.text;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(table.status().message()), HasSubstr(c.expected)) << c.text;
    EXPECT_THAT(std::string(table.status().message()), Not(HasSubstr("0123456789abcd")));
    EXPECT_THAT(std::string(table.status().message()), Not(HasSubstr("team")));
  }
}

TEST(ParseTokenFileTest, AcceptsTheShortestToken) {
  absl::StatusOr<TokenTable> table = ParseTokenFile("reader 0123456789abcdef\n");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->entries.size(), 1u);
  EXPECT_EQ(std::string(kToken).size(), 23u);
}

}  // namespace
}  // namespace qcal::server
