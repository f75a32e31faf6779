// Whole-file reads and atomic writes. An atomic write goes to "<path>.tmp.<pid>", is flushed
// and fsync'ed, then renamed over `path`: a reader (or a crash) sees the old file or the new
// one, never half of one.
#pragma once

#include <cstdint>
#include <string>

namespace mmkt::io {

// Reads the whole file; throws InputError naming the file when it cannot be opened or read.
std::string read_file(const std::string& path);
// Writes `bytes` to `path` atomically (creating parent folders); throws Error on failure and
// leaves any previous `path` untouched.
void write_file_atomic(const std::string& path, const std::string& bytes);
// Size of a file in bytes; throws InputError when it does not exist.
std::uint64_t file_size(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace mmkt::io
