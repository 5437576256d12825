// The end-to-end test's VM image for one Debian release, built once and kept
// in the lab's cache (${XDG_CACHE_HOME:-~/.cache}/toa-build/e2e-images/NAME):
// a debootstrap root with systemd, udev, kmod and the release's kernel (the
// lab's resolved row), a local apt repository at /srv/toa-e2e-repo holding
// what `toa-build deps` installs plus the upgrade kernel's image and headers
// (downloaded by the image's own apt: never the host's sources), and the
// toa-e2e.service that runs the guest driver from a second, read-only disk.
// The image has no network. The entry is rebuilt when its recipe changes and
// verified (stamp, key files, disk size) before every use.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "e2e/config.h"
#include "lab/matrix.h"
#include "lab/provision.h"
#include "util/process.h"
#include "util/result.h"

namespace e2e {

inline constexpr const char* kRepoDir = "/srv/toa-e2e-repo";
inline constexpr const char* kPayloadMount = "/opt/toa-e2e";

struct ImageSpec {
  ReleaseSpec release;
  lab::KernelRow row, upgrade_row;
  std::string kver, version;                  // the image's kernel and its package version
  std::string upgrade_kver, upgrade_version;  // the kernel the VM upgrades to
  std::vector<std::string> packages;          // debootstrap --include
  // Content stamp of the distro profiles: the image's local repository holds
  // what `deps` plans from them, so a profile change rebuilds the image.
  std::string profiles_stamp;
  int headroom_mb = 2048;
};

struct Image {
  std::string dir;
  std::string disk;     // raw ext4 image (the whole disk is the filesystem: root=/dev/vda)
  std::string vmlinuz;  // the image's own /boot files for its first kernel
  std::string initrd;
  std::vector<std::string> upgrade_packages;  // what the VM installs with apt for the upgrade
  bool built = false;
  double seconds = 0;
};

// What the entry is made from (its stamp); any change rebuilds it.
std::string ImageRecipe(const ImageSpec& spec);
// A stamp of the names and contents of the .yaml files in `dir` (ProfilesDir).
std::string ProfilesStamp(const std::string& dir);
// Network apt sources used while building: the rows' suites (and security suites).
std::string BuildSources(const ImageSpec& spec);
// The image's only apt source once built: the local repository, offline.
std::string LocalSources();
// Image config files (path inside the image -> content), written right after
// debootstrap / once the image's own kernel and initrd are in place.
std::vector<std::pair<std::string, std::string>> ImageFiles();
std::vector<std::pair<std::string, std::string>> BootedImageFiles();
// The upgrade kernel's packages (image packages and headers, pinned).
std::vector<std::string> UpgradePackages(const ImageSpec& spec, bool pinned);

using ProgressFn = std::function<void(const std::string&)>;

util::Result<Image> EnsureImage(const ImageSpec& spec, util::ProcessRunner& runner, const std::string& cache_root,
                                const ProgressFn& progress);

}  // namespace e2e
