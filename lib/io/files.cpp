#include "mmkt/io/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mmkt/core/error.h"

namespace mmkt::io {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail_input(path, ": file does not exist");
  if (fs::is_directory(path, ec)) fail_input(path, ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path, ": cannot open for reading: ", std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail_input(path, ": read error");
  return bytes;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, ": cannot create ", tmp, ": ", std::strerror(errno));
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(path, ": write failed: ", why);
    }
    written += static_cast<size_t>(n);
  }
  // Both calls run whatever the first one says: a failed fsync must not leak the descriptor.
  const int synced = ::fsync(fd);
  const int sync_errno = errno;
  const int closed = ::close(fd);
  if (synced != 0 || closed != 0) {
    const std::string why = std::strerror(synced != 0 ? sync_errno : errno);
    ::unlink(tmp.c_str());
    fail(path, ": flush failed: ", why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail(path, ": rename from ", tmp, " failed: ", why);
  }
  // The rename lives in the directory: fsync it too, or a crash may bring back the old name.
  const std::string folder = target.has_parent_path() ? target.parent_path().string() : ".";
  const int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0)
    fail(path, ": cannot open its folder to flush the rename: ", std::strerror(errno));
  const int dir_synced = ::fsync(dir_fd);
  const int dir_errno = errno;
  ::close(dir_fd);
  // EINVAL: a file system that cannot sync directories (some network and FUSE mounts).
  if (dir_synced != 0 && dir_errno != EINVAL) {
    fail(path, ": flushing the rename in ", folder, " failed: ", std::strerror(dir_errno));
  }
}

std::uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  if (ec) fail_input(path, ": ", ec.message());
  return n;
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

std::optional<FileLock> FileLock::try_acquire(const std::string& path, std::string* holder) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, ": cannot create the lock file: ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    if (holder != nullptr) {
      char buffer[32] = {0};
      const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
      *holder = n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "unknown";
    }
    ::close(fd);
    if (why == EWOULDBLOCK) return std::nullopt;
    fail(path, ": cannot lock: ", std::strerror(why));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock holds without the pid; only a refused process's message is poorer.
  }
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace mmkt::io
