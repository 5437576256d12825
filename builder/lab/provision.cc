#include "lab/provision.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <sstream>

#include "lab/cache.h"
#include "lab/source_kernel.h"
#include "util/fs.h"

namespace lab {

namespace fs = std::filesystem;
using std::chrono::minutes;
using std::chrono::seconds;
using util::MakeError;

namespace {

// What every build root contains: the compiler and tools Kbuild needs,
// libelf for objtool, dkms for DKMS builds, xz/zstd for compressed modules.
const char* kRootPackages = "gcc,make,libelf-dev,bc,kmod,dkms,xz-utils,zstd,ca-certificates";
// Bumped when the way roots are made changes, so old roots are rebuilt.
const char* kRootFormat = "1";

const seconds kDebootstrapTimeout = minutes(30);
const int kDebootstrapAttempts = 3;
const seconds kAptUpdateTimeout = minutes(10);
const seconds kAptInstallTimeout = minutes(20);
const seconds kAptQueryTimeout = minutes(2);
const seconds kDownloadTimeout = minutes(20);
const seconds kExtractTimeout = minutes(5);
const seconds kMountTimeout = seconds(60);

const char* kChrootPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string Hex(size_t v) {
  std::ostringstream ss;
  ss << std::hex << v;
  return ss.str();
}

std::string LockDir(const std::string& cache_root) { return cache_root + "/locks"; }

bool IsMountPoint(const std::string& path) {
  struct stat self{}, parent{};
  if (::stat(path.c_str(), &self) != 0) return false;
  if (::stat((path + "/..").c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

bool ProcessAlive(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// Drops the files of users whose process is gone (crashed runs).
void PruneDeadUsers(const std::string& users_dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(users_dir, ec)) {
    std::string name = e.path().filename().string();
    pid_t pid = static_cast<pid_t>(std::atol(name.c_str()));
    if (pid <= 0 || !ProcessAlive(pid)) fs::remove(e.path(), ec);
  }
}

bool DirEmpty(const std::string& dir) {
  std::error_code ec;
  return fs::directory_iterator(dir, ec) == fs::directory_iterator();
}

std::string RootRecipe(const KernelRow& row) {
  return std::string("kind=build-root\nformat=") + kRootFormat + "\nrelease=" + row.root_release +
         "\nmirror=" + row.mirror + "\npackages=" + kRootPackages;
}

CacheEntrySpec RootSpec(const KernelRow& row, const std::string& cache_root) {
  CacheEntrySpec spec;
  spec.dir = RootDir(cache_root, row.root_release);
  spec.lock = LockDir(cache_root) + "/root-" + row.root_release + ".lock";
  spec.recipe = RootRecipe(row);
  spec.key_files = {"usr/bin/gcc", "usr/bin/make", "usr/sbin/dkms", "usr/bin/apt-get",
                    "usr/bin/env", "etc/apt/sources.list"};
  return spec;
}

std::string RootLock(const KernelRow& row, const std::string& cache_root) {
  return RootSpec(row, cache_root).lock;
}

std::string KernelDir(const std::string& cache_root, const std::string& row,
                      const std::string& kver) {
  return cache_root + "/kernels/" + row + "/" + kver;
}

std::string ResolvedFile(const std::string& cache_root, const std::string& row) {
  return cache_root + "/kernels/" + row + "/resolved";
}

std::vector<std::string> ImagePackages(const KernelRow& row, const std::string& kver) {
  std::vector<std::string> out;
  for (const auto& t : row.image_packages) out.push_back(ExpandKver(t, kver));
  return out;
}

CacheEntrySpec KernelSpec(const KernelRow& row, const std::string& cache_root,
                          const std::string& kver) {
  CacheEntrySpec spec;
  spec.dir = KernelDir(cache_root, row.name, kver);
  spec.lock = LockDir(cache_root) + "/kernel-" + row.name + "-" + kver + ".lock";
  std::string packages;
  for (const auto& p : ImagePackages(row, kver)) packages += (packages.empty() ? "" : ",") + p;
  spec.recipe = "kind=kernel\nrow=" + row.name + "\nkver=" + kver + "\nsuite=" + row.suite +
                "\npackages=" + packages;
  spec.key_files = {ExpandKver(row.vmlinuz_glob, kver), ExpandKver(row.modules_dir, kver) + "/kernel"};
  return spec;
}

std::string HeadersDirInRoot(const KernelRow& row, const std::string& kver) {
  return "/usr/src/" + ExpandKver(row.headers_package, kver);
}

// Headers are installed into the shared root by its apt, so they cannot be
// renamed into place; a stamp written after a successful install marks them.
std::string HeadersStamp(const std::string& root, const std::string& kver) {
  return root + "/var/lib/toa-build/headers/" + kver;
}

std::string HeadersProblem(const KernelRow& row, const std::string& root, const std::string& kver) {
  std::error_code ec;
  if (!fs::exists(HeadersStamp(root, kver), ec)) return "not installed";
  if (!fs::exists(root + HeadersDirInRoot(row, kver) + "/Makefile", ec))
    return "Makefile missing";
  return "";
}

// The version field of one Debian package stanza line "Key: value".
std::string Field(const std::string& stanza, const std::string& key) {
  std::istringstream ss(stanza);
  std::string line;
  while (std::getline(ss, line))
    if (line.rfind(key + ": ", 0) == 0) return line.substr(key.size() + 2);
  return "";
}

// The kver in `depends` whose package name matches the template.
std::string KverFromDepends(const std::string& depends, const std::string& tmpl) {
  size_t at = tmpl.find("{kver}");
  std::string prefix = tmpl.substr(0, at), suffix = tmpl.substr(at + 6);
  std::string item;
  std::istringstream ss(depends);
  while (std::getline(ss, item, ',')) {
    std::istringstream alt(item);
    std::string token;
    while (alt >> token) {
      if (token == "|" || token[0] == '(') continue;
      if (token.size() > prefix.size() + suffix.size() && token.rfind(prefix, 0) == 0 &&
          token.compare(token.size() - suffix.size(), suffix.size(), suffix) == 0) {
        std::string kver = token.substr(prefix.size(), token.size() - prefix.size() - suffix.size());
        if (kver.find(':') == std::string::npos) return kver;
      }
    }
  }
  return "";
}

struct Resolved {
  std::string kver;
  std::string meta_version;
};

// `apt-cache madison` lines: "pkg | version | URI suite/component arch Packages".
util::Result<std::string> NewestInSuites(const std::string& madison, const std::string& package,
                                         const std::vector<std::string>& suites) {
  std::string best;
  std::istringstream ss(madison);
  std::string line;
  while (std::getline(ss, line)) {
    std::vector<std::string> cols;
    std::string col;
    std::istringstream ls(line);
    while (std::getline(ls, col, '|')) {
      size_t b = col.find_first_not_of(' '), e = col.find_last_not_of(' ');
      cols.push_back(b == std::string::npos ? "" : col.substr(b, e - b + 1));
    }
    if (cols.size() < 3 || cols[0] != package) continue;
    std::istringstream src(cols[2]);
    std::string uri, dist;
    src >> uri >> dist;
    dist = dist.substr(0, dist.find('/'));
    bool wanted = false;
    for (const auto& s : suites) wanted = wanted || (!s.empty() && s == dist);
    if (wanted && (best.empty() || CompareDebianVersions(cols[1], best) > 0)) best = cols[1];
  }
  if (best.empty()) {
    std::string list;
    for (const auto& s : suites)
      if (!s.empty()) list += (list.empty() ? "" : ", ") + s;
    return MakeError("no version of " + package + " in " + list +
                     "; check the row's suite and package names in the matrix");
  }
  return best;
}

// The root's apt configuration, rewritten on every cold provisioning so a
// change here reaches existing roots without rebuilding them.
const char* kAptConfig =
    // Recommends would pull whole toolchains.
    "APT::Install-Recommends \"false\";\n"
    "APT::Install-Suggests \"false\";\n"
    "Acquire::Languages \"none\";\n"
    // _apt cannot write the download dirs we create as root.
    "APT::Sandbox::User \"root\";\n"
    // Mirrors here serve frozen snapshots: sid's and backports' Release files
    // carry a Valid-Until that has passed, and apt would refuse them.
    "Acquire::Check-Valid-Until \"false\";\n";

util::Status WriteSources(const KernelRow& row, const std::string& root, bool* changed) {
  if (auto st = util::WriteFileAtomic(root + "/etc/apt/apt.conf.d/90toa-build", kAptConfig); !st)
    return st;
  // The root's own apt is the private apt configuration: its release in
  // sources.list (made with the root), each row's suites in sources.list.d.
  std::vector<std::pair<std::string, std::string>> wanted = {{row.suite, row.mirror}};
  if (!row.security_suite.empty()) wanted.push_back({row.security_suite, row.security_mirror});
  for (const auto& [suite, uri] : wanted) {
    if (suite == row.root_release) continue;
    std::string path = root + "/etc/apt/sources.list.d/toa-" + suite + ".list";
    std::string content = "deb " + uri + " " + suite + " main\n";
    auto old = util::ReadFile(path);
    if (old && *old == content) continue;
    if (auto st = util::WriteFileAtomic(path, content); !st) return st;
    *changed = true;
  }
  return util::Ok{};
}

std::atomic<unsigned> session_counter{0};

}  // namespace

std::string RootDir(const std::string& cache_root, const std::string& release) {
  return cache_root + "/roots/" + release;
}

// ---------------------------------------------------------------- RootSession

util::Result<RootSession> RootSession::Enter(const std::string& root,
                                             const std::string& cache_root,
                                             util::ProcessRunner& runner) {
  std::string key = Hex(std::hash<std::string>{}(root));
  std::string lock_path = LockDir(cache_root) + "/proc-" + key + ".lock";
  std::string users = LockDir(cache_root) + "/proc-" + key + ".users";
  auto lock = util::FileLock::Acquire(lock_path, 600);
  if (!lock) return lock.error();
  std::error_code ec;
  fs::create_directories(users, ec);
  PruneDeadUsers(users);
  if (!IsMountPoint(root + "/proc")) {
    auto r = runner.RunChecked({"mount", "-t", "proc", "proc", root + "/proc"}, kMountTimeout,
                     "mount /proc in the build root");
    if (!r) return r.error();
    // Remembered so the last user unmounts it even if the mount is not
    // visible to us (another mount namespace).
    util::WriteFileAtomic(users + ".mounted", root + "\n");
  }
  std::string user = users + "/" + std::to_string(::getpid()) + "." +
                     std::to_string(session_counter++);
  if (auto st = util::WriteFileAtomic(user, root + "\n"); !st) return st.error();
  return RootSession(root, users, user, lock_path, &runner);
}

RootSession::RootSession(RootSession&& other) noexcept
    : root_(std::move(other.root_)), users_dir_(std::move(other.users_dir_)),
      user_file_(std::move(other.user_file_)), lock_(std::move(other.lock_)),
      runner_(other.runner_) {
  other.runner_ = nullptr;
}

RootSession::~RootSession() { Leave(); }

void RootSession::Leave() {
  if (!runner_) return;
  util::ProcessRunner* runner = runner_;
  runner_ = nullptr;
  auto lock = util::FileLock::Acquire(lock_, 600);
  std::error_code ec;
  fs::remove(user_file_, ec);
  if (!lock) return;  // leave /proc mounted rather than pull it from under someone
  PruneDeadUsers(users_dir_);
  if (DirEmpty(users_dir_) && (IsMountPoint(root_ + "/proc") || fs::exists(users_dir_ + ".mounted", ec))) {
    fs::remove(users_dir_ + ".mounted", ec);
    util::ProcessSpec spec;
    spec.argv = {"umount", root_ + "/proc"};
    spec.timeout = kMountTimeout;
    auto r = runner->Run(spec);
    if (!r || !r->ok()) {
      spec.argv = {"umount", "-l", root_ + "/proc"};
      runner->Run(spec);
    }
  }
}

std::vector<std::string> RootSession::Command(const std::vector<std::string>& argv,
                                              const std::string& cwd) const {
  std::vector<std::string> cmd = {"chroot", root_, "/usr/bin/env", "-i", "-C", cwd, kChrootPath,
                                  "HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return cmd;
}

util::Result<util::ProcessResult> RootSession::RunUnchecked(const std::vector<std::string>& argv,
                                                            seconds timeout,
                                                            const std::string& cwd) {
  util::ProcessSpec spec;
  spec.argv = Command(argv, cwd);
  spec.timeout = timeout;
  return runner_->Run(spec);
}

util::Result<util::ProcessResult> RootSession::Run(const std::vector<std::string>& argv,
                                                   seconds timeout, const std::string& step,
                                                   const std::string& cwd) {
  util::ProcessSpec spec;
  spec.argv = Command(argv, cwd);
  spec.timeout = timeout;
  return runner_->RunChecked(spec, step);
}

// ------------------------------------------------------------ versions

namespace {

int Order(char c) {
  if (std::isdigit(static_cast<unsigned char>(c))) return 0;
  if (std::isalpha(static_cast<unsigned char>(c))) return c;
  if (c == '~') return -1;
  if (c) return c + 256;
  return 0;
}

// dpkg's verrevcmp: alternating non-digit and digit runs.
int CompareFragment(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    int first_diff = 0;
    while ((i < a.size() && !std::isdigit(static_cast<unsigned char>(a[i]))) ||
           (j < b.size() && !std::isdigit(static_cast<unsigned char>(b[j])))) {
      int ac = i < a.size() ? Order(a[i]) : 0;
      int bc = j < b.size() ? Order(b[j]) : 0;
      if (ac != bc) return ac - bc;
      ++i;
      ++j;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    while (i < a.size() && std::isdigit(static_cast<unsigned char>(a[i])) && j < b.size() &&
           std::isdigit(static_cast<unsigned char>(b[j]))) {
      if (!first_diff) first_diff = a[i] - b[j];
      ++i;
      ++j;
    }
    if (i < a.size() && std::isdigit(static_cast<unsigned char>(a[i]))) return 1;
    if (j < b.size() && std::isdigit(static_cast<unsigned char>(b[j]))) return -1;
    if (first_diff) return first_diff;
  }
  return 0;
}

struct DebVersion {
  long epoch = 0;
  std::string upstream, revision;
};

DebVersion Split(const std::string& v) {
  DebVersion d;
  std::string rest = v;
  size_t colon = rest.find(':');
  if (colon != std::string::npos) {
    d.epoch = std::atol(rest.substr(0, colon).c_str());
    rest = rest.substr(colon + 1);
  }
  size_t dash = rest.rfind('-');
  if (dash != std::string::npos) {
    d.revision = rest.substr(dash + 1);
    rest = rest.substr(0, dash);
  }
  d.upstream = rest;
  return d;
}

}  // namespace

std::string RootLockPath(const KernelRow& row, const std::string& cache_root) {
  return RootLock(row, cache_root);
}

int CompareDebianVersions(const std::string& a, const std::string& b) {
  DebVersion x = Split(a), y = Split(b);
  if (x.epoch != y.epoch) return x.epoch < y.epoch ? -1 : 1;
  int c = CompareFragment(x.upstream, y.upstream);
  if (c) return c < 0 ? -1 : 1;
  c = CompareFragment(x.revision, y.revision);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// ------------------------------------------------------------ provisioning

namespace {

util::Result<EnsureResult> EnsureRoot(const KernelRow& row, util::ProcessRunner& runner,
                                      const std::string& cache_root, const ProgressFn& progress) {
  CacheEntrySpec spec = RootSpec(row, cache_root);
  return EnsureEntry(spec, runner, [&](const std::string& tmp) -> util::Result<std::string> {
    progress("debootstrap " + row.root_release + " build root (a few minutes)");
    // A mirror's transient download failure ("Couldn't download packages",
    // seen on a cold cache) must not fail a whole row: start again from an
    // empty folder, a bounded number of times.
    util::Result<util::ProcessResult> boot = util::Error{"debootstrap not run"};
    for (int attempt = 1; attempt <= kDebootstrapAttempts; ++attempt) {
      boot = runner.RunChecked({"debootstrap", "--variant=minbase", std::string("--include=") + kRootPackages,
                      row.root_release, tmp, row.mirror},
                     kDebootstrapTimeout, "debootstrap " + row.root_release);
      if (boot || attempt == kDebootstrapAttempts) break;
      progress("debootstrap " + row.root_release + " failed (attempt " + std::to_string(attempt) +
               "), retrying: " + boot.error().message.substr(0, 200));
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(tmp, ec)) fs::remove_all(entry.path(), ec);
    }
    if (!boot) return boot.error();
    // Only the release itself here; rows add their suites in sources.list.d.
    if (auto st = util::WriteFileAtomic(tmp + "/etc/apt/sources.list",
                                        "deb " + row.mirror + " " + row.root_release + " main\n");
        !st)
      return st.error();
    std::error_code ec;
    fs::create_directories(tmp + "/etc/apt/sources.list.d", ec);
    util::ProcessSpec gcc;
    gcc.argv = {"chroot", tmp, "gcc", "-dumpfullversion"};
    gcc.timeout = seconds(60);
    auto version = runner.RunChecked(gcc, "check gcc in the new " + row.root_release + " root");
    if (!version) return version.error();
    std::string v = version->output;
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    return "gcc=" + v + "\n";
  });
}

// Resolves the row's kver and installs its headers in the root. Needs the
// network (apt-get update); holds the root's lock.
util::Result<Resolved> ResolveAndInstallHeaders(const KernelRow& row, util::ProcessRunner& runner,
                                                const std::string& cache_root,
                                                const ProgressFn& progress) {
  std::string root = RootDir(cache_root, row.root_release);
  auto lock = util::FileLock::Acquire(RootLock(row, cache_root), 3600);
  if (!lock) return lock.error();
  bool changed = false;
  if (auto st = WriteSources(row, root, &changed); !st) return st.error();
  auto session = RootSession::Enter(root, cache_root, runner);
  if (!session) return session.error();

  progress("apt-get update in the " + row.root_release + " root");
  auto update = session->Run({"apt-get", "update", "-q"}, kAptUpdateTimeout,
                             "apt-get update in " + root);
  if (!update) return update.error();

  Resolved res;
  std::vector<std::string> suites = {row.suite, row.security_suite};
  if (!row.pin.empty()) {
    res.kver = row.pin;
    std::string pkg = ExpandKver(row.headers_package, res.kver);
    auto madison = session->Run({"apt-cache", "madison", pkg}, kAptQueryTimeout,
                                "look up pinned " + pkg);
    if (!madison) return madison.error();
    auto v = NewestInSuites(madison->output, pkg, suites);
    if (!v) return MakeError("row " + row.name + " pins " + row.pin + ", but " + v.error().message);
    res.meta_version = *v;
  } else {
    auto madison = session->Run({"apt-cache", "madison", row.headers_meta}, kAptQueryTimeout,
                                "look up " + row.headers_meta);
    if (!madison) return madison.error();
    auto v = NewestInSuites(madison->output, row.headers_meta, suites);
    if (!v) return MakeError("row " + row.name + ": " + v.error().message);
    auto show = session->Run({"apt-cache", "show", row.headers_meta + "=" + *v}, kAptQueryTimeout,
                             "read " + row.headers_meta + " " + *v);
    if (!show) return show.error();
    std::string stanza = show->output.substr(0, show->output.find("\n\n"));
    res.kver = KverFromDepends(Field(stanza, "Depends"), row.headers_package);
    if (res.kver.empty())
      return MakeError("row " + row.name + ": " + row.headers_meta + " " + *v +
                       " depends on no package like " + row.headers_package + " (Depends: " +
                       Field(stanza, "Depends") + ")");
    res.meta_version = *v;
    // The image metapackage should be at the same version; when the archive
    // is mid-upload (signed images lag in sid) say so: the headers decide.
    auto image = session->Run({"apt-cache", "madison", row.image_meta}, kAptQueryTimeout,
                              "look up " + row.image_meta);
    if (!image) return image.error();
    auto image_version = NewestInSuites(image->output, row.image_meta, suites);
    if (!image_version)
      progress("warning: " + image_version.error().message);
    else if (*image_version != *v)
      progress("warning: " + row.image_meta + " is at " + *image_version + " but " +
               row.headers_meta + " at " + *v + "; using " + *v);
  }
  progress("resolved " + row.name + " to " + res.kver + " (" + res.meta_version + ")");

  if (std::string problem = HeadersProblem(row, root, res.kver); !problem.empty()) {
    std::string pkg = ExpandKver(row.headers_package, res.kver);
    progress("installing " + pkg + " in the " + row.root_release + " root");
    // A run killed at its deadline may have left dpkg half-way; finish that
    // first or apt refuses to install anything.
    auto configure = session->Run({"dpkg", "--configure", "-a"}, kAptInstallTimeout,
                                  "finish interrupted package setup in " + root);
    if (!configure) return configure.error();
    std::vector<std::string> argv = {"apt-get", "install", "-y", "-q", "--no-install-recommends"};
    if (problem != "not installed") argv.push_back("--reinstall");
    argv.push_back(pkg + "=" + res.meta_version);
    auto install = session->Run(argv, kAptInstallTimeout, "install " + pkg);
    if (!install) return install.error();
    std::error_code ec;
    if (!fs::exists(root + HeadersDirInRoot(row, res.kver) + "/Makefile", ec))
      return MakeError("installed " + pkg + " but " + HeadersDirInRoot(row, res.kver) +
                       "/Makefile is missing; the matrix's headers_package is wrong");
    if (auto st = util::WriteFileAtomic(HeadersStamp(root, res.kver),
                                        "package=" + pkg + "\nversion=" + res.meta_version + "\n");
        !st)
      return st.error();
  }
  return res;
}

std::string FindVmlinuz(const std::string& dir, const std::string& pattern);

// Downloads the image packages with the root's apt and extracts them into
// a fresh kernel entry.
util::Result<EnsureResult> EnsureKernel(const KernelRow& row, util::ProcessRunner& runner,
                                        const std::string& cache_root, const Resolved& res,
                                        const ProgressFn& progress) {
  CacheEntrySpec spec = KernelSpec(row, cache_root, res.kver);
  return EnsureEntry(spec, runner, [&](const std::string& tmp) -> util::Result<std::string> {
    std::string root = RootDir(cache_root, row.root_release);
    std::string dl_in_root = "/var/cache/toa-build/download/" + row.name + "." +
                             std::to_string(::getpid());
    std::string dl = root + dl_in_root;
    std::error_code ec;
    fs::remove_all(dl, ec);
    fs::create_directories(dl, ec);
    if (ec) return MakeError("cannot create " + dl + ": " + ec.message());
    {
      auto lock = util::FileLock::Acquire(RootLock(row, cache_root), 3600);
      if (!lock) return lock.error();
      auto session = RootSession::Enter(root, cache_root, runner);
      if (!session) return session.error();
      std::vector<std::string> argv = {"apt-get", "download", "-q"};
      for (const auto& p : ImagePackages(row, res.kver)) argv.push_back(p + "=" + res.meta_version);
      progress("downloading " + res.kver + " image packages");
      auto download = session->Run(argv, kDownloadTimeout, "download the " + row.name + " kernel",
                                   dl_in_root);
      if (!download) {
        fs::remove_all(dl, ec);
        return download.error();
      }
    }
    std::string versions;
    std::vector<fs::path> debs;
    for (const auto& e : fs::directory_iterator(dl, ec))
      if (e.path().extension() == ".deb") debs.push_back(e.path());
    std::sort(debs.begin(), debs.end());
    if (debs.size() != row.image_packages.size()) {
      fs::remove_all(dl, ec);
      return MakeError("apt-get download of the " + row.name + " kernel gave " +
                       std::to_string(debs.size()) + " packages, expected " +
                       std::to_string(row.image_packages.size()));
    }
    progress("extracting " + res.kver);
    for (const auto& deb : debs) {
      auto x = runner.RunChecked({"dpkg-deb", "-x", deb.string(), tmp}, kExtractTimeout,
                       "extract " + deb.filename().string());
      if (!x) {
        fs::remove_all(dl, ec);
        return x.error();
      }
      versions += "deb=" + deb.filename().string() + "\n";
    }
    fs::remove_all(dl, ec);
    // Say which matrix key is wrong rather than only that a file is missing.
    std::string modules = ExpandKver(row.modules_dir, res.kver);
    std::string vmlinuz = FindVmlinuz(tmp, ExpandKver(row.vmlinuz_glob, res.kver));
    if (!fs::exists(vmlinuz, ec) || !fs::is_directory(tmp + "/" + modules + "/kernel", ec)) {
      std::string found;
      for (const char* d : {"boot", "lib/modules", "usr/lib/modules"})
        for (const auto& e : fs::directory_iterator(tmp + "/" + d, ec))
          found += (found.empty() ? "" : ", ") + fs::relative(e.path(), tmp).string();
      return MakeError("the " + row.name + " image has no " +
                       (fs::exists(vmlinuz, ec) ? modules + "/kernel" : ExpandKver(row.vmlinuz_glob, res.kver)) +
                       " (it has: " + found + "); fix `vmlinuz`/`modules_dir` of row " + row.name +
                       " in the matrix");
    }
    return "package_version=" + res.meta_version + "\n" + versions;
  });
}

std::string FindVmlinuz(const std::string& dir, const std::string& pattern) {
  // `vmlinuz` may end in a '*' component (e.g. "boot/vmlinuz-*").
  fs::path p = fs::path(dir) / pattern;
  std::string name = p.filename().string();
  size_t star = name.find('*');
  if (star == std::string::npos) return p.string();
  std::error_code ec;
  std::string prefix = name.substr(0, star), suffix = name.substr(star + 1);
  for (const auto& e : fs::directory_iterator(p.parent_path(), ec)) {
    std::string n = e.path().filename().string();
    if (n.size() >= prefix.size() + suffix.size() && n.rfind(prefix, 0) == 0 &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      return e.path().string();
  }
  return p.string();
}

ProvisionedKernel Describe(const KernelRow& row, const std::string& cache_root,
                           const std::string& kver, const std::string& version) {
  ProvisionedKernel k;
  k.row = row.name;
  k.kver = kver;
  k.package_version = version;
  std::string dir = KernelDir(cache_root, row.name, kver);
  k.vmlinuz = FindVmlinuz(dir, ExpandKver(row.vmlinuz_glob, kver));
  k.modules_dir = dir + "/" + ExpandKver(row.modules_dir, kver);
  k.build_root = RootDir(cache_root, row.root_release);
  k.headers_dir = HeadersDirInRoot(row, kver);
  auto root_stamp = ReadStamp(k.build_root);
  if (root_stamp) k.gcc_version = StampValue(*root_stamp, "gcc");
  return k;
}

}  // namespace

util::Result<ProvisionedKernel> ProvisionRow(const KernelRow& row, util::ProcessRunner& runner,
                                             const std::string& cache_root, ProgressFn progress) {
  return ProvisionRow(row, runner, cache_root, std::move(progress), ProvisionOptions{});
}

util::Result<ProvisionedKernel> ProvisionRow(const KernelRow& row, util::ProcessRunner& runner,
                                             const std::string& cache_root, ProgressFn progress,
                                             const ProvisionOptions& options) {
  auto start = std::chrono::steady_clock::now();
  if (!progress) progress = [](const std::string&) {};
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::string root = RootDir(cache_root, row.root_release);

  if (row.from_source) {
    auto root_entry = EnsureRoot(row, runner, cache_root, progress);
    if (!root_entry) return root_entry.error();
    auto k = ProvisionSourceRow(row, runner, cache_root, progress, options);
    if (k) k->seconds = elapsed();
    return k;
  }

  // Warm path: the kver known (pinned or resolved before), root, headers and
  // kernel entries complete. Reads stamps only: no commands, no network.
  if (!options.refresh) {
    std::string kver = row.pin;
    if (kver.empty()) {
      auto resolved = util::ReadFile(ResolvedFile(cache_root, row.name));
      if (resolved) kver = StampValue(*resolved, "kver");
    }
    if (!kver.empty() && EntryProblem(RootSpec(row, cache_root)).empty() &&
        HeadersProblem(row, root, kver).empty() &&
        EntryProblem(KernelSpec(row, cache_root, kver)).empty()) {
      auto stamp = ReadStamp(KernelDir(cache_root, row.name, kver));
      if (stamp) {
        ProvisionedKernel k = Describe(row, cache_root, kver, StampValue(*stamp, "package_version"));
        k.warm = true;
        k.seconds = elapsed();
        progress("cached " + row.name + ": " + kver);
        return k;
      }
    }
  }

  auto root_entry = EnsureRoot(row, runner, cache_root, progress);
  if (!root_entry) return root_entry.error();
  if (root_entry->built && !root_entry->rebuilt_because.empty())
    progress("rebuilt the " + row.root_release + " root (" + root_entry->rebuilt_because + ")");

  auto res = ResolveAndInstallHeaders(row, runner, cache_root, progress);
  if (!res) return res.error();

  auto kernel = EnsureKernel(row, runner, cache_root, *res, progress);
  if (!kernel) return kernel.error();
  if (kernel->built && !kernel->rebuilt_because.empty())
    progress("re-extracted " + res->kver + " (" + kernel->rebuilt_because + ")");

  if (auto st = util::WriteFileAtomic(ResolvedFile(cache_root, row.name),
                                      "kver=" + res->kver + "\npackage_version=" +
                                          res->meta_version + "\n");
      !st)
    return st.error();

  ProvisionedKernel k = Describe(row, cache_root, res->kver,
                                 StampValue(kernel->stamp, "package_version"));
  k.seconds = elapsed();
  return k;
}

}  // namespace lab
