// RootFs: every path under --root stays inside the root, as chroot would see
// it; reads take regular files only, capped. Each case runs twice: with the
// kernel's resolver (openat2 RESOLVE_IN_ROOT) and with the user-space walk.
#include "host/rootfs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "host/profile.h"

namespace fs = std::filesystem;

namespace {

struct TempRoot {
  fs::path dir;
  fs::path outside;  // a folder next to the root, standing for "this machine"
  TempRoot() {
    static int n = 0;
    auto base = fs::temp_directory_path() / ("rootfs-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(base);
    dir = base / "root";
    outside = base / "outside";
    fs::create_directories(dir);
    fs::create_directories(outside);
  }
  ~TempRoot() { fs::remove_all(dir.parent_path()); }
  void File(const std::string& rel, const std::string& content) {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << content;
  }
  void Link(const std::string& rel, const std::string& target) {
    fs::create_directories((dir / rel).parent_path());
    fs::create_symlink(target, dir / rel);
  }
};

const host::ProfileSet& Profiles() {
  static auto set = host::ProfileSet::Load(std::string(TOA_SOURCE_DIR) + "/distros/profiles");
  REQUIRE(set.ok());
  return set.value();
}

const char* kRocky = "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n";

// Both resolvers, one after the other.
template <typename F>
void BothResolvers(F&& f) {
  for (bool walk : {false, true}) {
    INFO((walk ? "user-space walk" : "openat2"));
    host::RootFs::ForceWalkForTests(walk);
    f();
  }
  host::RootFs::ForceWalkForTests(false);
}

}  // namespace

TEST_CASE("rootfs: an absolute os-release symlink means the root's own file", "[host][rootfs]") {
  BothResolvers([] {
    TempRoot t;
    t.File("usr/lib/os-release", kRocky);
    t.Link("etc/os-release", "/usr/lib/os-release");
    t.File("lib/modules/5.14.0-362.8.1.el9_3.x86_64/modules.order", "");
    host::RootFs root(t.dir.string());
    auto det = host::Detect(Profiles(), root, "");
    REQUIRE(det.ok());
    CHECK(det->os.id == "rocky");  // this machine's /usr/lib/os-release says debian
    CHECK(det->profile.family == "rhel");
  });
}

TEST_CASE("rootfs: symlinks never reach this machine's files", "[host][rootfs]") {
  BothResolvers([] {
    TempRoot t;
    host::RootFs root(t.dir.string());
    // Absolute, to a file this machine has and the root has not.
    t.Link("etc/os-release", "/etc/shadow");
    CHECK_FALSE(root.Read("/etc/os-release").has_value());
    CHECK_FALSE(root.Exists("/etc/os-release"));
    t.File("etc/shadow", "root's own\n");
    CHECK(root.Read("/etc/os-release").value_or("") == "root's own\n");
    // Relative with more `..` than the root is deep: stops at the root.
    t.Link("etc/a", "../../../../../../../../etc/passwd");
    CHECK_FALSE(root.Read("/etc/a").has_value());
    t.File("etc/passwd", "root's passwd\n");
    CHECK(root.Read("/etc/a").value_or("") == "root's passwd\n");
    // `..` in the path itself.
    CHECK(root.Read("/../../../../etc/passwd").value_or("") == "root's passwd\n");
    // A chain: relative -> absolute -> relative, through a directory link.
    t.Link("etc/b", "c");
    t.Link("etc/c", "/opt/d");
    t.Link("opt/d", "../srv/e");
    t.File("srv/e", "end of chain\n");
    CHECK(root.Read("/etc/b").value_or("") == "end of chain\n");
    // A directory link to an absolute folder this machine has.
    t.Link("x", "/etc");
    CHECK(root.Read("/x/passwd").value_or("") == "root's passwd\n");
    CHECK_FALSE(root.Read("/x/hostname").has_value());
  });
}

TEST_CASE("rootfs: symlink loops fail, fast", "[host][rootfs]") {
  BothResolvers([] {
    TempRoot t;
    t.Link("etc/os-release", "loop-a");
    t.Link("etc/loop-a", "/etc/loop-b");
    t.Link("etc/loop-b", "os-release");
    t.Link("self", "self/x");
    host::RootFs root(t.dir.string());
    auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(root.Read("/etc/os-release").has_value());
    CHECK_FALSE(root.Exists("/etc/os-release"));
    CHECK_FALSE(root.Read("/self/y").has_value());
    auto det = host::Detect(Profiles(), root, "6.1.0-56-amd64");
    CHECK_FALSE(det.ok());
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  });
}

TEST_CASE("rootfs: a FIFO, a device or a huge file is refused, not read", "[host][rootfs]") {
  BothResolvers([] {
    TempRoot t;
    fs::create_directories(t.dir / "etc");
    REQUIRE(::mkfifo((t.dir / "etc/os-release").c_str(), 0644) == 0);
    host::RootFs root(t.dir.string());
    auto fifo = root.ReadChecked("/etc/os-release");  // must not wait for a writer
    REQUIRE_FALSE(fifo.ok());
    CHECK(fifo.error().message.find("a FIFO") != std::string::npos);
    // A device: /dev/zero on this machine, read through the host root.
    auto zero = host::RootFs("/").ReadChecked("/dev/zero");
    REQUIRE_FALSE(zero.ok());
    CHECK(zero.error().message == "/dev/zero is not a regular file (a device): refusing to read it; replace it "
                                  "with a regular file");
    // Inside a root, /dev/zero is the root's (absent here).
    t.Link("etc/zero", "/dev/zero");
    CHECK_FALSE(root.Read("/etc/zero").has_value());
    // A sparse 64 MB file: over the cap.
    {
      std::ofstream big(t.dir / "etc/big");
    }
    fs::resize_file(t.dir / "etc/big", 64u << 20);
    auto huge = root.ReadChecked("/etc/big");
    REQUIRE_FALSE(huge.ok());
    CHECK(huge.error().message.find("is larger than 4194304 bytes") != std::string::npos);
  });
}

TEST_CASE("rootfs: writes and removals stay inside the root", "[host][rootfs]") {
  BothResolvers([] {
    TempRoot t;
    // etc/modprobe.d and var/lib point at absolute folders that exist on this
    // machine (t.outside): under the root they mean the root's own folders.
    t.Link("etc/modprobe.d", t.outside.string());
    t.Link("var/lib", t.outside.string() + "/lib");
    fs::create_directories(t.outside / "lib/toa-build");
    std::ofstream(t.outside / "lib/toa-build/state.json") << "{}";
    host::RootFs root(t.dir.string());
    auto w = root.WriteIfChanged("/etc/modprobe.d/toa-build.conf", "options toa\n");
    REQUIRE(w.ok());
    CHECK_FALSE(fs::exists(t.outside / "toa-build.conf"));
    CHECK(fs::exists(t.dir / t.outside.relative_path() / "toa-build.conf"));
    CHECK(root.Read("/etc/modprobe.d/toa-build.conf").value_or("") == "options toa\n");
    REQUIRE(root.RemoveTree("/var/lib/toa-build").ok());
    CHECK(fs::exists(t.outside / "lib/toa-build/state.json"));
    // Removing a link removes the link, never what it points at.
    std::ofstream(t.dir / "victim") << "keep";
    t.Link("etc/kill-me", "/victim");
    REQUIRE(root.Remove("/etc/kill-me").ok());
    CHECK_FALSE(fs::is_symlink(t.dir / "etc/kill-me"));
    CHECK(fs::exists(t.dir / "victim"));
    // The module sources are compared and copied through the root, too.
    auto src = t.outside / "src";
    fs::create_directories(src);
    std::ofstream(src / "dkms.conf") << "PACKAGE_NAME=\"toa-build\"\n";
    fs::permissions(src / "dkms.conf", fs::perms(0644));
    t.Link("usr/src/toa-build-0.1.0", t.outside.string() + "/copy");
    auto synced = root.SyncTree(src.string(), "/usr/src/toa-build-0.1.0");
    REQUIRE(synced.ok());
    CHECK_FALSE(fs::exists(t.outside / "copy"));
    CHECK(root.TreeEquals(src.string(), "/usr/src/toa-build-0.1.0"));
  });
}

TEST_CASE("rootfs: the user-space walk resolves like chroot", "[host][rootfs]") {
  TempRoot t;
  t.Link("lib", "usr/lib");
  t.Link("usr/lib/modules/6.1.0-56-amd64/build", "/usr/src/linux-headers-6.1.0-56-amd64");
  fs::create_directories(t.dir / "usr/src/linux-headers-6.1.0-56-amd64");
  const std::string r = t.dir.string();
  auto built = host::ResolveInRoot(r, "/lib/modules/6.1.0-56-amd64/build/Makefile", true);
  REQUIRE(built.ok());
  CHECK(built.value() == r + "/usr/src/linux-headers-6.1.0-56-amd64/Makefile");
  auto link = host::ResolveInRoot(r, "/lib/modules/6.1.0-56-amd64/build", false);
  REQUIRE(link.ok());
  CHECK(link.value() == r + "/usr/lib/modules/6.1.0-56-amd64/build");
  CHECK(host::ResolveInRoot(r, "/../..", true).value() == r);
  // Past a missing folder, `..` must not skip the check of what follows.
  CHECK_FALSE(host::ResolveInRoot(r, "/nope/../lib/x", true).ok());
  t.File("etc/file", "x");
  auto notdir = host::ResolveInRoot(r, "/etc/file/y", true);
  REQUIRE_FALSE(notdir.ok());
  CHECK(notdir.error().message.find("is not a directory") != std::string::npos);
}
