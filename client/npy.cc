#include "qcal/npy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/status_macros.h"
#include "common/absl_string_view.h"
#include "qcal/local_file.h"

namespace qcal {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// A tiny recursive-descent reader of exactly that subset: string keys, and string / bool /
// tuple-of-int values.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  struct Header {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<std::vector<int64_t>> shape;
  };

  absl::StatusOr<Header> Parse() {
    Header header;
    QCAL_CLIENT_RETURN_IF_ERROR(Expect('{'));
    while (!Peek('}')) {
      QCAL_CLIENT_ASSIGN_OR_RETURN(std::string key, String());
      QCAL_CLIENT_RETURN_IF_ERROR(Expect(':'));
      if (key == "descr") {
        QCAL_CLIENT_ASSIGN_OR_RETURN(header.descr, String());
      } else if (key == "fortran_order") {
        QCAL_CLIENT_ASSIGN_OR_RETURN(header.fortran_order, Bool());
      } else if (key == "shape") {
        QCAL_CLIENT_ASSIGN_OR_RETURN(header.shape, Shape());
      } else {
        return Error(absl::StrCat("unexpected key '", key, "'"));
      }
      if (!Peek('}')) QCAL_CLIENT_RETURN_IF_ERROR(Expect(','));
    }
    QCAL_CLIENT_RETURN_IF_ERROR(Expect('}'));
    SkipSpace();
    if (pos_ != text_.size()) return Error("text after the closing '}'");
    if (!header.descr || !header.fortran_order || !header.shape) {
      return Error("missing 'descr', 'fortran_order' or 'shape'");
    }
    return header;
  }

 private:
  // Shows the header without the padding (spaces and the final newline) that np.save adds, and
  // with any unprintable byte escaped.
  absl::Status Error(std::string_view what) const {
    const absl::string_view header = absl::StripTrailingAsciiWhitespace(internal::ToAbsl(text_));
    const bool printable = std::all_of(header.begin(), header.end(), [](char c) {
      return std::isprint(static_cast<unsigned char>(c)) != 0;
    });
    return absl::InvalidArgumentError(
        absl::StrCat("malformed .npy header (", internal::ToAbsl(what), ") at offset ", pos_, ": ",
                     printable ? std::string(header) : absl::CHexEscape(header)));
  }
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Peek(char c) {
    SkipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  absl::Status Expect(char c) {
    if (!Peek(c)) return Error(absl::StrCat("expected '", std::string(1, c), "'"));
    ++pos_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> String() {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return Error("expected a string");
    }
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) return Error("unterminated string");
    std::string value(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return value;
  }
  absl::StatusOr<bool> Bool() {
    SkipSpace();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      if (text_.substr(pos_).starts_with(word)) {
        pos_ += std::strlen(word);
        return value;
      }
    }
    return Error("expected True or False");
  }
  absl::StatusOr<std::vector<int64_t>> Shape() {
    std::vector<int64_t> shape;
    QCAL_CLIENT_RETURN_IF_ERROR(Expect('('));
    while (!Peek(')')) {
      int64_t dim = 0;
      const char* begin = text_.data() + pos_;
      const char* end = text_.data() + text_.size();
      auto [next, error] = std::from_chars(begin, end, dim);
      if (error != std::errc() || dim < 0) return Error("expected a dimension >= 0");
      pos_ += static_cast<size_t>(next - begin);
      shape.push_back(dim);
      if (!Peek(')')) QCAL_CLIENT_RETURN_IF_ERROR(Expect(','));
    }
    QCAL_CLIENT_RETURN_IF_ERROR(Expect(')'));
    return shape;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

absl::StatusOr<DType> DTypeOfDescr(std::string_view descr) {
  if (descr == "<f4") return DType::kFloat32;
  if (descr == "<f2") return DType::kFloat16;
  if (descr == "<f8") return DType::kFloat64;
  if (descr == ">f4" || descr == ">f2" || descr == ">f8") {
    // The same width little-endian: the conversion loses nothing.
    return absl::InvalidArgumentError(
        absl::StrCat(".npy dtype '", internal::ToAbsl(descr),
                     "' is big-endian: save it little-endian (arr.astype('<",
                     internal::ToAbsl(descr.substr(1)), "'))"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(".npy dtype '", internal::ToAbsl(descr),
                   "' is not supported: expected float32 '<f4', float16 '<f2' or "
                   "float64 '<f8'"));
}

uint32_t ReadLittleEndian(std::string_view bytes) {
  uint32_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

}  // namespace

TensorView NpyArray::view() const {
  return TensorView{dtype, shape, std::as_bytes(std::span(data.data(), data.size()))};
}

namespace {

// Parses everything but the data: the array's dtype and shape (data left empty), where the data
// starts in `file` and its size, which `file` must hold (it may hold more).
absl::StatusOr<NpyArray> ParseHeader(std::string_view file, size_t* data_offset,
                                     size_t* data_bytes) {
  if (!file.starts_with(kMagic) || file.size() < kMagic.size() + 2) {
    return absl::InvalidArgumentError("not a .npy file (no \\x93NUMPY magic string)");
  }
  const int major = static_cast<uint8_t>(file[6]);
  size_t length_bytes = 0;
  if (major == 1) {
    length_bytes = 2;
  } else if (major == 2 || major == 3) {
    length_bytes = 4;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(".npy format version ", major, " is not supported (expected 1, 2 or 3)"));
  }
  const size_t prefix = kMagic.size() + 2 + length_bytes;
  if (file.size() < prefix) return absl::InvalidArgumentError(".npy file ends inside its header");
  const size_t header_length = ReadLittleEndian(file.substr(8, length_bytes));
  if (file.size() - prefix < header_length) {
    return absl::InvalidArgumentError(".npy file ends inside its header");
  }
  HeaderParser parser(file.substr(prefix, header_length));
  QCAL_CLIENT_ASSIGN_OR_RETURN(HeaderParser::Header header, parser.Parse());
  if (*header.fortran_order) {
    return absl::InvalidArgumentError(
        ".npy array is in Fortran order: save it in C order (np.ascontiguousarray)");
  }
  NpyArray array;
  QCAL_CLIENT_ASSIGN_OR_RETURN(array.dtype, DTypeOfDescr(*header.descr));
  array.shape = std::move(*header.shape);
  QCAL_CLIENT_ASSIGN_OR_RETURN(const uint64_t expected, TensorBytes(array.dtype, array.shape));
  *data_offset = prefix + header_length;
  const size_t data_size = file.size() - *data_offset;
  // Bytes after the data are ignored, as np.load ignores them.
  if (data_size < expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        ".npy data is ", data_size, " bytes, but its shape and dtype need ", expected));
  }
  *data_bytes = expected;
  return array;
}

}  // namespace

absl::StatusOr<NpyArray> ParseNpy(std::string_view file) {
  size_t data_offset = 0, data_bytes = 0;
  QCAL_CLIENT_ASSIGN_OR_RETURN(NpyArray array, ParseHeader(file, &data_offset, &data_bytes));
  array.data = std::string(file.substr(data_offset, data_bytes));
  return array;
}

absl::StatusOr<NpyArray> ReadNpy(const std::string& path) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(std::string file, ReadLocalFile(path));
  size_t data_offset = 0, data_bytes = 0;
  absl::StatusOr<NpyArray> array = ParseHeader(file, &data_offset, &data_bytes);
  if (!array.ok()) {
    return absl::Status(array.status().code(), absl::StrCat(path, ": ", array.status().message()));
  }
  file.erase(0, data_offset);  // the data moves instead of being copied
  file.resize(data_bytes);
  array->data = std::move(file);
  return array;
}

}  // namespace qcal
