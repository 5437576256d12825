// Filesystem helpers with no project dependencies.
#pragma once

#include <string>

#include "util/result.h"

namespace util {

// Reads a whole file.
Result<std::string> ReadFile(const std::string& path);

// Writes via a temporary file in the same directory and rename(2), so readers
// see the old content or the new, never half of it. Creates parent folders.
Status WriteFileAtomic(const std::string& path, const std::string& content, int mode = 0644);

// An exclusive advisory lock (flock) on `path`, held while the object lives.
class FileLock {
 public:
  FileLock() = default;
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  ~FileLock();
  // Blocks until the lock is ours or `timeout_s` passes.
  static Result<FileLock> Acquire(const std::string& path, int timeout_s);

 private:
  int fd_ = -1;
};

}  // namespace util
