#include "host/rootfs.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "util/fs.h"

namespace host {

namespace fs = std::filesystem;

RootFs::RootFs(std::string root) : root_(std::move(root)) {
  if (root_.empty()) root_ = "/";
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string RootFs::Path(const std::string& target_path) const {
  if (root_ == "/") return target_path;
  if (!target_path.empty() && target_path[0] == '/') return root_ + target_path;
  return root_ + "/" + target_path;
}

bool RootFs::Exists(const std::string& path) const {
  std::error_code ec;
  // Under another root, absolute symlinks (lib/modules/KVER/build) point at
  // this machine's tree: the link itself stands for its target there.
  if (!is_host_root()) return fs::exists(fs::symlink_status(Path(path), ec));
  return fs::exists(fs::status(path, ec));
}

bool RootFs::IsDir(const std::string& path) const {
  std::error_code ec;
  return fs::is_directory(Path(path), ec);
}

std::optional<std::string> RootFs::Read(const std::string& path) const {
  auto r = util::ReadFile(Path(path));
  if (!r) return std::nullopt;
  return r.value();
}

std::vector<std::string> RootFs::List(const std::string& dir) const {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(Path(dir), ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

util::Result<bool> RootFs::WriteIfChanged(const std::string& path, const std::string& content,
                                          int mode) const {
  std::string local = Path(path);
  struct stat st {};
  if (::stat(local.c_str(), &st) == 0 && static_cast<int>(st.st_mode & 07777) == mode) {
    auto old = util::ReadFile(local);
    if (old && old.value() == content) return false;
  }
  auto s = util::WriteFileAtomic(local, content, mode);
  if (!s) return s.error();
  return true;
}

util::Status RootFs::Remove(const std::string& path) const {
  std::error_code ec;
  fs::remove(Path(path), ec);
  if (ec) return util::MakeError("cannot remove " + path + ": " + ec.message());
  return util::Ok{};
}

util::Status RootFs::RemoveTree(const std::string& path) const {
  std::error_code ec;
  fs::remove_all(Path(path), ec);
  if (ec) return util::MakeError("cannot remove " + path + ": " + ec.message());
  return util::Ok{};
}

namespace {

// Regular files under `dir`, by relative path, with their permission bits.
std::map<std::string, int> FilesUnder(const std::string& dir) {
  std::map<std::string, int> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto rel = fs::relative(it->path(), dir, ec).string();
    files[rel] = static_cast<int>(it->status().permissions() & fs::perms::mask);
  }
  return files;
}

}  // namespace

bool RootFs::TreeEquals(const std::string& from_local_dir, const std::string& to_path) const {
  auto want = FilesUnder(from_local_dir);
  auto have = FilesUnder(Path(to_path));
  for (const auto& [rel, mode] : want) {
    auto it = have.find(rel);
    if (it == have.end() || it->second != mode) return false;
    auto a = util::ReadFile(from_local_dir + "/" + rel);
    auto b = util::ReadFile(Path(to_path) + "/" + rel);
    if (!a || !b || a.value() != b.value()) return false;
  }
  return true;
}

util::Result<bool> RootFs::SyncTree(const std::string& from_local_dir,
                                    const std::string& to_path) const {
  auto want = FilesUnder(from_local_dir);
  if (want.empty())
    return util::MakeError("no source files in " + from_local_dir +
                           ": set TOA_BUILD_SOURCE_DIR to the toa-build source tree");
  bool changed = false;
  for (const auto& [rel, mode] : want) {
    auto content = util::ReadFile(from_local_dir + "/" + rel);
    if (!content) return content.error();
    auto w = WriteIfChanged(to_path + "/" + rel, content.value(), mode);
    if (!w) return w.error();
    changed = changed || w.value();
  }
  return changed;
}

}  // namespace host
