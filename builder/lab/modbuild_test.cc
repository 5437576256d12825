#include "lab/modbuild.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "util/fs.h"
#include "util/testing.h"

using namespace lab;
namespace fs = std::filesystem;

namespace {

using util::testing::TempDir;
using util::testing::Touch;

std::string Read(const std::string& path) {
  auto r = util::ReadFile(path);
  return r ? *r : "";
}

struct Fixture {
  TempDir t;
  std::string cache = t.path + "/cache";
  std::string src = t.path + "/module";
  ProvisionedKernel k;
  util::FakeProcessRunner runner;
  Fixture() {
    k.row = "debian-12";
    k.kver = "6.1.0-56-amd64";
    k.build_root = cache + "/roots/bookworm";
    k.headers_dir = "/usr/src/linux-headers-6.1.0-56-amd64";
    fs::create_directories(k.build_root + "/proc");
    Touch(src + "/Kbuild", "obj-y += toa/ uoa/\n");
    Touch(src + "/toa/toa.c", "/* toa */");
    Touch(src + "/uoa/uoa.c", "/* uoa */");
    Touch(src + "/toa/stale.o", "old build product");
    Touch(src + "/dkms.conf", "PACKAGE_NAME=\"toa-build\"\nPACKAGE_VERSION=\"1.2\"\n");
    runner.On({"mount"}, 0);
    runner.On({"umount"}, 0);
  }
  bool Ran(const std::string& word) const {
    for (const auto& c : runner.commands())
      if (std::find(c.begin(), c.end(), word) != c.end()) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("modbuild: Kbuild builds a fresh copy inside the root and copies the .ko out") {
  Fixture f;
  std::string tree = f.k.build_root + "/build/debian-12/kbuild";
  Touch(tree + "/leftover.c");  // from an earlier run: must not survive
  f.runner.On({"chroot"}, 0, "  CC [M]  toa.o\n", [&](const util::ProcessSpec& s) {
    CHECK(fs::exists(tree + "/toa/toa.c"));
    CHECK_FALSE(fs::exists(tree + "/toa/stale.o"));
    CHECK_FALSE(fs::exists(tree + "/leftover.c"));
    Touch(tree + "/toa/toa.ko", "toa-elf");
    Touch(tree + "/uoa/uoa.ko", "uoa-elf");
    (void)s;
  });
  auto b = BuildModules(f.k, f.src, BuildMethod::kKbuild, f.runner, f.cache);
  REQUIRE(b.ok());
  std::string out = f.cache + "/builds/debian-12/6.1.0-56-amd64/kbuild";
  CHECK(b->ko_files == std::vector<std::string>{out + "/toa.ko", out + "/uoa.ko"});
  CHECK(Read(out + "/toa.ko") == "toa-elf");
  CHECK(b->log.find("CC [M]") != std::string::npos);
  // mount /proc, make in the root, strip the debug info there, umount.
  const auto& cmds = f.runner.commands();
  REQUIRE(cmds.size() == 4);
  CHECK(cmds[0][0] == "mount");
  std::vector<std::string> strip(cmds[2].end() - 4, cmds[2].end());
  CHECK(strip == std::vector<std::string>{"strip", "--strip-debug", "/build/debian-12/kbuild/toa/toa.ko",
                                          "/build/debian-12/kbuild/uoa/uoa.ko"});
  CHECK(cmds[3][0] == "umount");
  std::vector<std::string> tail(cmds[1].end() - 5, cmds[1].end());
  CHECK(tail == std::vector<std::string>{"make", "-C", "/usr/src/linux-headers-6.1.0-56-amd64",
                                         "M=/build/debian-12/kbuild", "modules"});
  CHECK(cmds[1][0] == "chroot");
  CHECK(cmds[1][1] == f.k.build_root);
}

TEST_CASE("modbuild: a failing make is an error with the compiler's words") {
  Fixture f;
  f.runner.On({"chroot"}, 2, "toa.c:3:1: error: expected ';'\nmake: *** Error 2\n");
  auto b = BuildModules(f.k, f.src, BuildMethod::kKbuild, f.runner, f.cache);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().message.find("Kbuild for debian-12 (6.1.0-56-amd64)") != std::string::npos);
  CHECK(b.error().message.find("expected ';'") != std::string::npos);
  CHECK(f.runner.commands().back()[0] == "umount");  // /proc is not left mounted
}

TEST_CASE("modbuild: a build with no .ko is not success") {
  Fixture f;
  f.runner.On({"chroot"}, 0, "");
  auto b = BuildModules(f.k, f.src, BuildMethod::kKbuild, f.runner, f.cache);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().message.find("no .ko files") != std::string::npos);
}

TEST_CASE("modbuild: DKMS adds, builds for the kver, copies out, and leaves no state") {
  Fixture f;
  std::string state = f.k.build_root + "/var/lib/dkms/toa-build";
  std::string usr_src = f.k.build_root + "/usr/src/toa-build-1.2";
  // State left by a crashed run is removed first.
  Touch(state + "/1.2/source/old");
  std::vector<std::string> dkms_calls;
  f.runner.On({"chroot"}, 0, "", [&](const util::ProcessSpec& s) {
    auto it = std::find(s.argv.begin(), s.argv.end(), "dkms");
    REQUIRE(it != s.argv.end());
    std::string verb = *(it + 1);
    dkms_calls.push_back(verb);
    if (verb == "add") CHECK(fs::exists(usr_src + "/toa/toa.c"));
    if (verb == "build") {
      CHECK(std::vector<std::string>(it, s.argv.end()) ==
            std::vector<std::string>{"dkms", "build", "toa-build/1.2", "-k", "6.1.0-56-amd64"});
      Touch(state + "/1.2/6.1.0-56-amd64/x86_64/module/toa.ko.xz", "xz");
      Touch(state + "/1.2/6.1.0-56-amd64/x86_64/module/uoa.ko", "uoa-elf");
    }
  });
  f.runner.On({"xz", "-d"}, 0, "", [](const util::ProcessSpec& s) {
    std::string p = s.argv.back();
    fs::rename(p, p.substr(0, p.size() - 3));
  });
  auto b = BuildModules(f.k, f.src, BuildMethod::kDkms, f.runner, f.cache);
  REQUIRE(b.ok());
  std::string out = f.cache + "/builds/debian-12/6.1.0-56-amd64/dkms";
  CHECK(b->ko_files == std::vector<std::string>{out + "/toa.ko", out + "/uoa.ko"});
  CHECK(fs::exists(out + "/toa.ko"));
  CHECK_FALSE(fs::exists(out + "/toa.ko.xz"));
  CHECK(dkms_calls == std::vector<std::string>{"remove", "add", "build", "remove"});
  CHECK_FALSE(fs::exists(state));
  CHECK_FALSE(fs::exists(usr_src));
}

TEST_CASE("modbuild: a failed DKMS build reports make.log and still cleans up") {
  Fixture f;
  std::string state = f.k.build_root + "/var/lib/dkms/toa-build";
  f.runner.On({"chroot"}, 0);  // dkms remove / add succeed
  // dkms build itself exits 10.
  std::vector<std::string> build_cmd = {"chroot", f.k.build_root, "/usr/bin/env", "-i", "-C", "/"};
  build_cmd.insert(build_cmd.end(),
                   {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", "dkms", "build"});
  f.runner.On(build_cmd, 10, "Error! Bad return status for module build\n",
              [&](const util::ProcessSpec&) {
                Touch(state + "/1.2/build/make.log", "uoa.c:9: error: unknown type name 'foo'\n");
              });
  auto b = BuildModules(f.k, f.src, BuildMethod::kDkms, f.runner, f.cache);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().message.find("unknown type name 'foo'") != std::string::npos);
  CHECK(b.error().message.find("dkms build toa-build/1.2 -k 6.1.0-56-amd64 failed") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(state));
  CHECK(f.Ran("remove"));
}

TEST_CASE("modbuild: DKMS needs a dkms.conf naming the package") {
  Fixture f;
  fs::remove(f.src + "/dkms.conf");
  auto b = BuildModules(f.k, f.src, BuildMethod::kDkms, f.runner, f.cache);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().message.find("dkms.conf") != std::string::npos);
  Touch(f.src + "/dkms.conf", "BUILT_MODULE_NAME[0]=toa\n");
  b = BuildModules(f.k, f.src, BuildMethod::kDkms, f.runner, f.cache);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().message.find("PACKAGE_NAME and PACKAGE_VERSION") != std::string::npos);
  CHECK(f.runner.commands().empty());
}

TEST_CASE("modbuild: method names") {
  CHECK(BuildMethodName(BuildMethod::kKbuild) == "kbuild");
  CHECK(BuildMethodName(BuildMethod::kDkms) == "dkms");
  auto m = ParseBuildMethod("dkms");
  REQUIRE(m.ok());
  CHECK(*m == BuildMethod::kDkms);
  CHECK_FALSE(ParseBuildMethod("make").ok());
}
