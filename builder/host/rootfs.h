// The system toa-build reads and changes, seen through a root directory:
// "/" on a real host, a fixture tree in tests, any tree with --root. Every
// path given to RootFs is a path on the target system ("/etc/os-release").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace host {

class RootFs {
 public:
  explicit RootFs(std::string root = "/");

  const std::string& root() const { return root_; }
  bool is_host_root() const { return root_ == "/"; }
  // Where a target path lives on this machine.
  std::string Path(const std::string& target_path) const;

  bool Exists(const std::string& path) const;
  bool IsDir(const std::string& path) const;
  std::optional<std::string> Read(const std::string& path) const;
  // Names in a directory, sorted; empty when it does not exist.
  std::vector<std::string> List(const std::string& dir) const;

  // Writes atomically unless the content and mode are already there; returns
  // whether anything changed.
  util::Result<bool> WriteIfChanged(const std::string& path, const std::string& content,
                                    int mode = 0644) const;
  util::Status Remove(const std::string& path) const;         // missing is fine
  util::Status RemoveTree(const std::string& path) const;     // missing is fine
  // Copies a directory tree from this machine into the target, changing only
  // files whose content differs; returns whether anything changed. Other files
  // there (build outputs of the kbuild strategy) are left alone.
  util::Result<bool> SyncTree(const std::string& from_local_dir, const std::string& to_path) const;
  // Whether every file of `from_local_dir` is at `to_path` with the same content and mode.
  bool TreeEquals(const std::string& from_local_dir, const std::string& to_path) const;

 private:
  std::string root_;
};

}  // namespace host
