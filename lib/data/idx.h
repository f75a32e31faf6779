// IDX files (LeCun's MNIST format), raw or gzip-compressed. Header: two zero bytes, a dtype
// byte, a dimension count, then big-endian uint32 dimensions. Everything a header claims is
// checked against the file before any allocation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace mmkt::data {

struct IdxHeader {
  std::uint8_t dtype = 0;  // 0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
  std::vector<std::int64_t> dims;
  std::uint64_t payload_bytes = 0;  // product(dims) * element size
};

// Reads an IDX file (gzip detected by its magic bytes, not by the name) into a tensor of the
// file's dtype (uint8 for MNIST) with the file's dimensions. Throws InputError naming the file,
// the byte offset and what was wrong: bad magic, unknown dtype, zero or absurd dimensions, a
// payload larger than `max_bytes`, a file (or gzip stream) shorter or longer than the header
// says.
torch::Tensor read_idx(const std::string& path, std::uint64_t max_bytes = 1ULL << 32);

// Parses and validates only the header of raw IDX bytes (exposed for tests).
IdxHeader parse_idx_header(const unsigned char* bytes, std::size_t size, const std::string& path,
                           std::uint64_t max_bytes);

}  // namespace mmkt::data
