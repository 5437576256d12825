#include "lab/source_kernel.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

#include "lab/cache.h"
#include "lab/matrix.h"
#include "util/fs.h"
#include "util/testing.h"

using namespace lab;
namespace fs = std::filesystem;
using util::testing::TempDir;
using util::testing::Touch;

namespace {

const char* kMakefile =
    "VERSION = 3\nPATCHLEVEL = 10\nSUBLEVEL = 0\nEXTRAVERSION =\nNAME = Unicycling Gorilla\n"
    "RHEL_MAJOR = 7\nRHEL_MINOR = 9\nRHEL_RELEASE = 1160\n\nall:\n\tVERSION = not-this\n";

// A matrix with one source row whose config and patches live in `dir`.
std::string SourceMatrix(const std::string& dir, const std::string& extra = "") {
  Touch(dir + "/kernels/c7/config", "CONFIG_TUN=m\n# CONFIG_MODULE_SIG is not set\nCONFIG_NR_CPUS=256\n");
  Touch(dir + "/kernels/c7/patches/0001-fno-pie.patch", "Reason: test\n");
  std::string text =
      "row_defaults:\n  mirror: http://deb.example/debian\n  vmlinuz: boot/vmlinuz-{kver}\n"
      "  modules_dir: lib/modules/{kver}\n  image_packages: [\"linux-image-{kver}\"]\n"
      "  headers_package: linux-headers-{kver}\n"
      "rows:\n"
      "  - name: centos-7\n"
      "    root_release: bullseye\n"
      "    note: built from CentOS 7.9's own tree\n"
      "    source:\n"
      "      tarball: linux-3.10.0-1160.el7.tar.xz\n"
      "      top_dir: linux-3.10.0-1160.el7\n"
      "      makefile: {VERSION: 3, PATCHLEVEL: 10, SUBLEVEL: 0, RHEL_RELEASE: 1160}\n"
      "      extraversion: -1160.el7.x86_64\n"
      "      base_config: x86_64_defconfig\n"
      "      config: kernels/c7/config\n"
      "      patches: kernels/c7/patches\n" +
      extra;
  return text;
}

KernelRow LoadRow(const TempDir& dir, const std::string& extra = "") {
  std::string text = SourceMatrix(dir.path, extra);
  Touch(dir / "kernels.yaml", text);
  auto m = LoadMatrix(dir / "kernels.yaml");
  INFO((m.ok() ? std::string() : m.error().message));
  REQUIRE(m.ok());
  REQUIRE(m->rows.size() == 1);
  return m->rows[0];
}

std::string MatrixError(const TempDir& dir, const std::string& text) {
  Touch(dir / "bad.yaml", text);
  auto m = LoadMatrix(dir / "bad.yaml");
  REQUIRE_FALSE(m.ok());
  return m.error().message;
}

// A file big enough to pass for a kernel tarball (sparse).
void FakeTarball(const std::string& path) {
  Touch(path, "");
  fs::resize_file(path, 2u << 20);
}

// The world a source build sees: sha256sum, tar, patch, and make in the
// build root (chroot ...), each with a scripted effect.
struct FakeBuild {
  util::FakeProcessRunner runner;
  std::string cache, root;
  std::string makefile = kMakefile;
  int tar_exit = 0;
  int make_exit = 0;
  bool lose_config_line = false;
  int make_calls = 0;

  explicit FakeBuild(const std::string& cache_root, const KernelRow& row)
      : cache(cache_root), root(RootDir(cache_root, row.root_release)) {
    Touch(root + "/.complete", "kind=build-root\ngcc=10.2.1\nend\n");
    runner.On({"sha256sum"}, 0, std::string(64, 'a') + "  file\n");
    runner.On({"mount"}, 0);
    runner.On({"umount"}, 0);
    runner.On({"tar"}, 0, "", [this, row](const util::ProcessSpec& s) {
      if (tar_exit != 0) return;
      std::string dest = s.argv[5];
      Touch(dest + "/" + row.source.top_dir + "/Makefile", makefile);
    });
    runner.On({"patch"}, 0);
    // Every make in the root, told apart by its arguments.
    runner.On({"chroot", root}, 0, "", [this](const util::ProcessSpec& s) {
      std::string cwd = root + s.argv[5];
      const auto& last = s.argv.back();
      if (last == "x86_64_defconfig") Touch(cwd + "/.config", "CONFIG_TUN=y\nCONFIG_NR_CPUS=64\n");
      if (last == "olddefconfig" && lose_config_line) {
        auto text = util::ReadFile(cwd + "/.config");
        std::string t = *text;
        t.replace(t.find("CONFIG_NR_CPUS=256"), 18, "CONFIG_NR_CPUS=64");
        Touch(cwd + "/.config", t);
      }
      if (last == "modules") {
        ++make_calls;
        Touch(cwd + "/arch/x86/boot/bzImage");
        Touch(cwd + "/Module.symvers");
        Touch(cwd + "/include/config/kernel.release", "3.10.0-1160.el7.x86_64\n");
      }
      if (last == "modules_install") {
        std::string dest;
        for (const auto& a : s.argv)
          if (a.rfind("INSTALL_MOD_PATH=", 0) == 0) dest = root + a.substr(17);
        Touch(dest + "/lib/modules/3.10.0-1160.el7.x86_64/modules.dep");
        Touch(dest + "/lib/modules/3.10.0-1160.el7.x86_64/kernel/drivers/net/tun.ko");
      }
    });
  }
};

struct EnvSources {
  explicit EnvSources(const std::string& v) { ::setenv(kSourcesEnv, v.c_str(), 1); }
  ~EnvSources() { ::unsetenv(kSourcesEnv); }
};

}  // namespace

TEST_CASE("source rows: the YAML names tarball, tree, config and patches; paths resolve beside the file",
          "[lab][source]") {
  TempDir dir;
  KernelRow row = LoadRow(dir);
  CHECK(row.from_source);
  CHECK(row.name == "centos-7");
  CHECK(row.suite.empty());  // Debian keys are not required of a source row
  CHECK(row.source.Kver() == "3.10.0-1160.el7.x86_64");
  CHECK(row.source.config == fs::path(dir / "kernels/c7/config").lexically_normal().string());
  CHECK(row.source.patches_dir == fs::path(dir / "kernels/c7/patches").lexically_normal().string());
  CHECK(row.source.archive_member == "linux-3.10.0-1160.el7.tar.xz");
  CHECK(row.source.build_minutes == 60);
  CHECK(row.note == "built from CentOS 7.9's own tree");
}

TEST_CASE("source rows: bad YAML gets one line naming the key", "[lab][source]") {
  TempDir dir;
  std::string good = SourceMatrix(dir.path);
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    REQUIRE(t.find(from) != std::string::npos);
    return t.replace(t.find(from), from.size(), to);
  };
  CHECK(MatrixError(dir, replace("      config: kernels/c7/config\n", "")).find("`source` is missing `config`") !=
        std::string::npos);
  CHECK(MatrixError(dir, replace("kernels/c7/config", "kernels/c7/nope")).find("is not a regular file") !=
        std::string::npos);
  CHECK(MatrixError(dir, replace("tarball: linux-3.10.0-1160.el7.tar.xz", "tarball: ../../etc/passwd"))
            .find("must be a plain file name") != std::string::npos);
  CHECK(MatrixError(dir, replace("SUBLEVEL: 0, ", "")).find("must give SUBLEVEL") != std::string::npos);
  CHECK(MatrixError(dir, replace("extraversion: -1160.el7.x86_64", "extraversion: 1160;rm"))
            .find("`source.extraversion`") != std::string::npos);
  CHECK(MatrixError(dir, good + "      colour: blue\n").find("unknown key `source.colour`") != std::string::npos);
  CHECK(MatrixError(dir, good + "    pin: 3.10.0\n").find("drop `pin`") != std::string::npos);
  CHECK(MatrixError(dir, good + "      archive_url: ftp://x/y.rpm\n").find("https://") != std::string::npos);
  CHECK(MatrixError(dir, good + "      build_minutes: 0\n").find("1 to 600") != std::string::npos);
}

TEST_CASE("source rows: the repository's centos-7 row", "[lab][source]") {
  auto m = LoadMatrix(DefaultMatrixPath());
  REQUIRE(m.ok());
  auto row = FindRow(*m, "centos-7");
  REQUIRE(row.ok());
  CHECK(row->from_source);
  CHECK(row->source.Kver() == "3.10.0-1160.el7.x86_64");
  CHECK_FALSE(row->optional);  // in the default matrix
  CHECK(row->source.archive_url.find("vault.centos.org") != std::string::npos);
}

TEST_CASE("source rows: Makefile variables and config fragments", "[lab][source]") {
  TempDir dir;
  KernelRow row = LoadRow(dir);
  CHECK(MakefileMismatch(row.source, kMakefile).empty());
  std::string other = kMakefile;
  other.replace(other.find("RHEL_RELEASE = 1160"), 19, "RHEL_RELEASE = 1062");
  CHECK(MakefileMismatch(row.source, other) == "RHEL_RELEASE is 1062, not 1160");
  CHECK(MakefileMismatch(row.source, "VERSION = 2\n").find("VERSION is 2, not 3") == 0);

  std::string merged = MergeConfig("CONFIG_TUN=y\nCONFIG_A=y\n# CONFIG_MODULE_SIG is not set\n",
                                   "CONFIG_TUN=m\n# CONFIG_A is not set\n");
  CHECK(merged.find("CONFIG_TUN=y") == std::string::npos);
  CHECK(merged.find("CONFIG_TUN=m\n") != std::string::npos);
  CHECK(merged.find("# CONFIG_A is not set\n") != std::string::npos);
  CHECK(merged.find("# CONFIG_MODULE_SIG is not set\n") != std::string::npos);
  // "is not set" and absent are the same; a changed value is lost.
  CHECK(LostConfigLines("# CONFIG_X is not set\nCONFIG_TUN=m\n", "CONFIG_TUN=m\n").empty());
  CHECK(LostConfigLines("CONFIG_NR_CPUS=256\nCONFIG_KPROBES=y\n", "CONFIG_NR_CPUS=64\n") ==
        std::vector<std::string>{"CONFIG_NR_CPUS=256 (got: 64)", "CONFIG_KPROBES=y (got: n)"});
}

TEST_CASE("source rows: the tarball is looked up in --sources, the env, then the cache", "[lab][source]") {
  TempDir dir, a, b, cache;
  KernelRow row = LoadRow(dir);
  util::FakeProcessRunner runner;
  EnvSources env(a.path + ":" + b.path);
  auto path = SourceSearchPath({"/nonexistent"}, cache.path);
  CHECK(path == std::vector<std::string>{"/nonexistent", a.path, b.path, cache.path + "/sources"});

  auto missing = FindSourceTarball(row, path, cache.path, runner, nullptr);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("row centos-7: linux-3.10.0-1160.el7.tar.xz is in none of /nonexistent, ") == 0);
  CHECK(missing.error().message.find("; put it in " + cache.path + "/sources or pass --sources DIR") !=
        std::string::npos);
  CHECK(runner.commands().empty());  // no URL: nothing fetched

  FakeTarball(b / "linux-3.10.0-1160.el7.tar.xz");
  auto found = FindSourceTarball(row, path, cache.path, runner, nullptr);
  REQUIRE(found.ok());
  CHECK(*found == b / "linux-3.10.0-1160.el7.tar.xz");

  // A file that cannot be a kernel tarball is refused where it is found.
  Touch(a / "linux-3.10.0-1160.el7.tar.xz", "short");
  auto small = FindSourceTarball(row, path, cache.path, runner, nullptr);
  REQUIRE_FALSE(small.ok());
  CHECK(small.error().message.find(a / "linux-3.10.0-1160.el7.tar.xz is 5 bytes") != std::string::npos);
  fs::remove(a / "linux-3.10.0-1160.el7.tar.xz");
  fs::create_directory(a / "linux-3.10.0-1160.el7.tar.xz");
  auto folder = FindSourceTarball(row, path, cache.path, runner, nullptr);
  REQUIRE_FALSE(folder.ok());
  CHECK(folder.error().message.find("is not a regular file") != std::string::npos);
}

TEST_CASE("source rows: a missing tarball is fetched from the row's archive, or the error says where to put it",
          "[lab][source]") {
  TempDir dir, cache;
  KernelRow row = LoadRow(dir, "      archive_url: https://vault.example/kernel-3.10.0-1160.el7.src.rpm\n");
  auto path = SourceSearchPath({}, cache.path);
  SECTION("fetch fails") {
    util::FakeProcessRunner runner;
    runner.On({"curl"}, 6, "curl: (6) Could not resolve host: vault.example\n");
    auto r = FindSourceTarball(row, path, cache.path, runner, nullptr);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("fetching it failed (curl: (6) Could not resolve host: vault.example)") !=
          std::string::npos);
    CHECK(r.error().message.find("get https://vault.example/kernel-3.10.0-1160.el7.src.rpm yourself and put "
                                 "the linux-3.10.0-1160.el7.tar.xz inside it in " +
                                 cache.path + "/sources") != std::string::npos);
    CHECK(fs::is_empty(cache / "sources"));  // no scratch left behind
  }
  SECTION("fetched and unpacked") {
    util::FakeProcessRunner runner;
    runner.On({"curl"}, 0);
    runner.On({"bsdtar"}, 0, "", [](const util::ProcessSpec& s) {
      FakeTarball(s.argv[5] + "/" + s.argv.back());
    });
    auto r = FindSourceTarball(row, path, cache.path, runner, nullptr);
    REQUIRE(r.ok());
    CHECK(*r == cache / "sources/linux-3.10.0-1160.el7.tar.xz");
    CHECK(fs::is_regular_file(*r));
    REQUIRE(runner.commands().size() == 2);
    CHECK(runner.commands()[0].back() == "https://vault.example/kernel-3.10.0-1160.el7.src.rpm");
    // Found there next time, with no fetch.
    util::FakeProcessRunner again;
    CHECK(FindSourceTarball(row, path, cache.path, again, nullptr).ok());
    CHECK(again.commands().empty());
  }
  SECTION("the archive lacks the tarball") {
    util::FakeProcessRunner runner;
    runner.On({"curl"}, 0);
    runner.On({"bsdtar"}, 1, "bsdtar: linux-3.10.0-1160.el7.tar.xz: Not found in archive\n");
    auto r = FindSourceTarball(row, path, cache.path, runner, nullptr);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("the fetched archive holds no linux-3.10.0-1160.el7.tar.xz") != std::string::npos);
    CHECK(fs::is_empty(cache / "sources"));
  }
}

TEST_CASE("source rows: built once, cached, and never half-built", "[lab][source]") {
  TempDir dir, sources, cache;
  KernelRow row = LoadRow(dir);
  FakeTarball(sources / "linux-3.10.0-1160.el7.tar.xz");
  ProvisionOptions options;
  options.source_dirs = {sources.path};
  FakeBuild world(cache.path, row);
  std::string entry = world.root + "/usr/src/toa-build/centos-7/3.10.0-1160.el7.x86_64";
  auto leftovers = [&] {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(entry).parent_path(), ec))
      names.push_back(e.path().filename().string());
    return names;
  };

  SECTION("a truncated tarball") {
    world.tar_exit = 2;
    world.runner.On({"tar"}, 2, "xz: (stdin): Unexpected end of input\ntar: Child returned status 1\n");
    auto k = ProvisionSourceRow(row, world.runner, cache.path, [](const std::string&) {}, options);
    REQUIRE_FALSE(k.ok());
    CHECK(k.error().message.find("is truncated, corrupt or not a tree under linux-3.10.0-1160.el7/") !=
          std::string::npos);
    CHECK(k.error().message.find("Unexpected end of input") != std::string::npos);
    CHECK(leftovers().empty());
  }
  SECTION("the wrong tree") {
    world.makefile = "VERSION = 3\nPATCHLEVEL = 10\nSUBLEVEL = 0\nRHEL_RELEASE = 1062\n";
    auto k = ProvisionSourceRow(row, world.runner, cache.path, [](const std::string&) {}, options);
    REQUIRE_FALSE(k.ok());
    CHECK(k.error().message.find("is not the tree the row names: its Makefile's RHEL_RELEASE is 1062, not 1160") !=
          std::string::npos);
    CHECK(leftovers().empty());
  }
  SECTION("a fragment line olddefconfig drops") {
    world.lose_config_line = true;
    auto k = ProvisionSourceRow(row, world.runner, cache.path, [](const std::string&) {}, options);
    REQUIRE_FALSE(k.ok());
    CHECK(k.error().message.find("did not survive olddefconfig (their dependencies are off): "
                                 "CONFIG_NR_CPUS=256 (got: 64)") != std::string::npos);
    CHECK(leftovers().empty());
  }
  SECTION("a failed kernel build") {
    world.runner.On({"chroot", world.root, "/usr/bin/env", "-i", "-C", "/usr/src/toa-build/centos-7/"
                     ".3.10.0-1160.el7.x86_64.tmp." + std::to_string(::getpid()) + "/linux",
                     "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                     "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive", "make", "-s",
                     "-j" + std::to_string(std::max(1u, std::thread::hardware_concurrency()))},
                    2, "kernel/foo.c:1:1: error: bar\nmake: *** [kernel] Error 2\n");
    auto k = ProvisionSourceRow(row, world.runner, cache.path, [](const std::string&) {}, options);
    REQUIRE_FALSE(k.ok());
    CHECK(k.error().message.find("row centos-7: the kernel build failed: kernel/foo.c:1:1: error: bar") == 0);
    CHECK(k.error().message.find("full log: " + cache.path + "/logs/centos-7.kernel-build.log") !=
          std::string::npos);
    CHECK(leftovers().empty());
  }
  SECTION("built, then taken from the cache") {
    auto k = ProvisionSourceRow(row, world.runner, cache.path, [](const std::string&) {}, options);
    REQUIRE(k.ok());
    CHECK(k->kver == "3.10.0-1160.el7.x86_64");
    CHECK(k->kernel_built_now);
    CHECK(k->vmlinuz == entry + "/boot/vmlinuz-3.10.0-1160.el7.x86_64");
    CHECK(fs::is_regular_file(k->vmlinuz));
    CHECK(k->modules_dir == entry + "/lib/modules/3.10.0-1160.el7.x86_64");
    CHECK(k->headers_dir == "/usr/src/toa-build/centos-7/3.10.0-1160.el7.x86_64/linux");
    CHECK(k->gcc_version == "10.2.1");
    CHECK(k->source == "linux-3.10.0-1160.el7.tar.xz, sha256 " + std::string(64, 'a'));
    CHECK(fs::read_symlink(world.root + "/lib/modules/3.10.0-1160.el7.x86_64/build") == k->headers_dir);
    auto config = util::ReadFile(entry + "/linux/.config");
    REQUIRE(config.ok());
    CHECK(config->find("CONFIG_TUN=m") != std::string::npos);
    CHECK(world.make_calls == 1);
    auto again = ProvisionSourceRow(row, world.runner, cache.path, [](const std::string&) {}, options);
    REQUIRE(again.ok());
    CHECK_FALSE(again->kernel_built_now);
    CHECK(again->warm);
    CHECK(world.make_calls == 1);
    // A changed fragment is a different kernel: rebuilt.
    Touch(row.source.config, "CONFIG_TUN=m\n");
    auto changed = ProvisionSourceRow(row, world.runner, cache.path, [](const std::string&) {}, options);
    REQUIRE(changed.ok());
    CHECK(world.make_calls == 2);
  }
}
