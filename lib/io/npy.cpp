#include "mmkt/io/npy.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <vector>

#include <torch/torch.h>

#include "mmkt/core/error.h"
#include "mmkt/io/files.h"

// The data bytes are copied as they lie in memory, and .npy data is little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy.cpp assumes a little-endian host");

namespace mmkt::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";  // 6 bytes, then major and minor version bytes
constexpr std::size_t kMagicSize = 6;
constexpr std::size_t kAlignment = 64;  // the whole header is padded to a multiple of this

struct Dtype {
  const char* descr;
  torch::ScalarType type;
  std::int64_t item_size;
};

const std::vector<Dtype>& dtypes() {
  static const std::vector<Dtype> list = {{"<f4", torch::kFloat32, 4}, {"<f8", torch::kFloat64, 8},
                                          {"<i8", torch::kInt64, 8},   {"<i4", torch::kInt32, 4},
                                          {"|u1", torch::kUInt8, 1},   {"|b1", torch::kBool, 1}};
  return list;
}

std::string supported_descrs() {
  std::string s;
  for (const auto& d : dtypes()) s += (s.empty() ? "'" : ", '") + std::string(d.descr) + "'";
  return s;
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// ---- Header parsing: a Python dict literal with the keys descr, fortran_order and shape. ----
// Values are a quoted string, True/False, or a tuple of non-negative integers.
struct HeaderValue {
  enum Kind { kString, kBool, kTuple } kind = kString;
  std::string text;
  bool flag = false;
  std::vector<std::int64_t> dims;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& path, const std::string& text) : path_(path), s_(text) {}

  std::map<std::string, HeaderValue> parse() {
    std::map<std::string, HeaderValue> out;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = quoted();
      expect(':');
      if (out.count(key)) fail("key '", key, "' appears twice");
      out[key] = value();
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the dict");
    return out;
  }

 private:
  template <typename... Args>
  [[noreturn]] void fail(Args&&... args) const {
    fail_input(path_, ": malformed .npy header at character ", pos_, ": ",
               std::forward<Args>(args)..., " (header: ", s_, ")");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail("expected '", c, "'");
    ++pos_;
  }
  std::string quoted() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const auto end = s_.find(q, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string text = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return text;
  }
  bool word(const char* w) {
    const std::size_t n = std::strlen(w);
    if (s_.compare(pos_, n, w) != 0) return false;
    pos_ += n;
    return true;
  }
  std::int64_t integer() {
    skip_space();
    const std::size_t start = pos_;
    std::uint64_t v = 0;
    while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
      const std::uint64_t digit = static_cast<std::uint64_t>(s_[pos_] - '0');
      if (v > (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - digit) / 10) {
        fail("dimension too large");
      }
      v = v * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected a non-negative integer");
    if (peek() == 'L') ++pos_;  // Python 2 long literals ("3L") in old files
    return static_cast<std::int64_t>(v);
  }
  HeaderValue value() {
    skip_space();
    HeaderValue v;
    if (peek() == '\'' || peek() == '"') {
      v.kind = HeaderValue::kString;
      v.text = quoted();
    } else if (word("True")) {
      v.kind = HeaderValue::kBool;
      v.flag = true;
    } else if (word("False")) {
      v.kind = HeaderValue::kBool;
      v.flag = false;
    } else if (peek() == '(') {
      // "()", "(3,)", "(2, 3)", "(2, 3,)".
      ++pos_;
      v.kind = HeaderValue::kTuple;
      skip_space();
      while (peek() != ')') {
        v.dims.push_back(integer());
        skip_space();
        if (peek() == ',') {
          ++pos_;
          skip_space();
        } else if (peek() != ')') {
          fail("expected ',' or ')' in the shape");
        }
      }
      ++pos_;
    } else {
      fail("expected a string, True, False or a tuple");
    }
    return v;
  }

  const std::string& path_;
  const std::string& s_;
  std::size_t pos_ = 0;
};

}  // namespace

void write_npy(const std::string& path, const torch::Tensor& t) {
  MMKT_CHECK(t.defined(), path, ": write_npy got an undefined tensor");
  const Dtype* dtype = nullptr;
  for (const auto& d : dtypes()) {
    if (d.type == t.scalar_type()) dtype = &d;
  }
  MMKT_CHECK(dtype != nullptr, path, ": write_npy does not support dtype ", t.scalar_type(),
             " (supported: float32, float64, int64, int32, uint8, bool)");
  const torch::Tensor data = t.detach().to(torch::kCPU).contiguous();

  std::string shape = "(";
  for (std::int64_t i = 0; i < data.dim(); ++i) {
    if (i > 0) shape += ", ";
    shape += std::to_string(data.size(i));
  }
  if (data.dim() == 1) shape += ",";  // a Python 1-tuple
  shape += ")";
  std::string dict = std::string("{'descr': '") + dtype->descr +
                     "', 'fortran_order': False, 'shape': " + shape + ", }";

  // Prefix: magic (6) + version (2) + header length (2 bytes in 1.0, 4 in 2.0). The dict is
  // padded with spaces and ends in '\n' so that prefix + dict is a multiple of 64 bytes.
  const auto padded = [&](std::size_t prefix) {
    return (prefix + dict.size() + 1 + kAlignment - 1) / kAlignment * kAlignment - prefix;
  };
  int major = 1;
  std::size_t prefix = 10;
  std::size_t header_len = padded(prefix);
  if (header_len > 0xffff) {
    major = 2;
    prefix = 12;
    header_len = padded(prefix);
  }
  std::string bytes(kMagic, kMagicSize);
  bytes.push_back(static_cast<char>(major));
  bytes.push_back(0);
  put_le(bytes, header_len, major == 1 ? 2 : 4);
  bytes += dict;
  bytes.append(header_len - dict.size() - 1, ' ');
  bytes.push_back('\n');
  const auto nbytes =
      static_cast<std::size_t>(data.numel()) * static_cast<std::size_t>(dtype->item_size);
  if (nbytes > 0) bytes.append(static_cast<const char*>(data.data_ptr()), nbytes);
  io::write_file_atomic(path, bytes);
}

torch::Tensor read_npy(const std::string& path) {
  const std::uint64_t file_size = io::file_size(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path, ": cannot open for reading: ", std::strerror(errno));

  char prefix[12];
  MMKT_CHECK_INPUT(file_size >= 10 && in.read(prefix, 10), path,
                   ": not a .npy file (shorter than the 10-byte prefix)");
  MMKT_CHECK_INPUT(std::memcmp(prefix, kMagic, kMagicSize) == 0, path,
                   ": not a .npy file (bad magic; expected \\x93NUMPY)");
  const int major = static_cast<unsigned char>(prefix[6]);
  const int minor = static_cast<unsigned char>(prefix[7]);
  MMKT_CHECK_INPUT((major == 1 || major == 2) && minor == 0, path, ": .npy format version ", major,
                   ".", minor, " is not supported (1.0 and 2.0 are)");
  std::uint64_t header_len = 0;
  std::size_t prefix_size = 10;
  if (major == 1) {
    header_len = static_cast<unsigned char>(prefix[8]) |
                 (static_cast<std::uint64_t>(static_cast<unsigned char>(prefix[9])) << 8);
  } else {
    prefix_size = 12;
    MMKT_CHECK_INPUT(in.read(prefix + 10, 2), path, ": truncated .npy prefix");
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<std::uint64_t>(static_cast<unsigned char>(prefix[8 + i]))
                    << (8 * i);
    }
  }
  MMKT_CHECK_INPUT(header_len <= file_size - prefix_size, path, ": .npy header length ", header_len,
                   " exceeds the file size ", file_size);
  std::string header(header_len, '\0');
  MMKT_CHECK_INPUT(in.read(header.data(), static_cast<std::streamsize>(header_len)), path,
                   ": read error in the .npy header");

  auto fields = HeaderParser(path, header).parse();
  for (const char* key : {"descr", "fortran_order", "shape"}) {
    MMKT_CHECK_INPUT(fields.count(key), path, ": .npy header lacks the key '", key,
                     "' (header: ", header, ")");
  }
  MMKT_CHECK_INPUT(fields.size() == 3, path, ": .npy header has keys other than descr, ",
                   "fortran_order and shape (header: ", header, ")");
  const auto& descr = fields["descr"];
  const auto& fortran = fields["fortran_order"];
  const auto& shape = fields["shape"];
  MMKT_CHECK_INPUT(descr.kind == HeaderValue::kString && fortran.kind == HeaderValue::kBool &&
                       shape.kind == HeaderValue::kTuple,
                   path, ": .npy header values have the wrong types (header: ", header, ")");
  const Dtype* dtype = nullptr;
  for (const auto& d : dtypes()) {
    if (descr.text == d.descr) dtype = &d;
  }
  MMKT_CHECK_INPUT(dtype != nullptr, path, ": unsupported .npy descr '", descr.text,
                   "' (supported: ", supported_descrs(), "; big-endian data is not)");
  MMKT_CHECK_INPUT(!fortran.flag, path,
                   ": .npy data in Fortran order is not supported (save with C order)");

  // Expected data size from the shape, with overflow guarded, against the bytes present.
  const std::uint64_t data_size = file_size - prefix_size - header_len;
  std::uint64_t expected = static_cast<std::uint64_t>(dtype->item_size);
  bool overflow = false;
  for (const auto d : shape.dims) {
    const auto dim = static_cast<std::uint64_t>(d);
    if (dim != 0 && expected > std::numeric_limits<std::uint64_t>::max() / dim) {
      overflow = true;
      break;
    }
    expected *= dim;
  }
  if (overflow || expected != data_size) {
    std::string dims;
    for (const auto d : shape.dims) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    fail_input(path, ": .npy shape (", dims, ") of '", descr.text, "' needs ",
               overflow ? std::string("more than 2^64") : std::to_string(expected),
               " data bytes, but the file holds ", data_size,
               expected > data_size || overflow ? " (truncated)" : " (trailing bytes)");
  }

  // Bools are read as bytes and compared with 0: a byte other than 0 or 1 in a torch bool
  // tensor is undefined behaviour.
  const bool is_bool = dtype->type == torch::kBool;
  auto t =
      torch::empty(shape.dims, torch::TensorOptions().dtype(is_bool ? torch::kUInt8 : dtype->type));
  if (expected > 0) {
    MMKT_CHECK_INPUT(
        in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(expected)), path,
        ": read error in the .npy data");
  }
  return is_bool ? t.ne(0) : t;
}

}  // namespace mmkt::io
