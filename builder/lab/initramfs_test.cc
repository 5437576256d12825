#include "lab/initramfs.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <boost/filesystem.hpp>

#include "util/fs.h"
#include "util/testing.h"

namespace fs = boost::filesystem;

namespace {

using util::testing::TempDir;
using util::testing::Touch;

const lab::CpioEntry* Find(const std::vector<lab::CpioEntry>& entries, const std::string& path) {
  for (const auto& e : entries)
    if (e.path == path) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("cpio: what the writer writes parses back entry by entry") {
  lab::CpioWriter w;
  w.AddDirectory("/bin");
  w.AddFile("bin/odd", "12345", 0755);  // 5 bytes: exercises padding
  w.AddFile("empty", "");
  w.AddSymlink("bin/sh", "busybox");
  w.AddCharDevice("dev/console", 0600, 5, 1);
  std::string binary("\0\1\2\3\xff", 5);
  w.AddFile("data.bin", binary);
  std::string archive = w.Finish();
  CHECK(archive.size() % 4 == 0);
  CHECK(archive.compare(0, 6, "070701") == 0);
  CHECK(archive.find("TRAILER!!!") != std::string::npos);

  auto entries = lab::ParseCpio(archive);
  REQUIRE(entries);
  REQUIRE(entries->size() == 6);
  CHECK((*entries)[0].path == "bin");  // leading '/' dropped, as the kernel wants
  CHECK(S_ISDIR((*entries)[0].mode));
  CHECK(((*entries)[0].mode & 07777) == 0755);
  CHECK((*entries)[1].data == "12345");
  CHECK(S_ISREG((*entries)[1].mode));
  CHECK((*entries)[2].data.empty());
  CHECK(S_ISLNK((*entries)[3].mode));
  CHECK((*entries)[3].data == "busybox");
  CHECK(S_ISCHR((*entries)[4].mode));
  CHECK((*entries)[4].rdev_major == 5);
  CHECK((*entries)[4].rdev_minor == 1);
  CHECK((*entries)[5].data == binary);
}

TEST_CASE("cpio: a truncated or foreign archive is an error, not garbage") {
  lab::CpioWriter w;
  w.AddFile("a", "hello");
  std::string archive = w.Finish();
  CHECK_FALSE(lab::ParseCpio(archive.substr(0, 50)));
  CHECK_FALSE(lab::ParseCpio(archive.substr(0, 120)));
  std::string odc = archive;
  odc[5] = '7';  // 070707: the old format
  CHECK_FALSE(lab::ParseCpio(odc));
}

TEST_CASE("kernel modules: names are normalised and dependencies come first") {
  CHECK(lab::KernelModuleName("kernel/drivers/net/tun.ko.xz") == "tun");
  CHECK(lab::KernelModuleName("kernel/net/ipv6/nf-defrag_ipv6.ko.zst") == "nf_defrag_ipv6");
  CHECK(lab::KernelModuleName("veth.ko") == "veth");
  std::string dep =
      "kernel/drivers/net/tun.ko.xz:\n"
      "kernel/net/a.ko.xz: kernel/net/b.ko.xz kernel/net/c.ko.xz\n"
      "kernel/net/b.ko.xz: kernel/net/c.ko.xz\n"
      "kernel/net/c.ko.xz:\n";
  auto order = lab::ResolveKernelModules(dep, "", {"a", "tun", "b"});
  REQUIRE(order);
  REQUIRE(order->size() == 4);
  CHECK((*order)[0] == "kernel/net/c.ko.xz");
  CHECK((*order)[1] == "kernel/net/b.ko.xz");
  CHECK((*order)[2] == "kernel/net/a.ko.xz");
  CHECK((*order)[3] == "kernel/drivers/net/tun.ko.xz");

  auto builtin = lab::ResolveKernelModules(dep, "kernel/drivers/net/veth.ko\n", {"veth"});
  REQUIRE(builtin);
  CHECK(builtin->empty());
  auto missing = lab::ResolveKernelModules(dep, "", {"wireguard"});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("wireguard") != std::string::npos);
  auto cycle = lab::ResolveKernelModules("x.ko: y.ko\ny.ko: x.ko\n", "", {"x"});
  CHECK_FALSE(cycle);
}

TEST_CASE("kernel modules: a '?' name is loaded where the kernel ships it and skipped where not") {
  std::string dep =
      "kernel/crypto/crc32c_generic.ko.xz:\n"
      "kernel/net/netfilter/nf_tables.ko.xz: kernel/net/netfilter/nfnetlink.ko.xz\n"
      "kernel/net/netfilter/nfnetlink.ko.xz:\n";
  auto shipped = lab::ResolveKernelModules(dep, "", {"?crc32c_generic", "nf_tables"});
  REQUIRE(shipped);
  REQUIRE(shipped->size() == 3);
  CHECK((*shipped)[0] == "kernel/crypto/crc32c_generic.ko.xz");
  CHECK((*shipped)[2] == "kernel/net/netfilter/nf_tables.ko.xz");
  // 7.2 ships neither crc32c_generic nor libcrc32c: skipped, not an error.
  std::string dep72 = "kernel/net/netfilter/nf_tables.ko.xz:\n";
  auto absent = lab::ResolveKernelModules(dep72, "", {"?crc32c_generic", "nf_tables"});
  REQUIRE(absent);
  CHECK(*absent == std::vector<std::string>{"kernel/net/netfilter/nf_tables.ko.xz"});
  // Without the '?' the same absence is the clear error.
  auto required = lab::ResolveKernelModules(dep72, "", {"crc32c_generic"});
  REQUIRE_FALSE(required);
  CHECK(required.error().message.find("crc32c_generic") != std::string::npos);
}

TEST_CASE("init: follows the guest-run contract") {
  std::string init = lab::GenerateInit({"--module", "toa", "it's"});
  CHECK(init.rfind("#!/bin/busybox sh\n", 0) == 0);
  auto at = [&](const std::string& s) { return init.find(s); };
  REQUIRE(at("mount -t proc") != std::string::npos);
  CHECK(at("--install") == std::string::npos);  // applets are linked in the archive
  REQUIRE(at("/kmod/order") != std::string::npos);
  REQUIRE(at("echo LAB-BEGIN") != std::string::npos);
  REQUIRE(at("/bin/lbsim run --ko-dir /modules '--module' 'toa' 'it'\\''s'\n") != std::string::npos);
  REQUIRE(at("echo LAB-DMESG-BEGIN") != std::string::npos);
  REQUIRE(at("echo LAB-DMESG-END") != std::string::npos);
  REQUIRE(at("LAB-END rc=$rc") != std::string::npos);
  REQUIRE(at("poweroff -f") != std::string::npos);
  // In this order.
  CHECK(at("/kmod/order") < at("echo LAB-BEGIN"));
  CHECK(at("echo LAB-BEGIN") < at("/bin/lbsim run"));
  CHECK(at("/bin/lbsim run") < at("echo LAB-DMESG-BEGIN"));
  CHECK(at("echo LAB-DMESG-END") < at("LAB-END rc=$rc"));
  CHECK(at("LAB-END rc=$rc") < at("poweroff -f"));
}

TEST_CASE("initramfs: layout, decompressed kernel modules in order, via the runner") {
  TempDir tmp;
  util::WriteFileAtomic(tmp / "busybox", "BUSYBOX");
  util::WriteFileAtomic(tmp / "lbsim", "LBSIM");
  util::WriteFileAtomic(tmp / "toa.ko", "TOA-KO");
  std::string mods = tmp / "lib/modules/6.1.0-56-amd64";
  util::WriteFileAtomic(mods + "/modules.dep",
                        "kernel/drivers/net/tun.ko.xz: kernel/net/dep.ko.zst\n"
                        "kernel/net/dep.ko.zst:\n");
  util::WriteFileAtomic(mods + "/kernel/drivers/net/tun.ko.xz", "XZ");
  util::WriteFileAtomic(mods + "/kernel/net/dep.ko.zst", "ZST");

  // The fake "decompressors" do what xz -d / zstd -d --rm do to the copy.
  util::FakeProcessRunner runner;
  auto decompress = [](const std::string& suffix, const std::string& content) {
    return [suffix, content](const util::ProcessSpec& spec) {
      std::string in = spec.argv.back();
      REQUIRE(in.size() > suffix.size());
      util::WriteFileAtomic(in.substr(0, in.size() - suffix.size()), content);
      fs::remove(in);
    };
  };
  runner.On({"xz", "-d"}, 0, "", decompress(".xz", "TUN-KO"));
  runner.On({"zstd", "-d"}, 0, "", decompress(".zst", "DEP-KO"));

  lab::InitramfsSpec spec;
  spec.output = tmp / "out/initramfs.cpio";
  spec.work_dir = tmp / "work";
  spec.busybox = tmp / "busybox";
  spec.lbsim = tmp / "lbsim";
  spec.test_modules = {tmp / "toa.ko"};
  spec.kernel_modules_dir = mods;
  spec.lbsim_args = {"--module", "toa"};
  spec.other_inits = {{"init-ipv6-disabled", {"--module", "toa", "--ipv6-disabled"}}};
  auto info = lab::BuildInitramfs(spec, runner);
  REQUIRE(info);
  CHECK(info->kmod_order == std::vector<std::string>{"dep.ko", "tun.ko"});
  CHECK(runner.commands().size() == 2);
  // The host's module tree is never touched.
  CHECK(fs::exists(mods + "/kernel/drivers/net/tun.ko.xz"));

  auto archive = util::ReadFile(spec.output);
  REQUIRE(archive);
  CHECK(info->bytes == archive->size());
  auto entries = lab::ParseCpio(*archive);
  REQUIRE(entries);
  for (const char* dir : {"bin", "dev", "proc", "sys", "tmp", "modules", "kmod"}) {
    auto* e = Find(*entries, dir);
    INFO(dir);
    REQUIRE(e);
    CHECK(S_ISDIR(e->mode));
  }
  REQUIRE(Find(*entries, "dev/kmsg"));
  REQUIRE(Find(*entries, "dev/console"));
  CHECK(S_ISCHR(Find(*entries, "dev/console")->mode));
  REQUIRE(Find(*entries, "bin/busybox"));
  CHECK(Find(*entries, "bin/busybox")->data == "BUSYBOX");
  CHECK((Find(*entries, "bin/busybox")->mode & 0111) != 0);
  REQUIRE(Find(*entries, "bin/lbsim"));
  CHECK((Find(*entries, "bin/lbsim")->mode & 0111) != 0);
  REQUIRE(Find(*entries, "modules/toa.ko"));
  CHECK(Find(*entries, "modules/toa.ko")->data == "TOA-KO");
  REQUIRE(Find(*entries, "kmod/tun.ko"));
  CHECK(Find(*entries, "kmod/tun.ko")->data == "TUN-KO");
  REQUIRE(Find(*entries, "kmod/dep.ko"));
  CHECK(Find(*entries, "kmod/dep.ko")->data == "DEP-KO");
  REQUIRE(Find(*entries, "kmod/order"));
  CHECK(Find(*entries, "kmod/order")->data == "dep.ko\ntun.ko\n");
  REQUIRE(Find(*entries, "init"));
  CHECK(Find(*entries, "init")->data == lab::GenerateInit({"--module", "toa"}));
  CHECK((Find(*entries, "init")->mode & 0111) != 0);
  // The ipv6.disable=1 boot's script (rdinit=/init-ipv6-disabled), beside /init.
  REQUIRE(Find(*entries, "init-ipv6-disabled"));
  CHECK(Find(*entries, "init-ipv6-disabled")->data ==
        lab::GenerateInit({"--module", "toa", "--ipv6-disabled"}));
  CHECK((Find(*entries, "init-ipv6-disabled")->mode & 0111) != 0);
  // Every command /init runs is a busybox applet linked in the archive.
  for (const char* applet : {"sh", "mount", "insmod", "dmesg", "poweroff"}) {
    INFO(applet);
    REQUIRE(Find(*entries, std::string("bin/") + applet));
    CHECK(Find(*entries, std::string("bin/") + applet)->data == "busybox");
  }
}

TEST_CASE("initramfs: a missing kernel module or lbsim is a clear error") {
  TempDir tmp;
  util::WriteFileAtomic(tmp / "busybox", "BUSYBOX");
  util::WriteFileAtomic(tmp / "lbsim", "LBSIM");
  std::string mods = tmp / "mods";
  util::WriteFileAtomic(mods + "/modules.dep", "kernel/net/other.ko:\n");
  util::FakeProcessRunner runner;
  lab::InitramfsSpec spec;
  spec.output = tmp / "initramfs.cpio";
  spec.work_dir = tmp / "work";
  spec.busybox = tmp / "busybox";
  spec.lbsim = tmp / "lbsim";
  spec.kernel_modules_dir = mods;
  auto r = lab::BuildInitramfs(spec, runner);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("`tun`") != std::string::npos);

  spec.lbsim = tmp / "no-such-lbsim";
  spec.kernel_modules.clear();
  r = lab::BuildInitramfs(spec, runner);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("lbsim") != std::string::npos);
}

TEST_CASE("initramfs: without modules.dep, modules are found by name and .modinfo depends") {
  TempDir tmp;
  util::WriteFileAtomic(tmp / "busybox", "BUSYBOX");
  util::WriteFileAtomic(tmp / "lbsim", "LBSIM");
  std::string mods = tmp / "usr/lib/modules/7.2.13+deb14-amd64";
  // As Debian packages ship them: no modules.dep (depmod runs at install).
  std::string tun_ko = std::string("\x7f" "ELF...\0license=GPL\0depends=dep_a,dep-b\0name=tun\0", 49);
  util::WriteFileAtomic(mods + "/kernel/drivers/net/tun.ko", tun_ko);
  util::WriteFileAtomic(mods + "/kernel/net/dep_a.ko.xz", "XZ");
  util::WriteFileAtomic(mods + "/kernel/net/dep-b.ko",
                        std::string("\x7f" "ELF\0depends=dep_a\0", 19));
  util::FakeProcessRunner runner;
  runner.On({"xz", "-d"}, 0, "", [](const util::ProcessSpec& spec) {
    std::string in = spec.argv.back();
    util::WriteFileAtomic(in.substr(0, in.size() - 3), std::string("\x7f" "ELF\0depends=\0", 14));
    fs::remove(in);
  });
  CHECK(lab::ModinfoDepends(tun_ko) == std::vector<std::string>{"dep_a", "dep-b"});

  lab::InitramfsSpec spec;
  spec.output = tmp / "initramfs.cpio";
  spec.work_dir = tmp / "work";
  spec.busybox = tmp / "busybox";
  spec.lbsim = tmp / "lbsim";
  spec.kernel_modules_dir = mods;
  auto info = lab::BuildInitramfs(spec, runner);
  REQUIRE(info);
  // dep_a once, before both of its users.
  CHECK(info->kmod_order == std::vector<std::string>{"dep_a.ko", "dep-b.ko", "tun.ko"});
  CHECK(runner.commands().size() == 1);

  spec.kernel_modules = {"wireguard"};
  auto missing = lab::BuildInitramfs(spec, runner);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("`wireguard`") != std::string::npos);
}

TEST_CASE("init: bench mode runs lbsim bench") {
  std::string init = lab::GenerateInit({"--rounds", "3"}, "bench");
  CHECK(init.find("/bin/lbsim bench --ko-dir /modules '--rounds' '3'") != std::string::npos);
}
