#include "mmkt/data/idx.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "mmkt/core/error.h"
#include "mmkt/io/files.h"

namespace mmkt::data {
namespace {

std::size_t element_size(std::uint8_t dtype) {
  switch (dtype) {
    case 0x08:
    case 0x09:
      return 1;
    case 0x0B:
      return 2;
    case 0x0C:
    case 0x0D:
      return 4;
    case 0x0E:
      return 8;
    default:
      return 0;
  }
}

torch::ScalarType scalar_type(std::uint8_t dtype) {
  switch (dtype) {
    case 0x08:
      return torch::kUInt8;
    case 0x09:
      return torch::kInt8;
    case 0x0B:
      return torch::kInt16;
    case 0x0C:
      return torch::kInt32;
    case 0x0D:
      return torch::kFloat32;
    default:
      return torch::kFloat64;
  }
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

// gzip's trailer stores the uncompressed size modulo 2^32 (RFC 1952, ISIZE).
std::uint32_t gzip_isize(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail_input(path, ": cannot open");
  unsigned char tail[4] = {0, 0, 0, 0};
  const bool ok = std::fseek(f, -4, SEEK_END) == 0 && std::fread(tail, 1, 4, f) == 4;
  std::fclose(f);
  if (!ok) fail_input(path, ": gzip file too short to hold a trailer");
  return std::uint32_t(tail[0]) | (std::uint32_t(tail[1]) << 8) | (std::uint32_t(tail[2]) << 16) |
         (std::uint32_t(tail[3]) << 24);
}

bool is_gzip(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  unsigned char magic[2] = {0, 0};
  const bool gz = std::fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  std::fclose(f);
  return gz;
}

// Reads exactly `n` bytes from a gzip stream; returns how many were read.
std::size_t gz_read_exact(gzFile gz, unsigned char* out, std::size_t n, const std::string& path) {
  std::size_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
    const int r = gzread(gz, out + done, chunk);
    if (r < 0) {
      int errnum = 0;
      const std::string msg = gzerror(gz, &errnum);
      // zlib's words for input that stops inside the deflate stream or before its trailer.
      if (msg.find("unexpected end of file") != std::string::npos) {
        fail_input(path, ": truncated gzip stream: it ends after ", done,
                   " uncompressed bytes of this read (the file was cut short)");
      }
      fail_input(path, ": corrupt gzip stream at uncompressed byte ", done, ": ", msg);
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return done;
}

}  // namespace

IdxHeader parse_idx_header(const unsigned char* bytes, std::size_t size, const std::string& path,
                           std::uint64_t max_bytes) {
  MMKT_CHECK_INPUT(size >= 4, path, ": not an IDX file: ", size,
                   " bytes, shorter than the 4-byte magic");
  MMKT_CHECK_INPUT(bytes[0] == 0 && bytes[1] == 0, path,
                   ": not an IDX file: bad magic at byte offset 0 (expected 00 00, got ",
                   int(bytes[0]), " ", int(bytes[1]), ")");
  IdxHeader h;
  h.dtype = bytes[2];
  const std::size_t elem = element_size(h.dtype);
  MMKT_CHECK_INPUT(elem != 0, path, ": unknown IDX dtype 0x", std::hex, int(h.dtype), std::dec,
                   " at byte offset 2");
  const int ndim = bytes[3];
  MMKT_CHECK_INPUT(ndim >= 1 && ndim <= 8, path, ": IDX dimension count ", ndim,
                   " at byte offset 3 is out of range 1..8");
  MMKT_CHECK_INPUT(size >= 4 + 4 * static_cast<std::size_t>(ndim), path,
                   ": truncated IDX header: ", ndim, " dimensions need ", 4 + 4 * ndim,
                   " bytes, file has ", size);
  std::uint64_t count = 1;
  for (int d = 0; d < ndim; ++d) {
    const std::uint32_t v = be32(bytes + 4 + 4 * d);
    MMKT_CHECK_INPUT(v > 0, path, ": IDX dimension ", d, " is zero (byte offset ", 4 + 4 * d, ")");
    count *= v;
    MMKT_CHECK_INPUT(count * elem <= max_bytes, path, ": IDX header claims ", count * elem,
                     "+ bytes of data (dimension ", d, " = ", v, " at byte offset ", 4 + 4 * d,
                     "), more than the limit of ", max_bytes, " bytes");
    h.dims.push_back(v);
  }
  h.payload_bytes = count * elem;
  return h;
}

namespace {

// Sequential bytes of an IDX file, raw or gzip.
class ByteSource {
 public:
  explicit ByteSource(const std::string& path) : path_(path), gz_(is_gzip(path)) {
    if (gz_) {
      expected_total_ = gzip_isize(path);  // modulo 2^32
      gz_file_ = gzopen(path.c_str(), "rb");
      if (gz_file_ == nullptr) fail_input(path, ": cannot open gzip file");
      gzbuffer(gz_file_, 1 << 17);
    } else {
      expected_total_ = io::file_size(path);
      file_ = std::fopen(path.c_str(), "rb");
      if (file_ == nullptr) fail_input(path, ": cannot open");
    }
  }
  ~ByteSource() {
    if (gz_file_ != nullptr) gzclose(gz_file_);
    if (file_ != nullptr) std::fclose(file_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  std::size_t read(unsigned char* out, std::size_t n) {
    const std::size_t got =
        gz_ ? gz_read_exact(gz_file_, out, n, path_) : std::fread(out, 1, n, file_);
    offset_ += got;
    return got;
  }
  bool gz() const { return gz_; }
  std::uint64_t offset() const { return offset_; }
  // Raw: the file size. Gzip: the uncompressed size modulo 2^32 from the trailer.
  std::uint64_t expected_total() const { return expected_total_; }

 private:
  std::string path_;
  bool gz_;
  gzFile gz_file_ = nullptr;
  FILE* file_ = nullptr;
  std::uint64_t offset_ = 0;
  std::uint64_t expected_total_ = 0;
};

void byteswap_in_place(unsigned char* data, std::size_t count, std::size_t elem) {
  for (std::size_t i = 0; i < count; ++i) {
    unsigned char* p = data + i * elem;
    for (std::size_t a = 0, b = elem - 1; a < b; ++a, --b) std::swap(p[a], p[b]);
  }
}

}  // namespace

torch::Tensor read_idx(const std::string& path, std::uint64_t max_bytes) {
  if (!io::file_exists(path)) fail_input(path, ": file does not exist");
  ByteSource src(path);
  const char* kind = src.gz() ? " (uncompressed gzip content)" : "";
  unsigned char head[4 + 4 * 8] = {0};
  std::size_t n = src.read(head, 4);
  MMKT_CHECK_INPUT(n == 4 || !src.gz(), path, ": truncated gzip stream: only ", n,
                   " bytes before it ends, shorter than the 4-byte IDX magic");
  MMKT_CHECK_INPUT(n == 4, path, ": not an IDX file: only ", n, " bytes", kind);
  const std::size_t ndim = head[3];
  if (ndim >= 1 && ndim <= 8) {
    n += src.read(head + 4, 4 * ndim);
    MMKT_CHECK_INPUT(n == 4 + 4 * ndim || !src.gz(), path, ": truncated gzip stream: it ends ",
                     "inside the IDX header (", n, " of ", 4 + 4 * ndim, " bytes)");
  }
  const IdxHeader h = parse_idx_header(head, n, path, max_bytes);
  const std::uint64_t header_size = 4 + 4 * h.dims.size();
  const std::uint64_t total = header_size + h.payload_bytes;
  // Compare with what the file can hold before allocating anything. A raw file's size is exact.
  // A gzip trailer's size (mod 2^32) is only trustworthy in a complete stream: a cut stream ends
  // in arbitrary compressed bytes. So a gzip file is held to deflate's bound instead (at most
  // 1032 uncompressed bytes per compressed byte, RFC 1951 / zlib's technical notes), its trailer
  // is checked once the stream has been read whole, and zlib checks the CRC-32 and length.
  if (src.gz()) {
    const std::uint64_t compressed = io::file_size(path);
    MMKT_CHECK_INPUT(total <= compressed * 1032 + 64, path, ": its IDX header (dims ",
                     c10::IntArrayRef(h.dims), ") needs ", total,
                     " bytes, more than a gzip file of ", compressed,
                     " bytes can expand to (truncated or corrupt)");
  } else {
    MMKT_CHECK_INPUT(total == src.expected_total(), path, ": file holds ", src.expected_total(),
                     " bytes but its IDX header (dims ", c10::IntArrayRef(h.dims),
                     ") needs exactly ", total,
                     src.expected_total() < total ? " (truncated)" : " (trailing bytes)");
  }
  auto t = torch::empty(h.dims, torch::TensorOptions().dtype(scalar_type(h.dtype)));
  auto* data = static_cast<unsigned char*>(t.data_ptr());
  std::size_t got = 0;
  try {
    got = src.read(data, h.payload_bytes);
  } catch (const InputError& e) {
    fail_input(e.what(), "; the IDX header (dims ", c10::IntArrayRef(h.dims), ") needs ", total,
               " bytes");
  }
  MMKT_CHECK_INPUT(got == h.payload_bytes, path,
                   src.gz() ? ": truncated gzip stream: it ends at uncompressed byte offset "
                            : ": truncated data: file ends at byte offset ",
                   header_size + got, ", the IDX header (dims ", c10::IntArrayRef(h.dims),
                   ") needs ", total, " bytes");
  unsigned char extra = 0;
  MMKT_CHECK_INPUT(src.read(&extra, 1) == 0, path, ": trailing bytes after offset ", total, kind);
  MMKT_CHECK_INPUT(!src.gz() || (total & 0xffffffffULL) == src.expected_total(), path,
                   ": gzip trailer says ", src.expected_total(),
                   " bytes (mod 2^32), the stream held ", total);
  const std::size_t elem = element_size(h.dtype);
  if (elem > 1) byteswap_in_place(data, h.payload_bytes / elem, elem);  // IDX is big-endian
  return t;
}

}  // namespace mmkt::data
