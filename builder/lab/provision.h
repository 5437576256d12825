// Provisioning a kernel row: a debootstrap build root per release (shared by
// rows of that release), the row's headers installed in it through the root's
// own apt (the private apt configuration: never the host's sources), and the
// kernel image packages downloaded by that apt and extracted on the host.
// Everything lives in the cache and is reused; a warm cache needs no network.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "lab/matrix.h"
#include "util/process.h"
#include "util/result.h"

namespace lab {

struct ProvisionedKernel {
  std::string row;
  std::string kver;             // "6.1.0-56-amd64"
  std::string package_version;  // "6.1.192-2"
  std::string vmlinuz;          // host path
  std::string modules_dir;      // host path of /lib/modules/KVER of the image
  std::string build_root;       // host path of the release's build root
  std::string headers_dir;      // path inside the root: "/usr/src/linux-headers-KVER"
  std::string gcc_version;      // the root's compiler ("12.2.0"), for reports
  double seconds = 0;
  bool warm = false;            // everything came from the cache
  // Rows built from source: the tarball ("linux-3.10.0-1160.el7.tar.xz,
  // sha256 1a2b..."), and how long its kernel build took when it was made.
  std::string source;
  double kernel_build_s = 0;
  bool kernel_built_now = false;  // this run built the kernel (a cold build)
};

struct ProvisionOptions {
  // Resolve the version through the archive again even when the cache
  // already has a kernel for the row (otherwise the last resolved one is used).
  bool refresh = false;
  // Folders holding kernel source tarballs (--sources), searched before
  // $TOA_BUILD_KERNEL_SOURCES and the cache's own sources folder.
  std::vector<std::string> source_dirs;
};

using ProgressFn = std::function<void(const std::string&)>;

util::Result<ProvisionedKernel> ProvisionRow(const KernelRow& row, util::ProcessRunner& runner,
                                             const std::string& cache_root, ProgressFn progress);
util::Result<ProvisionedKernel> ProvisionRow(const KernelRow& row, util::ProcessRunner& runner,
                                             const std::string& cache_root, ProgressFn progress,
                                             const ProvisionOptions& options);

// Host path of the build root of `release`.
std::string RootDir(const std::string& cache_root, const std::string& release);

// The lock held while the root of `row` runs apt (hold it to run apt there too).
std::string RootLockPath(const KernelRow& row, const std::string& cache_root);

// Runs commands inside a build root with /proc mounted. /proc is mounted on
// first use and unmounted when the last user (any process) leaves, so rows
// sharing a root can build at the same time.
class RootSession {
 public:
  static util::Result<RootSession> Enter(const std::string& root, const std::string& cache_root,
                                         util::ProcessRunner& runner);
  RootSession(RootSession&& other) noexcept;
  RootSession& operator=(RootSession&&) = delete;
  ~RootSession();

  // Runs argv inside the root, in `cwd` (a path inside the root), with a
  // clean environment (PATH, HOME, LC_ALL=C, DEBIAN_FRONTEND=noninteractive):
  // `chroot ROOT env -i -C CWD VARS... argv...`. Fails on a non-zero exit.
  util::Result<util::ProcessResult> Run(const std::vector<std::string>& argv,
                                        std::chrono::seconds timeout, const std::string& step,
                                        const std::string& cwd = "/");
  // Same, returning a non-zero exit instead of failing on it.
  util::Result<util::ProcessResult> RunUnchecked(const std::vector<std::string>& argv,
                                                 std::chrono::seconds timeout,
                                                 const std::string& cwd = "/");
  // The full host command line Run() uses (for tests and dry runs).
  std::vector<std::string> Command(const std::vector<std::string>& argv,
                                   const std::string& cwd = "/") const;
  const std::string& root() const { return root_; }

 private:
  RootSession(std::string root, std::string users_dir, std::string user_file, std::string lock,
              util::ProcessRunner* runner)
      : root_(std::move(root)), users_dir_(std::move(users_dir)), user_file_(std::move(user_file)),
        lock_(std::move(lock)), runner_(runner) {}
  void Leave();
  std::string root_, users_dir_, user_file_, lock_;
  util::ProcessRunner* runner_ = nullptr;
};

// Highest of two Debian versions by dpkg's rules: <0, 0, >0 like strcmp.
int CompareDebianVersions(const std::string& a, const std::string& b);

}  // namespace lab
