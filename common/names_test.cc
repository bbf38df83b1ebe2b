// The name rule of qcal/names.h, byte by byte.
#include "qcal/names.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace qcal {
namespace {

using namespace std::string_literals;

TEST(IsValidUtf8Test, AcceptsWellFormedSequencesOfEveryLength) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("conv1._input_quantizer"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9"));          // U+00E9
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));      // U+20AC
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));  // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF, the last code point
  EXPECT_TRUE(IsValidUtf8("a\0b"s));             // NUL is UTF-8 (CheckName refuses it)
}

TEST(IsValidUtf8Test, RefusesWhatProtobufRefuses) {
  EXPECT_FALSE(IsValidUtf8("\xff\xfe"));
  EXPECT_FALSE(IsValidUtf8("\x80"));              // a lone continuation byte
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xf0\x80\x80\xaf"));  // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // U+D800, a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3\x28"));  // the second byte is no continuation byte
}

TEST(CheckNameTest, AcceptsNamesUpToTheLimit) {
  EXPECT_TRUE(CheckName("model name", "resnet18").ok());
  EXPECT_TRUE(CheckName("quantizer name", "layer1.0.conv1._input_quantizer").ok());
  EXPECT_TRUE(CheckName("model name", "mod\xc3\xa8le \xe6\xa8\xa1\xe5\x9e\x8b").ok());
  EXPECT_TRUE(CheckName("model name", std::string(kMaxNameBytes, 'a')).ok());
  EXPECT_TRUE(CheckName("model name", "a b ~!").ok());  // spaces and punctuation are fine
}

TEST(CheckNameTest, RefusesAnEmptyName) {
  EXPECT_EQ(CheckName("model name", ""),
            absl::InvalidArgumentError("model name is empty; names are 1 to 1024 bytes of UTF-8 "
                                       "without control characters"));
}

TEST(CheckNameTest, RefusesInvalidUtf8WithTheBytesEscaped) {
  EXPECT_EQ(CheckName("model name", "\xff\xfe"),
            absl::InvalidArgumentError(
                "model name '\\xff\\xfe' is not valid UTF-8 (byte 0xff at offset 0); names are 1 "
                "to 1024 bytes of UTF-8 without control characters"));
  const absl::Status status = CheckName("quantizer name", "ok\xe2\x82");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("(byte 0xe2 at offset 2)"), absl::string_view::npos) << status;
}

TEST(CheckNameTest, RefusesControlCharacters) {
  EXPECT_EQ(CheckName("quantizer name", "a\nfake: 3f800000"),
            absl::InvalidArgumentError(
                "quantizer name 'a\\nfake: 3f800000' contains control character 0x0a at offset "
                "1; names are 1 to 1024 bytes of UTF-8 without control characters"));
  for (const std::string& name : {"\tx"s, "x\r"s, "a\0b"s, "\x1f"s, "del\x7f"s, "\x01"s}) {
    const absl::Status status = CheckName("model name", name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << absl::CHexEscape(name);
    EXPECT_NE(status.message().find("contains control character"), absl::string_view::npos)
        << status;
  }
}

TEST(CheckNameTest, RefusesALongNameShowingOnlyItsStart) {
  const absl::Status status = CheckName("model name", std::string(kMaxNameBytes + 1, 'a'));
  EXPECT_EQ(status, absl::InvalidArgumentError(absl::StrCat(
                        "model name '", std::string(64, 'a'),
                        "...' is 1025 bytes long; names are 1 to 1024 bytes of UTF-8 without "
                        "control characters")));
  // A shown prefix never ends inside a character: the message stays UTF-8.
  std::string euros;
  while (euros.size() <= kMaxNameBytes) euros += "\xe2\x82\xac";
  const absl::Status long_euros = CheckName("model name", euros);
  EXPECT_EQ(long_euros.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsValidUtf8(std::string(long_euros.message()))) << long_euros;
  std::string shown;
  for (int i = 0; i < 21; ++i) shown += "\xe2\x82\xac";  // 63 of the 64 bytes
  EXPECT_NE(long_euros.message().find(absl::StrCat("'", shown, "...' is 1026 bytes long")),
            absl::string_view::npos)
      << long_euros;
}

TEST(ShortForMessageTest, ShowsShortTextAsItIs) {
  EXPECT_EQ(ShortForMessage("conv1._input_quantizer"), "conv1._input_quantizer");
  EXPECT_EQ(ShortForMessage(""), "");
  EXPECT_EQ(ShortForMessage(std::string(64, 'a')), std::string(64, 'a'));
}

TEST(ShortForMessageTest, CutsLongTextAfter64Bytes) {
  EXPECT_EQ(ShortForMessage(std::string(100000, 'q')), std::string(64, 'q') + "...");
  EXPECT_EQ(ShortForMessage(std::string(65, 'q')), std::string(64, 'q') + "...");
}

TEST(ShortForMessageTest, CutsUtf8AtACharacterBoundary) {
  // 63 ASCII bytes then a 2-byte character: byte 64 is inside it, so the cut goes before it.
  const std::string text = std::string(63, 'a') + "\xc3\xa9" + "tail";
  EXPECT_EQ(ShortForMessage(text), std::string(63, 'a') + "...");
}

TEST(ShortForMessageTest, EscapesWhatIsNotPrintableUtf8) {
  EXPECT_EQ(ShortForMessage("a\nb"), "a\\nb");
  EXPECT_EQ(ShortForMessage("bad\xff"), "bad\\xff");
  EXPECT_EQ(ShortForMessage("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 stays as it is
  EXPECT_TRUE(IsValidUtf8(ShortForMessage(std::string(200, '\xff'))));
}

TEST(CheckUtf8Test, OnlyTheEncodingCounts) {
  EXPECT_TRUE(CheckUtf8("method", "").ok());
  EXPECT_TRUE(CheckUtf8("method", "a\nb").ok());
  EXPECT_EQ(
      CheckUtf8("method", "m\xff"),
      absl::InvalidArgumentError("method 'm\\xff' is not valid UTF-8 (byte 0xff at offset 1)"));
}

}  // namespace
}  // namespace qcal
