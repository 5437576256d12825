#include "host/profile.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace {

const std::string kFixtures = std::string(TOA_SOURCE_DIR) + "/tests/fixtures/roots/";

const host::ProfileSet& Profiles() {
  static auto set = host::ProfileSet::Load(std::string(TOA_SOURCE_DIR) + "/distros/profiles");
  REQUIRE(set.ok());
  return set.value();
}

struct Expect {
  const char* root;
  const char* id;
  const char* version;
  const char* family;
  const char* kernel;
  const char* package_manager;
  const char* header_package;
  const char* autoload;
  const char* build;
  const char* packages;  // space-separated, in install order
  const char* source;    // file the identity came from
  bool supported;
};

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

const Expect kExpect[] = {
    // The vendor guide's list.
    {"centos-6.8", "centos", "6.8", "rhel", "2.6.32-642.el6.x86_64", "yum", "kernel-devel-2.6.32-642.el6.x86_64",
     "sysconfig-modules", "kbuild", "gcc make kernel-devel-2.6.32-642.el6.x86_64", "/etc/centos-release", false},
    {"sles-11.3", "sles", "11.3", "suse", "3.0.76-0.11-default", "zypper", "kernel-default-devel", "suse-sysconfig",
     "kbuild", "gcc make kernel-default-devel", "/etc/SuSE-release", false},
    {"centos-7", "centos", "7", "rhel", "3.10.0-1160.el7.x86_64", "yum", "kernel-devel-3.10.0-1160.el7.x86_64",
     "sysconfig-modules", "dkms", "epel-release gcc make kernel-devel-3.10.0-1160.el7.x86_64 dkms", "/etc/os-release",
     true},
    {"centos-7.2", "centos", "7.2", "rhel", "3.10.0-327.el7.x86_64", "yum", "kernel-devel-3.10.0-327.el7.x86_64",
     "sysconfig-modules", "dkms", "epel-release gcc make kernel-devel-3.10.0-327.el7.x86_64 dkms",
     "/etc/centos-release", true},
    {"ubuntu-16.04.3", "ubuntu", "16.04", "debian", "4.4.0-87-generic", "apt", "linux-headers-4.4.0-87-generic",
     "modules-load.d", "dkms", "gcc make openssl linux-headers-4.4.0-87-generic dkms", "/etc/os-release", true},
    {"ubuntu-18.04", "ubuntu", "18.04", "debian", "4.15.0-20-generic", "apt", "linux-headers-4.15.0-20-generic",
     "modules-load.d", "dkms", "gcc make openssl linux-headers-4.15.0-20-generic dkms", "/etc/os-release", true},
    {"opensuse-42.2", "opensuse", "42.2", "suse", "4.4.36-8-default", "zypper", "kernel-default-devel",
     "modules-load.d", "kbuild", "gcc make kernel-default-devel", "/etc/os-release", true},
    {"coreos", "coreos", "1353.7.0", "coreos", "4.9.16-coreos-r1", "none",
     "", "coreos-container", "container",
     "", "/etc/os-release", true},
    {"debian-8.2", "debian", "8", "debian", "3.16.0-4-amd64", "apt", "linux-headers-3.16.0-4-amd64", "modules-load.d",
     "dkms", "gcc make openssl linux-headers-3.16.0-4-amd64 dkms", "/etc/os-release", true},
    // No /etc/os-release: legacy files.
    {"debian-8.2-legacy", "debian", "8.2", "debian", "3.16.0-4-amd64", "apt", "linux-headers-3.16.0-4-amd64",
     "modules-load.d", "dkms", "gcc make openssl linux-headers-3.16.0-4-amd64 dkms", "/etc/debian_version", true},
    {"ubuntu-14.04-legacy", "ubuntu", "14.04", "debian", "4.4.0-148-generic", "apt",
     "linux-headers-4.4.0-148-generic", "modules-load.d", "dkms", "gcc make openssl linux-headers-4.4.0-148-generic dkms",
     "/etc/lsb-release", true},
    {"rhel-6-legacy", "rhel", "6.9", "rhel", "2.6.32-696.el6.x86_64", "yum", "kernel-devel-2.6.32-696.el6.x86_64",
     "sysconfig-modules", "kbuild", "gcc make kernel-devel-2.6.32-696.el6.x86_64", "/etc/redhat-release", false},
    // Today's releases.
    {"rhel-8", "rhel", "8.9", "rhel", "4.18.0-513.5.1.el8_9.x86_64", "dnf", "kernel-devel-4.18.0-513.5.1.el8_9.x86_64",
     "modules-load.d", "dkms",
     "https://dl.fedoraproject.org/pub/epel/epel-release-latest-8.noarch.rpm gcc make elfutils-libelf-devel "
     "kernel-devel-4.18.0-513.5.1.el8_9.x86_64 dkms",
     "/etc/os-release", true},
    {"rhel-9", "rhel", "9.3", "rhel", "5.14.0-362.8.1.el9_3.x86_64", "dnf", "kernel-devel-5.14.0-362.8.1.el9_3.x86_64",
     "modules-load.d", "dkms",
     "https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm gcc make elfutils-libelf-devel "
     "kernel-devel-5.14.0-362.8.1.el9_3.x86_64 dkms",
     "/etc/os-release", true},
    {"rhel-10", "rhel", "10.0", "rhel", "6.12.0-55.9.1.el10_0.x86_64", "dnf", "kernel-devel-6.12.0-55.9.1.el10_0.x86_64",
     "modules-load.d", "dkms",
     "https://dl.fedoraproject.org/pub/epel/epel-release-latest-10.noarch.rpm gcc make elfutils-libelf-devel "
     "kernel-devel-6.12.0-55.9.1.el10_0.x86_64 dkms",
     "/etc/os-release", true},
    {"rocky-8", "rocky", "8.9", "rhel", "4.18.0-513.5.1.el8_9.x86_64", "dnf", "kernel-devel-4.18.0-513.5.1.el8_9.x86_64",
     "modules-load.d", "dkms", "epel-release gcc make elfutils-libelf-devel kernel-devel-4.18.0-513.5.1.el8_9.x86_64 dkms",
     "/etc/os-release", true},
    {"rocky-9", "rocky", "9.3", "rhel", "5.14.0-362.8.1.el9_3.x86_64", "dnf", "kernel-devel-5.14.0-362.8.1.el9_3.x86_64",
     "modules-load.d", "dkms", "epel-release gcc make elfutils-libelf-devel kernel-devel-5.14.0-362.8.1.el9_3.x86_64 dkms",
     "/etc/os-release", true},
    {"almalinux-9", "almalinux", "9.3", "rhel", "5.14.0-362.8.1.el9_3.x86_64", "dnf",
     "kernel-devel-5.14.0-362.8.1.el9_3.x86_64", "modules-load.d", "dkms",
     "epel-release gcc make elfutils-libelf-devel kernel-devel-5.14.0-362.8.1.el9_3.x86_64 dkms", "/etc/os-release", true},
    {"almalinux-10", "almalinux", "10.0", "rhel", "6.12.0-55.9.1.el10_0.x86_64", "dnf",
     "kernel-devel-6.12.0-55.9.1.el10_0.x86_64", "modules-load.d", "dkms",
     "epel-release gcc make elfutils-libelf-devel kernel-devel-6.12.0-55.9.1.el10_0.x86_64 dkms", "/etc/os-release", true},
    {"centos-stream-8", "centos", "8", "rhel", "4.18.0-553.el8.x86_64", "dnf", "kernel-devel-4.18.0-553.el8.x86_64",
     "modules-load.d", "dkms", "epel-release gcc make elfutils-libelf-devel kernel-devel-4.18.0-553.el8.x86_64 dkms",
     "/etc/os-release", true},
    {"centos-stream-9", "centos", "9", "rhel", "5.14.0-391.el9.x86_64", "dnf", "kernel-devel-5.14.0-391.el9.x86_64",
     "modules-load.d", "dkms", "epel-release gcc make elfutils-libelf-devel kernel-devel-5.14.0-391.el9.x86_64 dkms",
     "/etc/os-release", true},
    {"centos-stream-10", "centos", "10", "rhel", "6.12.0-55.el10.x86_64", "dnf", "kernel-devel-6.12.0-55.el10.x86_64",
     "modules-load.d", "dkms", "epel-release gcc make elfutils-libelf-devel kernel-devel-6.12.0-55.el10.x86_64 dkms",
     "/etc/os-release", true},
    {"fedora-41", "fedora", "41", "rhel", "6.11.4-301.fc41.x86_64", "dnf", "kernel-devel-6.11.4-301.fc41.x86_64",
     "modules-load.d", "dkms", "gcc make elfutils-libelf-devel kernel-devel-6.11.4-301.fc41.x86_64 dkms",
     "/etc/os-release", true},
    {"amzn-2", "amzn", "2", "rhel", "5.10.219-208.866.amzn2.x86_64", "yum", "kernel-devel-5.10.219-208.866.amzn2.x86_64",
     "modules-load.d", "dkms",
     "epel-release gcc make elfutils-libelf-devel kernel-devel-5.10.219-208.866.amzn2.x86_64 dkms", "/etc/os-release",
     true},
    {"amzn-2023", "amzn", "2023", "rhel", "6.1.109-118.189.amzn2023.x86_64", "dnf",
     "kernel-devel-6.1.109-118.189.amzn2023.x86_64", "modules-load.d", "kbuild",
     "gcc make elfutils-libelf-devel kernel-devel-6.1.109-118.189.amzn2023.x86_64", "/etc/os-release", true},
    {"openeuler-22.03", "openEuler", "22.03", "rhel", "5.10.0-182.0.0.95.oe2203sp3.x86_64", "dnf",
     "kernel-devel-5.10.0-182.0.0.95.oe2203sp3.x86_64", "modules-load.d", "kbuild",
     "gcc make elfutils-libelf-devel kernel-devel-5.10.0-182.0.0.95.oe2203sp3.x86_64", "/etc/os-release", true},
    {"oraclelinux-9", "ol", "9.3", "rhel", "5.15.0-200.131.27.el9uek.x86_64", "dnf",
     "kernel-devel-5.15.0-200.131.27.el9uek.x86_64", "modules-load.d", "dkms",
     "oracle-epel-release-el9 gcc make elfutils-libelf-devel kernel-devel-5.15.0-200.131.27.el9uek.x86_64 dkms",
     "/etc/os-release", true},
    {"sles-15", "sles", "15.5", "suse", "5.14.21-150500.55.39-default", "zypper", "kernel-default-devel",
     "modules-load.d", "kbuild", "gcc make kernel-default-devel", "/etc/os-release", true},
    {"opensuse-leap-15", "opensuse-leap", "15.6", "suse", "6.4.0-150600.23.25-default", "zypper",
     "kernel-default-devel", "modules-load.d", "dkms", "gcc make kernel-default-devel dkms", "/etc/os-release", true},
    {"ubuntu-22.04", "ubuntu", "22.04", "debian", "5.15.0-91-generic", "apt", "linux-headers-5.15.0-91-generic",
     "modules-load.d", "dkms", "gcc make openssl linux-headers-5.15.0-91-generic dkms", "/etc/os-release", true},
    {"ubuntu-24.04", "ubuntu", "24.04", "debian", "6.8.0-31-generic", "apt", "linux-headers-6.8.0-31-generic",
     "modules-load.d", "dkms", "gcc make openssl linux-headers-6.8.0-31-generic dkms", "/etc/os-release", true},
    {"debian-11", "debian", "11", "debian", "5.10.0-32-amd64", "apt", "linux-headers-5.10.0-32-amd64", "modules-load.d",
     "dkms", "gcc make openssl linux-headers-5.10.0-32-amd64 dkms", "/etc/os-release", true},
    {"debian-12", "debian", "12", "debian", "6.1.0-56-amd64", "apt", "linux-headers-6.1.0-56-amd64", "modules-load.d",
     "dkms", "gcc make openssl linux-headers-6.1.0-56-amd64 dkms", "/etc/os-release", true},
    {"debian-13", "debian", "13", "debian", "6.12.57+deb13-amd64", "apt", "linux-headers-6.12.57+deb13-amd64",
     "modules-load.d", "dkms", "gcc make openssl linux-headers-6.12.57+deb13-amd64 dkms", "/etc/os-release", true},
    {"fedora-coreos-41", "fedora", "41", "coreos", "6.11.5-300.fc41.x86_64", "none",
     "kernel-devel-6.11.5-300.fc41.x86_64", "coreos-container", "container", "", "/etc/os-release", true},
    // No package holds Flatcar's headers: null in JSON, the reason beside it.
    {"flatcar", "flatcar", "3975.2.0", "coreos", "6.6.54-flatcar", "none", "", "coreos-container", "container", "",
     "/etc/os-release", true},
    // arm64 (from the release's -arm64 suffix): detected, and refused.
    {"debian-12-arm64", "debian", "12", "debian", "6.1.0-56-arm64", "apt", "linux-headers-6.1.0-56-arm64",
     "modules-load.d", "dkms", "gcc make openssl linux-headers-6.1.0-56-arm64 dkms", "/etc/os-release", false},
    // Derivatives through ID_LIKE.
    {"linuxmint-21", "linuxmint", "21.3", "debian", "5.15.0-91-generic", "apt", "linux-headers-5.15.0-91-generic",
     "modules-load.d", "dkms", "gcc make openssl linux-headers-5.15.0-91-generic dkms", "/etc/os-release", true},
    {"eurolinux-9", "eurolinux", "9.3", "rhel", "5.14.0-362.8.1.el9_3.x86_64", "dnf",
     "kernel-devel-5.14.0-362.8.1.el9_3.x86_64", "modules-load.d", "dkms",
     "https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm gcc make elfutils-libelf-devel "
     "kernel-devel-5.14.0-362.8.1.el9_3.x86_64 dkms",
     "/etc/os-release", true},
};

}  // namespace

TEST_CASE("detect: every fixture root (vendor list, today's releases, legacy files, derivatives)", "[host][detect]") {
  // Every fixture root has an expectation and vice versa.
  size_t roots = 0;
  for (const auto& e : std::filesystem::directory_iterator(kFixtures)) roots += e.is_directory();
  CHECK(roots == sizeof(kExpect) / sizeof(kExpect[0]));
  for (const auto& x : kExpect) {
    INFO(x.root);
    host::RootFs root(kFixtures + x.root);
    auto det = host::Detect(Profiles(), root, "");
    REQUIRE(det.ok());
    CHECK(det->os.id == x.id);
    CHECK(det->os.version == x.version);
    CHECK(det->os.source == x.source);
    CHECK(det->profile.family == x.family);
    CHECK(det->kernel == x.kernel);
    CHECK(det->profile.package_manager == x.package_manager);
    CHECK(det->profile.header_package == x.header_package);
    CHECK(det->profile.autoload == x.autoload);
    CHECK(det->profile.build == x.build);
    CHECK(Joined(det->AllPackages()) == x.packages);
    CHECK(det->profile.module_supported == x.supported);
  }
}

TEST_CASE("detect: derivatives say how they matched", "[host][detect]") {
  host::RootFs mint(kFixtures + "linuxmint-21");
  auto det = host::Detect(Profiles(), mint, "");
  REQUIRE(det.ok());
  CHECK(det->profile.distro_id == "ubuntu");
  CHECK(det->profile.matched_by == "ID_LIKE=ubuntu");
  host::RootFs fcos(kFixtures + "fedora-coreos-41");
  auto f = host::Detect(Profiles(), fcos, "");
  REQUIRE(f.ok());
  CHECK(f->profile.matched_by == "ID+VARIANT_ID=coreos");
  CHECK(f->profile.container->runtime == "podman");
  CHECK_FALSE(f->profile.container->mount_host_modules);
  // Plain Fedora is not mistaken for CoreOS.
  host::RootFs fedora(kFixtures + "fedora-41");
  CHECK(host::Detect(Profiles(), fedora, "")->profile.family == "rhel");
}

TEST_CASE("detect: old releases carry their archive mirror", "[host][detect]") {
  for (auto [dir, mirror] : std::vector<std::pair<std::string, std::string>>{
           {"centos-6.8", "https://vault.centos.org/6.10/"},
           {"centos-7", "https://vault.centos.org/7.9.2009/"},
           {"debian-8.2", "http://archive.debian.org/debian/"},
           {"opensuse-42.2", "https://ftp5.gwdg.de/pub/opensuse/discontinued/distribution/leap/42.2/repo/oss/"}}) {
    INFO(dir);
    host::RootFs root(kFixtures + dir);
    auto det = host::Detect(Profiles(), root, "");
    REQUIRE(det.ok());
    REQUIRE(det->profile.archive);
    CHECK(det->profile.archive->mirror == mirror);
  }
  host::RootFs modern(kFixtures + "debian-12");
  CHECK_FALSE(host::Detect(Profiles(), modern, "")->profile.archive);
}

TEST_CASE("detect: SUSE header package takes the kernel's flavor", "[host][detect]") {
  host::RootFs root(kFixtures + "sles-15");
  auto det = host::Detect(Profiles(), root, "5.14.21-150500.55.39-azure");
  REQUIRE(det.ok());
  CHECK(det->profile.header_package == "kernel-azure-devel");
}

TEST_CASE("detect: --kernel overrides, bad input is one clear line", "[host][detect]") {
  host::RootFs root(kFixtures + "debian-12");
  auto det = host::Detect(Profiles(), root, "6.12.48+deb12-amd64");
  REQUIRE(det.ok());
  CHECK(det->profile.header_package == "linux-headers-6.12.48+deb12-amd64");
  auto bad = host::Detect(Profiles(), root, "../etc");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("--kernel") != std::string::npos);
}

TEST_CASE("kernel releases: every real one passes, anything else is refused", "[host][detect]") {
  // Every fixture root's kernels, and the lab rows' (resolved from Debian's archive).
  std::vector<std::string> real{"6.1.0-57-amd64", "6.12.95+deb12-amd64", "6.12.118+deb13-amd64", "7.2.13+deb14-amd64",
                                "5.10.0-46-amd64", "6.1.0-56-rt-amd64", "6.1.0-56-cloud-amd64"};
  for (const auto& e : std::filesystem::directory_iterator(kFixtures))
    for (const char* dir : {"/lib/modules", "/usr/lib/modules"})
      if (std::filesystem::is_directory(e.path().string() + dir))
        for (const auto& k : std::filesystem::directory_iterator(e.path().string() + dir))
          real.push_back(k.path().filename().string());
  REQUIRE(real.size() > 35);
  for (const auto& k : real) {
    INFO(k);
    CHECK(host::ValidateKernelRelease(k).ok());
  }
  for (const std::string& bad : std::vector<std::string>{"-rf", "..", "x;id", "6.1.0\nid", "6.1.0 -56", "6.1.0/../../etc", "6.1..0-1",
                                "--help", ".1", "$(id)", "6.1.0-56-amd64`id`", "", std::string(65, '6'),
                                std::string(10240, '6'), std::string("6.1\0x", 5)}) {
    INFO(bad.substr(0, 80));
    auto s = host::ValidateKernelRelease(bad);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find('\n') == std::string::npos);
    CHECK(s.error().message.size() < 300);
  }
}

TEST_CASE("detect: a kernel the distro does not ship has no header package, and says why", "[host][detect]") {
  for (auto [fixture, kver] : {std::pair<const char*, const char*>{"debian-12", "6.6.0-custom"}, {"ubuntu-22.04", "6.6.0-custom"},
                               {"rocky-9", "6.6.0-custom"}, {"sles-15", "6.6.0-custom"}}) {
    INFO(fixture);
    host::RootFs root(kFixtures + fixture);
    auto det = host::Detect(Profiles(), root, kver);
    REQUIRE(det.ok());
    CHECK(det->profile.header_package.empty());
    CHECK(det->profile.header_package_reason.find("kernel 6.6.0-custom is not a kernel ") == 0);
    CHECK(det->profile.header_package_reason.find("/lib/modules/6.6.0-custom/build") != std::string::npos);
    for (const auto& p : det->AllPackages()) CHECK(p.find("6.6.0-custom") == std::string::npos);
  }
}

TEST_CASE("detect: the kernel's architecture, from its release or its build config", "[host][detect]") {
  host::RootFs arm(kFixtures + "debian-12-arm64");
  auto det = host::Detect(Profiles(), arm, "");
  REQUIRE(det.ok());
  CHECK(det->arch == "aarch64");
  CHECK_FALSE(det->profile.module_supported);
  CHECK(det->profile.unsupported_reason.find("kernel 6.1.0-56-arm64 is arm64 (aarch64, from the release's suffix "
                                             "-arm64): TOA and UOA do not build there yet") == 0);
  host::RootFs rocky(kFixtures + "rocky-9");
  auto el = host::Detect(Profiles(), rocky, "5.14.0-362.8.1.el9_3.aarch64");
  REQUIRE(el.ok());
  CHECK(el->arch == "aarch64");
  CHECK_FALSE(el->profile.module_supported);
  auto x86 = host::Detect(Profiles(), rocky, "");
  REQUIRE(x86.ok());
  CHECK(x86->arch == "x86_64");
  CHECK(x86->profile.module_supported);
  // No suffix: the kernel's own build config says.
  auto dir = std::filesystem::temp_directory_path() / ("host-arch-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  std::filesystem::create_directories(dir / "lib/modules/6.6.0-custom/build");
  std::ofstream(dir / "etc/os-release") << "ID=debian\nVERSION_ID=12\n";
  std::ofstream(dir / "lib/modules/6.6.0-custom/build/.config") << "# comment\nCONFIG_ARM64=y\nCONFIG_64BIT=y\n";
  host::RootFs custom(dir.string());
  auto cfg = host::Detect(Profiles(), custom, "");
  REQUIRE(cfg.ok());
  CHECK(cfg->arch == "aarch64");
  CHECK(cfg->arch_source == "/lib/modules/6.6.0-custom/build/.config");
  CHECK_FALSE(cfg->profile.module_supported);
  std::filesystem::remove_all(dir);
}

TEST_CASE("detect: a root without kernels asks for --kernel", "[host][detect]") {
  auto dir = std::filesystem::temp_directory_path() / ("host-nokernel-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  std::ofstream(dir / "etc/os-release") << "ID=debian\nVERSION_ID=12\n";
  host::RootFs root(dir.string());
  auto det = host::Detect(Profiles(), root, "");
  REQUIRE_FALSE(det.ok());
  CHECK(det.error().message.find("pass --kernel KVER") != std::string::npos);
  CHECK(det.error().message.find('\n') == std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("detect: unknown distros and empty roots fail with the fix", "[host][detect]") {
  auto dir = std::filesystem::temp_directory_path() / ("host-unknown-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "etc");
  host::RootFs root(dir.string());
  auto none = host::Detect(Profiles(), root, "6.1.0-1-amd64");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message.find("no /etc/os-release and no known legacy release file") != std::string::npos);
  std::ofstream(dir / "etc/os-release") << "ID=plan9\nID_LIKE=\"bell-labs\"\nVERSION_ID=4\n";
  auto unknown = host::Detect(Profiles(), root, "6.1.0-1-amd64");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message ==
        "no distro profile for ID=plan9 (ID_LIKE=bell-labs): add one under distros/profiles/ (see its README.md)");
  std::filesystem::remove_all(dir);
}

TEST_CASE("os-release parsing: quotes, escapes, comments", "[host][detect]") {
  auto kv = host::ParseOsRelease("# comment\nNAME=\"Foo \\\"Bar\\\"\"\nID=foo\nID_LIKE='rhel fedora'\n\nBAD LINE\n");
  CHECK(kv["NAME"] == "Foo \"Bar\"");
  CHECK(kv["ID"] == "foo");
  CHECK(kv["ID_LIKE"] == "rhel fedora");
  CHECK(kv.count("BAD LINE") == 0);
}

TEST_CASE("kernel versions sort like sort -V", "[host][detect]") {
  CHECK(host::KernelVersionLess("5.10.0-9-amd64", "5.10.0-10-amd64"));
  CHECK(host::KernelVersionLess("4.18.0-513.el8", "5.14.0-1.el9"));
  CHECK_FALSE(host::KernelVersionLess("6.1.0-56-amd64", "6.1.0-56-amd64"));
  CHECK(host::KernelVersionLess("6.1.0-56-amd64", "6.12.57+deb13-amd64"));
}
