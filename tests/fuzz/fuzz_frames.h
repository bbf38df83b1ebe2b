// The framing of fuzz inputs that carry several messages (a Record stream's requests): each
// message is a varint byte count and that many bytes, as in protobuf's length-delimited streams
// (Python: google.protobuf.internal.encoder._VarintBytes(len(m)) + m; make_corpus.py writes them).
//
//   FrameReader frames(data, size);
//   while (std::optional<std::string_view> frame = frames.Next()) ...
#ifndef QCAL_TESTS_FUZZ_FUZZ_FRAMES_H_
#define QCAL_TESTS_FUZZ_FUZZ_FRAMES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace qcal::fuzz {

class FrameReader {
 public:
  FrameReader(const uint8_t* data, size_t size)
      : text_(reinterpret_cast<const char*>(data), size) {}

  // The next frame; nullopt at the end, or when the count is malformed or runs past the input
  // (the rest of the input is then ignored).
  std::optional<std::string_view> Next() {
    uint64_t length = 0;
    for (int shift = 0;; shift += 7) {
      if (text_.empty() || shift > 63) return std::nullopt;
      const uint8_t byte = static_cast<uint8_t>(text_.front());
      text_.remove_prefix(1);
      length |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
    }
    if (length > text_.size()) return std::nullopt;
    std::string_view frame = text_.substr(0, length);
    text_.remove_prefix(length);
    return frame;
  }

  // The bytes not yet read.
  std::string_view rest() const { return text_; }

 private:
  std::string_view text_;
};

}  // namespace qcal::fuzz

#endif  // QCAL_TESTS_FUZZ_FUZZ_FRAMES_H_
