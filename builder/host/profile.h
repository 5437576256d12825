// Distro detection and profiles: what the host is (os-release or legacy
// release files under a root) and the facts toa-build acts on, read from
// distros/profiles/*.yaml. No distro facts live in code.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "host/rootfs.h"
#include "util/result.h"

namespace host {

// KEY=value lines of /etc/os-release (quotes and escapes removed).
std::map<std::string, std::string> ParseOsRelease(const std::string& text);

struct OsIdentity {
  std::string id;          // os-release ID (as written)
  std::string version;     // VERSION_ID (may be empty: rolling releases)
  std::string name;        // PRETTY_NAME or NAME
  std::string codename;    // VERSION_CODENAME
  std::string variant_id;  // VARIANT_ID
  std::vector<std::string> id_like;
  std::string source;      // the file it came from
};

// Reads /etc/os-release (or /usr/lib/os-release), else the legacy files
// described by `legacy_rules` (detect.yaml).
struct LegacyRule {
  std::string file, regex, id, version;
};

struct PackageSpec {
  std::string name;
  std::vector<std::string> files;     // present when any exists
  std::vector<std::string> command;   // how to install it instead of the package manager
};

struct ArchiveSpec {
  std::string mirror;
  std::string file;      // repository definition deps writes (empty: nothing to write)
  std::string content;
  std::vector<std::string> install_args;
};

struct ContainerSpec {
  std::string runtime;
  std::string image;
  std::string setup;
  bool mount_host_modules = true;
};

struct Profile {
  std::string family;            // rhel, suse, debian, coreos
  std::string distro_id;         // the profile's distro entry (after ID_LIKE)
  std::string distro_name;
  std::string package_manager;   // yum, dnf, zypper, apt, none
  std::string header_package;    // resolved for the kernel; empty: no package has them
  std::string header_package_reason;  // why there is none (and where the headers come from)
  std::vector<PackageSpec> packages;  // compiler and tools
  std::optional<PackageSpec> dkms;
  std::string dkms_source;
  std::optional<PackageSpec> dkms_repo;
  std::string autoload;          // sysconfig-modules, modules-load.d, suse-sysconfig, coreos-container
  std::string build;             // dkms, kbuild, container
  std::vector<std::string> kernel_hooks;  // kbuild: scripts the kernel packages run
  std::string mok_key;
  std::optional<ArchiveSpec> archive;
  std::optional<ContainerSpec> container;
  bool module_supported = true;
  std::string unsupported_reason;
  std::string matched_by;        // "ID", "ID_LIKE=x", "VARIANT_ID"
};

struct Detection {
  OsIdentity os;
  std::string kernel;
  Profile profile;
  // The kernel's architecture as `uname -m` says it (x86_64, aarch64), empty
  // when nothing tells; arch_source says how it was known.
  std::string arch;
  std::string arch_source;
  // Everything deps would install, in install order, headers included.
  std::vector<std::string> AllPackages() const;
};

class ProfileSet {
 public:
  // Loads every *.yaml in `dir`.
  static util::Result<ProfileSet> Load(const std::string& dir);

  util::Result<OsIdentity> Identify(const RootFs& root) const;
  // The profile for a host and kernel release.
  util::Result<Profile> Resolve(const OsIdentity& os, const std::string& kernel) const;

 private:
  struct DistroEntry {
    std::string family;
    std::string file;
    std::string id;
    std::string variant_id;
    std::string name;
    std::string default_release;
    YAML::Node defaults;  // family defaults
    YAML::Node distro;    // distro-level keys and its releases
  };
  std::vector<DistroEntry> distros_;
  std::vector<LegacyRule> legacy_;
};

// The kernel to plan for: `requested` when given; the running kernel when the
// root is "/"; else the newest /lib/modules/* under the root.
util::Result<std::string> ChooseKernel(const RootFs& root, const std::string& requested);

// A kernel release (uname -r) safe to pass to dkms, apt and paths: letters,
// digits and . _ + ~ - only, no leading '-' or '.', no `..`, at most 64
// characters (the kernel's own limit for uname's release).
util::Status ValidateKernelRelease(const std::string& kver);

// Orders kernel releases like `sort -V`.
bool KernelVersionLess(const std::string& a, const std::string& b);

// The architecture of `kernel` under `root`: `uname -m` for the running
// kernel of the live host, else the release's suffix (.x86_64, -amd64,
// .aarch64, -arm64), else the kernel's build config (CONFIG_X86_64,
// CONFIG_ARM64 in /lib/modules/KVER/build/.config). {arch, source}; arch is
// empty when none of these tells.
std::pair<std::string, std::string> KernelArch(const RootFs& root, const std::string& kernel);

// Full detection: identity, kernel, profile, architecture. A known
// architecture other than x86_64 makes the profile unsupported (arm64: the
// modules do not build there yet).
util::Result<Detection> Detect(const ProfileSet& profiles, const RootFs& root,
                               const std::string& requested_kernel);

// Where the profiles live: $TOA_BUILD_PROFILES_DIR, else <source>/distros/profiles.
std::string ProfilesDir(const std::string& source_dir);

}  // namespace host
