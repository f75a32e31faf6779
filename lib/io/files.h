// Whole-file reads and atomic writes. An atomic write goes to "<path>.tmp.<pid>", is flushed
// and fsync'ed, then renamed over `path`: a reader (or a crash) sees the old file or the new
// one, never half of one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mmkt::io {

// Reads the whole file; throws InputError naming the file when it cannot be opened or read.
std::string read_file(const std::string& path);
// Writes `bytes` to `path` atomically (creating parent folders); throws Error on failure and
// leaves any previous `path` untouched. After the rename the folder itself is fsync'ed, so
// that the new name survives a power cut (rename(2) changes the directory, not the file).
void write_file_atomic(const std::string& path, const std::string& bytes);
// Size of a file in bytes; throws InputError when it does not exist.
std::uint64_t file_size(const std::string& path);
bool file_exists(const std::string& path);

// An exclusive advisory lock (flock(2)) on a lock file, held until the object is destroyed or
// the process ends (the kernel drops it even after a crash, so no stale lock is left behind).
// The file records the holder's pid for the message of whoever is refused.
class FileLock {
 public:
  // The lock, or nullopt when another process holds it (`holder` then gets its recorded pid).
  // Throws Error when the lock file cannot be created.
  static std::optional<FileLock> try_acquire(const std::string& path,
                                             std::string* holder = nullptr);
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace mmkt::io
