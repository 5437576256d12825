#include "kernel/flow.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "host/rootfs.h"
#include "util/fs.h"
#include "util/process.h"
#include "util/testing.h"

namespace kernel {
namespace {

using util::testing::TempDir;
using util::testing::Touch;

const char* kGrub =
    "default=0\n"
    "timeout=5\n"
    "title CentOS (2.6.32-220.23.1.el6.x86_64)\n"
    "\troot (hd0,0)\n"
    "\tkernel /vmlinuz-2.6.32-220.23.1.el6.x86_64 ro root=/dev/vda1 rhgb quiet\n"
    "\tinitrd /initramfs-2.6.32-220.23.1.el6.x86_64.img\n"
    "title CentOS (2.6.32-220.el6.x86_64)\n"
    "\troot (hd0,0)\n"
    "\tkernel /vmlinuz-2.6.32-220.el6.x86_64 ro root=/dev/vda1 rhgb quiet\n"
    "\tinitrd /initramfs-2.6.32-220.el6.x86_64.img\n";

// The LVS rs tree's files the flow reads and edits, plus build outputs.
struct Fixture {
  TempDir tree, root;
  util::FakeProcessRunner runner;
  Fixture() {
    Touch(tree / "Makefile", "VERSION = 2\nPATCHLEVEL = 6\nSUBLEVEL = 32\nEXTRAVERSION =\n");
    Touch(tree / "arch/x86/Makefile", "#\n");
    Touch(tree / "net/Kconfig", "if NET\nsource \"net/toa/Kconfig\"\nendif   # if NET\n");
    Touch(tree / "net/Makefile", "obj-$(CONFIG_TOA)\t\t+= toa/\n");
    Touch(tree / "net/toa/toa.h", "#define TCPOPT_TOA  200\n");
    Touch(tree / "arch/x86/boot/bzImage", "bzImage");
    Touch(tree / "System.map", "map");
    Touch(root / "boot/config-2.6.32-220.23.1.el6.x86_64", "CONFIG_INET=y\nCONFIG_IPV6=m\n");
    Touch(root / "boot/grub/grub.conf", kGrub);
    runner.On({"make"}, 0);  // later rules win
    runner.On({"make", "-s", "-C", tree.path, "kernelrelease"}, 0, "2.6.32-toa\n");
    runner.On({"make", "-C", tree.path, "modules_install"}, 0, "", [this](const util::ProcessSpec&) {
      Touch(root / "lib/modules/2.6.32-toa/kernel/net/toa/toa.ko", "ko");
    });
  }
  KernelFlowOptions Options() {
    KernelFlowOptions o;
    o.running_kernel = "2.6.32-220.23.1.el6.x86_64";
    o.install = true;
    return o;
  }
  util::Result<KernelFlowResult> Run(const KernelFlowOptions& o, bool* rolled_back = nullptr) {
    auto info = InspectTree(tree.path);
    REQUIRE(info.ok());
    host::RootFs tree_fs(tree.path), root_fs(root.path);
    host::Executor tree_exec(tree_fs, runner, false), root_exec(root_fs, runner, false);
    auto r = RunKernelFlow(*info, o, tree_exec, root_exec);
    if (!r) {
      root_exec.Rollback();
      if (rolled_back) *rolled_back = true;
    }
    return r;
  }
  std::string Read(const std::string& path) { return util::ReadFile(path).ok() ? *util::ReadFile(path) : "<missing>"; }
};

TEST_CASE("kernel flow: the guide's path on the LVS rs tree, installed into a CentOS 6 root") {
  Fixture f;
  auto r = f.Run(f.Options());
  INFO((r.ok() ? std::string() : r.error().message));
  REQUIRE(r.ok());
  CHECK(r->kernel_release == "2.6.32-toa");
  CHECK(f.Read(f.tree / "net/toa/toa.h") == "#define TCPOPT_TOA  254\n");
  CHECK(f.Read(f.tree / ".config") == "CONFIG_INET=y\nCONFIG_IPV6=y\nCONFIG_TOA=m\n");
  CHECK(f.Read(f.tree / "Makefile").find("EXTRAVERSION = -toa\n") != std::string::npos);
  CHECK(f.Read(f.root / "boot/vmlinuz-2.6.32-toa") == "bzImage");
  CHECK(f.Read(f.root / "boot/System.map-2.6.32-toa") == "map");
  CHECK(f.Read(f.root / "boot/grub/grub.conf.toa-build.orig") == kGrub);
  CHECK(r->grub_entry_added);  // no installkernel under --root
  CHECK(r->grub_default == 0);
  std::string grub = f.Read(f.root / "boot/grub/grub.conf");
  CHECK(grub.rfind("default=0\ntimeout=5\ntitle CentOS (2.6.32-toa)\n\troot (hd0,0)\n"
                   "\tkernel /vmlinuz-2.6.32-toa ro root=/dev/vda1 rhgb quiet nohz=off\n"
                   "title CentOS (2.6.32-220.23.1.el6.x86_64)\n", 0) == 0);
  CHECK(f.Read(f.root / "etc/sysconfig/modules/toa.modules").find("/sbin/modprobe toa") != std::string::npos);
  // The commands, in order, with the root's module path.
  std::vector<std::vector<std::string>> want{
      {"make", "-C", f.tree.path, "oldconfig"},
      {"make", "-s", "-C", f.tree.path, "kernelrelease"},
      {"make", "-C", f.tree.path, "-j2"},
      {"make", "-C", f.tree.path, "modules_install", "INSTALL_MOD_PATH=" + f.root.path},
  };
  CHECK(f.runner.commands() == want);
  // Idempotent: a second run leaves grub.conf and the backup as they are.
  auto again = f.Run(f.Options());
  REQUIRE(again.ok());
  CHECK(f.Read(f.root / "boot/grub/grub.conf") == grub);
  CHECK(f.Read(f.root / "boot/grub/grub.conf.toa-build.orig") == kGrub);
}

TEST_CASE("kernel flow: a failure leaves /boot, grub.conf and the boot scripts as they were") {
  Fixture f;
  std::filesystem::remove(f.root / "boot/grub/grub.conf");
  Touch(f.root / "boot/extlinux.conf", "x");
  bool rolled_back = false;
  auto r = f.Run(f.Options(), &rolled_back);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("step grub: /boot/grub/grub.conf is missing") == 0);
  CHECK(rolled_back);
  CHECK_FALSE(std::filesystem::exists(f.root / "boot/vmlinuz-2.6.32-toa"));
  CHECK_FALSE(std::filesystem::exists(f.root / "lib/modules/2.6.32-toa"));
  CHECK_FALSE(std::filesystem::exists(f.root / "etc/sysconfig/modules/toa.modules"));
}

TEST_CASE("kernel flow: refusals name the step and the fix") {
  {
    Fixture f;
    auto o = f.Options();
    o.running_kernel = "2.6.32-other";
    auto r = f.Run(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("step config: /boot/config-2.6.32-other") == 0);
    CHECK(r.error().message.find("--config FILE") != std::string::npos);
  }
  {
    Fixture f;
    f.runner.On({"make", "-C", f.tree.path, "-j2"}, 2, "error: foo.c: bad\n");
    auto r = f.Run(f.Options());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("step build: `make -C") == 0);
    CHECK(r.error().message.find("error: foo.c: bad") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(f.root / "boot/grub/grub.conf.toa-build.orig"));
  }
  {
    Fixture f;
    std::filesystem::remove_all(f.tree / "net/toa");
    auto r = f.Run(f.Options());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("step toa:") == 0);
  }
}

}  // namespace
}  // namespace kernel
