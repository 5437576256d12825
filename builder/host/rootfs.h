// The system toa-build reads and changes, seen through a root directory:
// "/" on a real host, a fixture tree in tests, any tree with --root. Every
// path given to RootFs is a path on the target system ("/etc/os-release").
//
// Under another root every path resolves as chroot(2) would see it: an
// absolute symlink means root-relative, `..` stops at the root, loops fail,
// so no read or write ever leaves the tree (a root whose etc/os-release
// points at /etc/shadow reads DIR/etc/shadow, not this machine's). Reads
// take regular files only (a FIFO or a device is refused) and are capped.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace host {

// Reads are capped: os-release, state and module sources are kilobytes.
inline constexpr size_t kMaxReadBytes = 4u << 20;

class RootFs {
 public:
  explicit RootFs(std::string root = "/");

  const std::string& root() const { return root_; }
  bool is_host_root() const { return root_ == "/"; }

  // Where a target path lives on this machine: every existing component
  // resolved inside the root (symlinks, `..`); components that do not exist
  // yet are appended as they are. `follow_last`: resolve a symlink in the
  // last component too (reads, writes), or keep it (removing the link).
  // Fails on a loop, a non-directory in the middle, or an unreadable link.
  util::Result<std::string> Resolve(const std::string& target_path, bool follow_last = true) const;

  bool Exists(const std::string& path) const;   // follows a last symlink (inside the root)
  bool Lexists(const std::string& path) const;  // the entry itself, even a dangling link
  bool IsDir(const std::string& path) const;
  // Permission bits of what `path` resolves to, or nullopt when missing.
  std::optional<int> Mode(const std::string& path) const;
  // A regular file's content; nullopt when missing, not a regular file, or
  // over `max_bytes` (ReadChecked says which).
  std::optional<std::string> Read(const std::string& path, size_t max_bytes = kMaxReadBytes) const;
  util::Result<std::string> ReadChecked(const std::string& path, size_t max_bytes = kMaxReadBytes) const;
  // Names in a directory, sorted; empty when it does not exist.
  std::vector<std::string> List(const std::string& dir) const;

  // Writes atomically unless the content and mode are already there; returns
  // whether anything changed.
  util::Result<bool> WriteIfChanged(const std::string& path, const std::string& content,
                                    int mode = 0644) const;
  util::Status Remove(const std::string& path) const;         // missing is fine
  util::Status RemoveTree(const std::string& path) const;     // missing is fine
  // Removes a directory only when it is empty (undo of created folders).
  void RemoveIfEmptyDir(const std::string& path) const;
  // Copies a directory tree from this machine into the target, changing only
  // files whose content differs; returns whether anything changed. Other files
  // there (build outputs of the kbuild strategy) are left alone.
  util::Result<bool> SyncTree(const std::string& from_local_dir, const std::string& to_path) const;
  // Whether every file of `from_local_dir` is at `to_path` with the same content and mode.
  bool TreeEquals(const std::string& from_local_dir, const std::string& to_path) const;

  // Tests: resolve by the user-space walk even where openat2 exists.
  static void ForceWalkForTests(bool on);

 private:
  std::string root_;
};

// The user-space resolver alone (the fallback when openat2(RESOLVE_IN_ROOT)
// is not there): `path` inside `root` (an absolute local directory).
util::Result<std::string> ResolveInRoot(const std::string& root, const std::string& path, bool follow_last);

}  // namespace host
