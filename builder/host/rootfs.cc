#include "host/rootfs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>

#include "util/fs.h"
#include "util/strings.h"

namespace host {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_force_walk{false};

// Symlinks followed per resolution before it counts as a loop (Linux: 40).
constexpr int kMaxLinks = 40;

std::deque<std::string> Components(const std::string& path) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string c = path.substr(i, j - i);
    if (!c.empty() && c != ".") out.push_back(c);
    i = j + 1;
  }
  return out;
}

std::string JoinUnder(const std::string& root, const std::vector<std::string>& parts) {
  std::string out = root == "/" ? "" : root;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::string Shown(const std::string& path) { return util::Printable(path, 200); }

util::Result<std::string> ReadOpenFd(int fd, const std::string& path, size_t max_bytes) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return util::MakeError("cannot read " + Shown(path) + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return util::MakeError(Shown(path) + " is not a regular file (" +
                           (S_ISFIFO(st.st_mode)                          ? "a FIFO"
                            : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                            : S_ISDIR(st.st_mode)                          ? "a directory"
                                                                           : "a special file") +
                           "): refusing to read it; replace it with a regular file");
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return util::MakeError("cannot read " + Shown(path) + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes)
      return util::MakeError(Shown(path) + " is larger than " + std::to_string(max_bytes) +
                             " bytes: refusing to read it; it is not what toa-build expects there");
  }
  return out;
}

// openat2(RESOLVE_IN_ROOT): the kernel resolves `path` as if `root_fd` were
// "/", race-free. -1 with errno ENOSYS (and friends) means: not available.
int OpenInRootKernel(int root_fd, const std::string& path, int flags) {
  struct open_how how {};
  how.flags = static_cast<unsigned long long>(flags);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  if (rel.empty()) rel = ".";
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN || attempt >= 3) return static_cast<int>(fd);
  }
}

bool KernelResolverMissing(int err) { return err == ENOSYS || err == EPERM || err == E2BIG || err == EINVAL; }

}  // namespace

util::Result<std::string> ResolveInRoot(const std::string& root, const std::string& path, bool follow_last) {
  std::deque<std::string> todo = Components(path);
  std::vector<std::string> done;
  int links = 0;
  bool missing = false;  // a component did not exist: nothing below it does either
  while (!todo.empty()) {
    std::string c = todo.front();
    todo.pop_front();
    if (c == "..") {
      // Past a missing component the kernel says ENOENT; going back up from
      // there would skip checking what follows.
      if (missing) return util::MakeError(Shown(path) + " does not exist under " + Shown(root));
      if (!done.empty()) done.pop_back();  // `..` of the root is the root
      continue;
    }
    if (missing) {
      done.push_back(c);
      continue;
    }
    std::string local = JoinUnder(root, done) + "/" + c;
    if (root == "/" && done.empty()) local = "/" + c;
    struct stat st {};
    if (::lstat(local.c_str(), &st) != 0) {
      if (errno != ENOENT)
        return util::MakeError("cannot resolve " + Shown(path) + " under " + Shown(root) + ": " +
                               std::strerror(errno));
      missing = true;
      done.push_back(c);
      continue;
    }
    bool last = todo.empty();
    if (S_ISLNK(st.st_mode) && (!last || follow_last)) {
      if (++links > kMaxLinks)
        return util::MakeError(Shown(path) + " under " + Shown(root) +
                               " has a symlink loop (more than 40 links): fix the links");
      std::vector<char> buf(static_cast<size_t>(std::max<off_t>(st.st_size, 255)) + 2);
      ssize_t n = ::readlink(local.c_str(), buf.data(), buf.size() - 1);
      if (n <= 0)
        return util::MakeError("cannot read the symlink " + Shown(local) + ": " +
                               (n < 0 ? std::strerror(errno) : "empty target"));
      std::string target(buf.data(), static_cast<size_t>(n));
      // An absolute target means the root's own "/" (as chroot sees it).
      if (target[0] == '/') done.clear();
      auto more = Components(target);
      todo.insert(todo.begin(), more.begin(), more.end());
      continue;
    }
    if (!last && !S_ISDIR(st.st_mode))
      return util::MakeError(Shown(path) + " under " + Shown(root) + ": " + Shown(c) + " is not a directory");
    done.push_back(c);
  }
  return JoinUnder(root, done);
}

void RootFs::ForceWalkForTests(bool on) { g_force_walk = on; }

RootFs::RootFs(std::string root) : root_(std::move(root)) {
  if (root_.empty()) root_ = "/";
  // The root itself is the caller's choice: its own symlinks are followed
  // once here, so `..` and absolute links inside stop at the real folder.
  std::error_code ec;
  auto canonical = fs::canonical(root_, ec);
  if (!ec) root_ = canonical.string();
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

util::Result<std::string> RootFs::Resolve(const std::string& target_path, bool follow_last) const {
  if (is_host_root()) return target_path.empty() || target_path[0] != '/' ? "/" + target_path : target_path;
  return ResolveInRoot(root_, target_path, follow_last);
}

bool RootFs::Exists(const std::string& path) const {
  auto local = Resolve(path, true);
  struct stat st {};
  return local && ::stat(local->c_str(), &st) == 0;
}

bool RootFs::Lexists(const std::string& path) const {
  auto local = Resolve(path, false);
  struct stat st {};
  return local && ::lstat(local->c_str(), &st) == 0;
}

bool RootFs::IsDir(const std::string& path) const {
  auto local = Resolve(path, true);
  struct stat st {};
  return local && ::stat(local->c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::optional<int> RootFs::Mode(const std::string& path) const {
  auto local = Resolve(path, true);
  struct stat st {};
  if (!local || ::stat(local->c_str(), &st) != 0) return std::nullopt;
  return static_cast<int>(st.st_mode & 07777);
}

util::Result<std::string> RootFs::ReadChecked(const std::string& path, size_t max_bytes) const {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused after fstat).
  const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  int fd = -1;
  bool resolved_by_kernel = false;
  if (!is_host_root() && !g_force_walk) {
    int root_fd = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) return util::MakeError("cannot open --root " + Shown(root_) + ": " + std::strerror(errno));
    fd = OpenInRootKernel(root_fd, path, flags);
    int err = errno;
    ::close(root_fd);
    if (fd >= 0) {
      resolved_by_kernel = true;
    } else if (!KernelResolverMissing(err)) {
      return util::MakeError("cannot read " + Shown(path) + " under " + Shown(root_) + ": " + std::strerror(err));
    }
  }
  if (!resolved_by_kernel) {
    auto local = Resolve(path, true);
    if (!local) return local.error();
    // Every component was checked; O_NOFOLLOW catches a link planted since.
    fd = ::open(local->c_str(), flags | (is_host_root() ? 0 : O_NOFOLLOW));
    if (fd < 0) return util::MakeError("cannot read " + Shown(path) + ": " + std::strerror(errno));
  }
  auto r = ReadOpenFd(fd, path, max_bytes);
  ::close(fd);
  return r;
}

std::optional<std::string> RootFs::Read(const std::string& path, size_t max_bytes) const {
  auto r = ReadChecked(path, max_bytes);
  if (!r) return std::nullopt;
  return r.value();
}

std::vector<std::string> RootFs::List(const std::string& dir) const {
  std::vector<std::string> names;
  auto local = Resolve(dir, true);
  if (!local) return names;
  std::error_code ec;
  for (fs::directory_iterator it(*local, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

util::Result<bool> RootFs::WriteIfChanged(const std::string& path, const std::string& content,
                                          int mode) const {
  auto local = Resolve(path, true);
  if (!local) return local.error();
  if (Mode(path) == mode) {
    auto old = ReadChecked(path);
    if (old && old.value() == content) return false;
  }
  auto s = util::WriteFileAtomic(*local, content, mode);
  if (!s) return s.error();
  return true;
}

util::Status RootFs::Remove(const std::string& path) const {
  auto local = Resolve(path, false);
  if (!local) return local.error();
  std::error_code ec;
  fs::remove(*local, ec);
  if (ec) return util::MakeError("cannot remove " + Shown(path) + ": " + ec.message());
  return util::Ok{};
}

util::Status RootFs::RemoveTree(const std::string& path) const {
  auto local = Resolve(path, false);
  if (!local) return local.error();
  std::error_code ec;
  fs::remove_all(*local, ec);  // does not follow symlinks below
  if (ec) return util::MakeError("cannot remove " + Shown(path) + ": " + ec.message());
  return util::Ok{};
}

void RootFs::RemoveIfEmptyDir(const std::string& path) const {
  auto local = Resolve(path, false);
  if (local) ::rmdir(local->c_str());  // fails, harmlessly, when not empty
}

namespace {

// Regular files under a local `dir` (this machine, not the root), by relative
// path, with their permission bits.
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
  for (const auto& [rel, mode] : want) {
    const std::string target = to_path + "/" + rel;
    if (Mode(target) != mode) return false;
    auto a = util::ReadFile(from_local_dir + "/" + rel);
    auto b = ReadChecked(target);
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
