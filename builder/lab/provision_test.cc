#include "lab/provision.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "lab/cache.h"
#include "util/testing.h"

using namespace lab;
namespace fs = std::filesystem;

namespace {

using util::testing::TempDir;
using util::testing::Touch;

KernelRow Bookworm() {
  KernelRow r;
  r.name = "debian-12";
  r.suite = "bookworm";
  r.security_suite = "bookworm-security";
  r.root_release = "bookworm";
  r.image_meta = "linux-image-amd64";
  r.headers_meta = "linux-headers-amd64";
  r.image_packages = {"linux-image-{kver}"};
  r.headers_package = "linux-headers-{kver}";
  r.vmlinuz_glob = "boot/vmlinuz-{kver}";
  r.modules_dir = "lib/modules/{kver}";
  r.mirror = "http://deb.example/debian";
  r.security_mirror = "http://deb.example/debian-security";
  return r;
}

KernelRow Sid() {
  KernelRow r = Bookworm();
  r.name = "debian-sid";
  r.suite = "sid";
  r.security_suite.clear();
  r.root_release = "sid";
  r.image_packages = {"linux-binary-{kver}", "linux-modules-{kver}"};
  r.vmlinuz_glob = "usr/lib/modules/{kver}/vmlinuz";
  r.modules_dir = "usr/lib/modules/{kver}";
  return r;
}

const char* kBookwormMadison =
    "linux-headers-amd64 | 6.12.95-1~bpo12+1 | http://deb.example/debian bookworm-backports/main "
    "amd64 Packages\n"
    "linux-headers-amd64 |  6.1.192-2 | http://deb.example/debian-security "
    "bookworm-security/main amd64 Packages\n"
    "linux-headers-amd64 |  6.1.176-1 | http://deb.example/debian bookworm/main amd64 Packages\n"
    "linux-image-amd64 |  6.1.192-2 | http://deb.example/debian-security "
    "bookworm-security/main amd64 Packages\n";

const char* kSidMadison =
    "linux-headers-amd64 | 7.2.13-1 | http://deb.example/debian sid/main amd64 Packages\n"
    "linux-image-amd64 | 7.2.12-1 | http://deb.example/debian sid/main amd64 Packages\n";

// The argv RootSession::Run gives for a command in `root`.
std::vector<std::string> InRoot(const std::string& root, std::vector<std::string> argv,
                                const std::string& cwd = "/") {
  std::vector<std::string> cmd = {"chroot", root, "/usr/bin/env", "-i", "-C", cwd};
  cmd.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  cmd.insert(cmd.end(), {"HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"});
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return cmd;
}

size_t ArgAfter(const std::vector<std::string>& argv, const std::string& arg) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == arg) return i + 1;
  return argv.size();
}

// Scripts the outside world: debootstrap makes a root, apt answers, the
// downloaded packages extract into an image tree.
struct FakeArchive {
  util::FakeProcessRunner runner;
  std::string cache;
  std::string kver;
  std::string version;

  FakeArchive(const std::string& cache_root, const KernelRow& row, const std::string& madison,
              std::string kver_, std::string version_)
      : cache(cache_root), kver(std::move(kver_)), version(std::move(version_)) {
    std::string root = RootDir(cache, row.root_release);
    runner.On({"debootstrap"}, 0, "I: Base system installed successfully.\n",
              [](const util::ProcessSpec& s) {
                const std::string& target = s.argv[4];
                for (const char* f : {"usr/bin/gcc", "usr/bin/make", "usr/sbin/dkms",
                                      "usr/bin/apt-get", "usr/bin/env", "etc/apt/sources.list"})
                  Touch(target + "/" + f);
                fs::create_directories(target + "/proc");
              });
    runner.On({"chroot"}, 0, "12.2.0\n");  // gcc -dumpfullversion in the new root
    // Less specific than the rules below (later rules win).
    runner.On({"chroot", root, "/usr/bin/env", "-i", "-C"}, 0, "",
              [root](const util::ProcessSpec& s) {
                // apt-get download: one .deb per package into the cwd.
                std::string cwd = s.argv[5];
                size_t i = ArgAfter(s.argv, "-q");
                for (; i < s.argv.size(); ++i) {
                  std::string name = s.argv[i].substr(0, s.argv[i].find('='));
                  Touch(root + cwd + "/" + name + "_1_amd64.deb");
                }
              });
    runner.On({"mount"}, 0);
    runner.On({"umount"}, 0);
    runner.On(InRoot(root, {"apt-get", "update"}), 0);
    runner.On(InRoot(root, {"dpkg", "--configure", "-a"}), 0);
    runner.On(InRoot(root, {"apt-cache", "madison"}), 0, madison);
    runner.On(InRoot(root, {"apt-cache", "show"}), 0,
              "Package: linux-headers-amd64\nVersion: " + version +
                  "\nDepends: linux-headers-" + kver + " (= " + version + ")\n\n");
    runner.On(InRoot(root, {"apt-get", "install"}), 0, "",
              [root, row, this](const util::ProcessSpec&) {
                Touch(root + "/usr/src/" + ExpandKver(row.headers_package, kver) + "/Makefile");
              });
    runner.On({"dpkg-deb", "-x"}, 0, "", [this](const util::ProcessSpec& s) {
      std::string deb = fs::path(s.argv[2]).filename().string(), into = s.argv[3];
      if (deb.rfind("linux-image-", 0) == 0) {
        Touch(into + "/boot/vmlinuz-" + kver);
        fs::create_directories(into + "/lib/modules/" + kver + "/kernel");
      } else if (deb.rfind("linux-binary-", 0) == 0) {
        Touch(into + "/usr/lib/modules/" + kver + "/vmlinuz");
      } else if (deb.rfind("linux-modules-", 0) == 0) {
        fs::create_directories(into + "/usr/lib/modules/" + kver + "/kernel/net");
      }
    });
  }

  // The commands run, with the chroot preamble replaced by "[root]".
  std::vector<std::string> Steps() const {
    std::vector<std::string> out;
    for (const auto& c : runner.commands()) {
      std::string s;
      size_t from = 0;
      if (c.size() > 10 && c[0] == "chroot" && c[2] == "/usr/bin/env") {
        s = "[root] ";
        from = 10;
      }
      for (size_t i = from; i < c.size() && i < from + 3; ++i) s += (i > from ? " " : "") + c[i];
      out.push_back(s);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("provision: a cold row runs debootstrap, apt, download and dpkg-deb in order") {
  TempDir t;
  KernelRow row = Bookworm();
  FakeArchive world(t.path, row, kBookwormMadison, "6.1.0-56-amd64", "6.1.192-2");
  std::vector<std::string> progress;
  auto k = ProvisionRow(row, world.runner, t.path,
                        [&](const std::string& m) { progress.push_back(m); });
  REQUIRE(k.ok());
  // The security suite's 6.1.192-2 beats bookworm's 6.1.176-1; backports are
  // another row's business.
  CHECK(k->kver == "6.1.0-56-amd64");
  CHECK(k->package_version == "6.1.192-2");
  CHECK_FALSE(k->warm);
  CHECK(k->vmlinuz == t.path + "/kernels/debian-12/6.1.0-56-amd64/boot/vmlinuz-6.1.0-56-amd64");
  CHECK(k->modules_dir == t.path + "/kernels/debian-12/6.1.0-56-amd64/lib/modules/6.1.0-56-amd64");
  CHECK(k->build_root == t.path + "/roots/bookworm");
  CHECK(k->headers_dir == "/usr/src/linux-headers-6.1.0-56-amd64");
  CHECK(k->gcc_version == "12.2.0");
  CHECK(fs::exists(k->vmlinuz));

  std::vector<std::string> expected = {
      "debootstrap --variant=minbase --include=gcc,make,libelf-dev,bc,kmod,dkms,xz-utils,zstd,ca-certificates",
      "chroot " + t.path + "/roots/.bookworm.tmp." + std::to_string(::getpid()) + " gcc",
      "mount -t proc",
      "[root] apt-get update -q",
      "[root] apt-cache madison linux-headers-amd64",
      "[root] apt-cache show linux-headers-amd64=6.1.192-2",
      "[root] apt-cache madison linux-image-amd64",
      "[root] dpkg --configure -a",
      "[root] apt-get install -y",
      "umount " + t.path + "/roots/bookworm/proc",
      "mount -t proc",
      "[root] apt-get download -q",
      "umount " + t.path + "/roots/bookworm/proc",
      "dpkg-deb -x " + t.path + "/roots/bookworm/var/cache/toa-build/download/debian-12." +
          std::to_string(::getpid()) + "/linux-image-6.1.0-56-amd64_1_amd64.deb",
  };
  CHECK(world.Steps() == expected);

  // The exact install and download lines.
  const auto& cmds = world.runner.commands();
  CHECK(cmds[8].back() == "linux-headers-6.1.0-56-amd64=6.1.192-2");
  CHECK(cmds[11].back() == "linux-image-6.1.0-56-amd64=6.1.192-2");
  CHECK(cmds[0][3] == "bookworm");
  CHECK(cmds[0][5] == "http://deb.example/debian");

  // The root's private apt sources: its release, plus the row's security suite.
  std::ifstream list(t.path + "/roots/bookworm/etc/apt/sources.list");
  std::string line;
  std::getline(list, line);
  CHECK(line == "deb http://deb.example/debian bookworm main");
  std::ifstream sec(t.path + "/roots/bookworm/etc/apt/sources.list.d/toa-bookworm-security.list");
  std::getline(sec, line);
  CHECK(line == "deb http://deb.example/debian-security bookworm-security main");
  CHECK_FALSE(fs::exists(t.path + "/roots/bookworm/etc/apt/sources.list.d/toa-bookworm.list"));
  // Downloads do not stay in the root.
  CHECK(fs::is_empty(t.path + "/roots/bookworm/var/cache/toa-build/download"));
  CHECK_FALSE(progress.empty());
  for (const auto& m : progress) CHECK(m.find("warning") == std::string::npos);
}

TEST_CASE("provision: a warm cache answers from stamps without any command") {
  TempDir t;
  KernelRow row = Bookworm();
  FakeArchive world(t.path, row, kBookwormMadison, "6.1.0-56-amd64", "6.1.192-2");
  REQUIRE(ProvisionRow(row, world.runner, t.path, nullptr).ok());
  util::FakeProcessRunner offline;  // no rules: any command fails the test
  auto warm = ProvisionRow(row, offline, t.path, nullptr);
  REQUIRE(warm.ok());
  CHECK(warm->warm);
  CHECK(warm->kver == "6.1.0-56-amd64");
  CHECK(warm->package_version == "6.1.192-2");
  CHECK(offline.commands().empty());
}

TEST_CASE("provision: damaged cache entries are rebuilt, not trusted") {
  TempDir t;
  KernelRow row = Bookworm();
  FakeArchive world(t.path, row, kBookwormMadison, "6.1.0-56-amd64", "6.1.192-2");
  REQUIRE(ProvisionRow(row, world.runner, t.path, nullptr).ok());
  size_t before = world.runner.commands().size();
  std::string root = t.path + "/roots/bookworm";
  std::string kdir = t.path + "/kernels/debian-12/6.1.0-56-amd64";

  auto ran = [&](const std::string& what) {
    for (size_t i = before; i < world.runner.commands().size(); ++i)
      if (world.runner.commands()[i][0] == what) return true;
    return false;
  };
  SECTION("vmlinuz gone: the kernel is downloaded again, the root kept") {
    fs::remove(kdir + "/boot/vmlinuz-6.1.0-56-amd64");
    auto k = ProvisionRow(row, world.runner, t.path, nullptr);
    REQUIRE(k.ok());
    CHECK(fs::exists(k->vmlinuz));
    CHECK(ran("dpkg-deb"));
    CHECK_FALSE(ran("debootstrap"));
  }
  SECTION("kernel stamp gone (interrupted extraction)") {
    Touch(kdir + "/junk");
    fs::remove(kdir + "/" + std::string(kStampName));
    REQUIRE(ProvisionRow(row, world.runner, t.path, nullptr).ok());
    CHECK(ran("dpkg-deb"));
    CHECK_FALSE(fs::exists(kdir + "/junk"));
  }
  SECTION("gcc gone from the root: the root is made again") {
    fs::remove(root + "/usr/bin/gcc");
    REQUIRE(ProvisionRow(row, world.runner, t.path, nullptr).ok());
    CHECK(ran("debootstrap"));
    CHECK(fs::exists(root + "/usr/bin/gcc"));
  }
  SECTION("headers Makefile gone: headers are reinstalled") {
    fs::remove(root + "/usr/src/linux-headers-6.1.0-56-amd64/Makefile");
    REQUIRE(ProvisionRow(row, world.runner, t.path, nullptr).ok());
    bool reinstall = false;
    for (size_t i = before; i < world.runner.commands().size(); ++i)
      for (const auto& a : world.runner.commands()[i]) reinstall = reinstall || a == "--reinstall";
    CHECK(reinstall);
    CHECK_FALSE(ran("debootstrap"));
  }
}

TEST_CASE("provision: sid's image is two packages, vmlinuz under /usr/lib/modules") {
  TempDir t;
  KernelRow row = Sid();
  FakeArchive world(t.path, row, kSidMadison, "7.2.13+deb14-amd64", "7.2.13-1");
  std::vector<std::string> progress;
  auto k = ProvisionRow(row, world.runner, t.path,
                        [&](const std::string& m) { progress.push_back(m); });
  REQUIRE(k.ok());
  CHECK(k->kver == "7.2.13+deb14-amd64");
  // The image metapackage lagging behind the headers is said, not fatal.
  CHECK(std::find(progress.begin(), progress.end(),
                  "warning: linux-image-amd64 is at 7.2.12-1 but linux-headers-amd64 at 7.2.13-1; "
                  "using 7.2.13-1") != progress.end());
  CHECK(k->vmlinuz ==
        t.path + "/kernels/debian-sid/7.2.13+deb14-amd64/usr/lib/modules/7.2.13+deb14-amd64/vmlinuz");
  CHECK(k->modules_dir ==
        t.path + "/kernels/debian-sid/7.2.13+deb14-amd64/usr/lib/modules/7.2.13+deb14-amd64");
  std::vector<std::string> download, extracted;
  for (const auto& c : world.runner.commands()) {
    if (std::find(c.begin(), c.end(), "download") != c.end())
      download.assign(c.end() - 2, c.end());
    if (c[0] == "dpkg-deb") extracted.push_back(fs::path(c[2]).filename().string());
  }
  CHECK(download == std::vector<std::string>{"linux-binary-7.2.13+deb14-amd64=7.2.13-1",
                                             "linux-modules-7.2.13+deb14-amd64=7.2.13-1"});
  CHECK(extracted == std::vector<std::string>{"linux-binary-7.2.13+deb14-amd64_1_amd64.deb",
                                              "linux-modules-7.2.13+deb14-amd64_1_amd64.deb"});
  // sid lists only itself: no security suite file.
  CHECK(fs::is_empty(t.path + "/roots/sid/etc/apt/sources.list.d"));
}

TEST_CASE("provision: a pinned row skips the metapackage") {
  TempDir t;
  KernelRow row = Bookworm();
  row.pin = "6.1.0-50-amd64";
  std::string madison =
      "linux-headers-6.1.0-50-amd64 | 6.1.176-1 | http://deb.example/debian bookworm/main amd64 "
      "Packages\n";
  FakeArchive world(t.path, row, madison, "6.1.0-50-amd64", "6.1.176-1");
  auto k = ProvisionRow(row, world.runner, t.path, nullptr);
  REQUIRE(k.ok());
  CHECK(k->kver == "6.1.0-50-amd64");
  CHECK(k->package_version == "6.1.176-1");
  for (const auto& c : world.runner.commands())
    CHECK(std::find(c.begin(), c.end(), "show") == c.end());
}

TEST_CASE("provision: failures say what went wrong") {
  TempDir t;
  KernelRow row = Bookworm();
  SECTION("the suite has no such metapackage") {
    FakeArchive world(t.path, row, "", "6.1.0-56-amd64", "6.1.192-2");
    auto k = ProvisionRow(row, world.runner, t.path, nullptr);
    REQUIRE_FALSE(k.ok());
    CHECK(k.error().message ==
          "row debian-12: no version of linux-headers-amd64 in bookworm, bookworm-security; check "
          "the row's suite and package names in the matrix");
  }
  SECTION("debootstrap fails: no root is left behind") {
    FakeArchive world(t.path, row, kBookwormMadison, "6.1.0-56-amd64", "6.1.192-2");
    world.runner.On({"debootstrap"}, 1, "E: Failed getting release file\n",
                    [](const util::ProcessSpec& s) { Touch(s.argv[4] + "/half"); });
    auto k = ProvisionRow(row, world.runner, t.path, nullptr);
    REQUIRE_FALSE(k.ok());
    CHECK(k.error().message.find("E: Failed getting release file") != std::string::npos);
    CHECK(fs::is_empty(t.path + "/roots"));
    size_t runs = 0;
    for (const auto& c : world.runner.commands()) runs += !c.empty() && c[0] == "debootstrap";
    CHECK(runs == 3);  // a bounded number of attempts, then the error
  }
  SECTION("debootstrap fails once (a mirror hiccup): the next attempt starts empty and the row provisions") {
    FakeArchive world(t.path, row, kBookwormMadison, "6.1.0-56-amd64", "6.1.192-2");
    // The first debootstrap leaves a half-made root and fails; later ones go to the scripted world.
    struct FailFirstDebootstrap : util::ProcessRunner {
      util::ProcessRunner& next;
      int debootstraps = 0;
      bool clean_on_retry = true;
      explicit FailFirstDebootstrap(util::ProcessRunner& n) : next(n) {}
      util::Result<util::ProcessResult> Run(const util::ProcessSpec& s) override {
        if (!s.argv.empty() && s.argv[0] == "debootstrap" && ++debootstraps == 1) {
          Touch(s.argv[4] + "/half");
          util::ProcessResult r;
          r.exit_code = 1;
          r.output = "E: Couldn't download packages: gcc\n";
          return r;
        }
        if (!s.argv.empty() && s.argv[0] == "debootstrap" && fs::exists(s.argv[4] + "/half"))
          clean_on_retry = false;
        return next.Run(s);
      }
    } flaky(world.runner);
    auto k = ProvisionRow(row, flaky, t.path, nullptr);
    REQUIRE(k.ok());
    CHECK(flaky.debootstraps == 2);
    CHECK(flaky.clean_on_retry);
  }
}

TEST_CASE("provision: an image laid out unlike the row says names the matrix key") {
  TempDir t;
  KernelRow row = Bookworm();
  row.modules_dir = "usr/lib/modules/{kver}";  // but the package ships lib/modules
  FakeArchive world(t.path, row, kBookwormMadison, "6.1.0-56-amd64", "6.1.192-2");
  auto k = ProvisionRow(row, world.runner, t.path, nullptr);
  REQUIRE_FALSE(k.ok());
  CHECK(k.error().message ==
        "the debian-12 image has no usr/lib/modules/6.1.0-56-amd64/kernel (it has: "
        "boot/vmlinuz-6.1.0-56-amd64, lib/modules/6.1.0-56-amd64); fix `vmlinuz`/`modules_dir` "
        "of row debian-12 in the matrix");
  CHECK_FALSE(fs::exists(t.path + "/kernels/debian-12/6.1.0-56-amd64"));
}

TEST_CASE("CompareDebianVersions follows dpkg") {
  CHECK(CompareDebianVersions("6.1.192-2", "6.1.176-1") > 0);
  CHECK(CompareDebianVersions("6.12.95-1~bpo12+1", "6.12.95-1") < 0);
  CHECK(CompareDebianVersions("6.1.10-1", "6.1.9-1") > 0);
  CHECK(CompareDebianVersions("1:1.0", "2.0") > 0);
  CHECK(CompareDebianVersions("1.0~rc1", "1.0") < 0);
  CHECK(CompareDebianVersions("7.2.13-1", "7.2.13-1") == 0);
  CHECK(CompareDebianVersions("1.0a", "1.0") > 0);
}

TEST_CASE("provision: rows sharing a root share one /proc mount") {
  TempDir t;
  std::string root = t.path + "/roots/bookworm";
  fs::create_directories(root + "/proc");
  util::FakeProcessRunner runner;
  runner.On({"mount"}, 0);
  runner.On({"umount"}, 0);
  runner.On({"chroot"}, 0);
  auto count = [&](const std::string& what) {
    int n = 0;
    for (const auto& c : runner.commands()) n += c[0] == what;
    return n;
  };
  {
    auto a = RootSession::Enter(root, t.path, runner);
    REQUIRE(a.ok());
    CHECK(count("mount") == 1);
    {
      // The fake mount is invisible, so b mounts again; what matters is that
      // a's session still holds /proc when b leaves.
      auto b = RootSession::Enter(root, t.path, runner);
      REQUIRE(b.ok());
      REQUIRE(b->Run({"make"}, std::chrono::seconds(5), "make").ok());
    }
    CHECK(count("umount") == 0);
    REQUIRE(a->Run({"make"}, std::chrono::seconds(5), "make").ok());
  }
  CHECK(count("umount") == 1);
  CHECK(runner.commands().back() == std::vector<std::string>{"umount", root + "/proc"});
}

TEST_CASE("provision: a user of a dead process does not keep /proc mounted") {
  TempDir t;
  std::string root = t.path + "/roots/sid";
  fs::create_directories(root + "/proc");
  util::FakeProcessRunner runner;
  runner.On({"mount"}, 0);
  runner.On({"umount"}, 0);
  {
    auto a = RootSession::Enter(root, t.path, runner);
    REQUIRE(a.ok());
    // A crashed run's registration (pid that cannot exist).
    for (const auto& e : fs::directory_iterator(t.path + "/locks"))
      if (e.path().extension() == ".users") Touch(e.path().string() + "/999999999.0");
  }
  CHECK(runner.commands().back() == std::vector<std::string>{"umount", root + "/proc"});
}
