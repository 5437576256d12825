#include "lab/qemu.h"

#include <algorithm>

#include <catch2/catch.hpp>
#include <boost/filesystem.hpp>

#include "util/fs.h"

namespace fs = boost::filesystem;

namespace {

bool Has(const std::vector<std::string>& argv, const std::vector<std::string>& seq) {
  return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end();
}

std::string AppendOf(const std::vector<std::string>& argv) {
  auto it = std::find(argv.begin(), argv.end(), "-append");
  return it == argv.end() || it + 1 == argv.end() ? "" : *(it + 1);
}

lab::QemuOptions Options() {
  lab::QemuOptions o;
  o.kernel = "/k/vmlinuz";
  o.initrd = "/k/initramfs.cpio";
  return o;
}

}  // namespace

TEST_CASE("qemu argv: serial console, no reboot, memory, kernel and initrd") {
  auto argv = lab::QemuArgv(Options(), lab::Accel::kTcg);
  CHECK(argv[0] == "qemu-system-x86_64");
  CHECK(Has(argv, {"-machine", "accel=tcg"}));
  CHECK(Has(argv, {"-nographic"}));
  CHECK(Has(argv, {"-no-reboot"}));
  CHECK(Has(argv, {"-m", "1024"}));
  CHECK(Has(argv, {"-smp", "1"}));
  CHECK(Has(argv, {"-kernel", "/k/vmlinuz"}));
  CHECK(Has(argv, {"-initrd", "/k/initramfs.cpio"}));
  std::string append = AppendOf(argv);
  CHECK(append.find("console=ttyS0") != std::string::npos);
  CHECK(append.find("panic=-1") != std::string::npos);
  CHECK(append.find("no_timer_check") != std::string::npos);
  CHECK(append.find("oops=panic") != std::string::npos);
  CHECK(append.find("loglevel=4") != std::string::npos);
  CHECK_FALSE(Has(argv, {"-icount"}));
  CHECK(Has(lab::QemuArgv(Options(), lab::Accel::kKvm), {"-machine", "accel=kvm"}));
}

TEST_CASE("qemu argv: icount clocks the guest by instructions and forces TCG") {
  auto o = Options();
  o.icount = true;
  auto argv = lab::QemuArgv(o, lab::Accel::kKvm);
  CHECK(Has(argv, {"-icount", "shift=0,sleep=off"}));
  CHECK(Has(argv, {"-machine", "accel=tcg"}));
  util::FakeProcessRunner runner;  // no rules: probing would fail the test
  CHECK(lab::ResolveAccel(o, runner, "") == lab::Accel::kTcg);
  CHECK(runner.commands().empty());
}

TEST_CASE("kvm probe: a KVM guest that hangs means TCG, and the answer is cached") {
  auto dir = fs::temp_directory_path() / fs::unique_path("qemu-test-%%%%%%%%");
  fs::create_directories(dir);
  std::string device = (dir / "kvm").string();
  util::WriteFileAtomic(device, "");  // stands in for an accessible /dev/kvm
  std::string cache = (dir / "kvm-probe").string();

  util::FakeProcessRunner runner;
  // The fake qemu times out, as KVM guests do on this machine.
  runner.On({"qemu-hang", "-machine", "accel=kvm"}, -1, "Booting from ROM...\n",
            [](const util::ProcessSpec& spec) { CHECK(spec.timeout.count() <= 30000); });
  // FakeProcessRunner cannot report timed_out, so a hang shows as no panic
  // line and a non-zero exit: still "not usable".
  auto probe = lab::ProbeKvm(runner, "qemu-hang", "/k/vmlinuz", cache, std::chrono::seconds(5),
                             device);
  CHECK_FALSE(probe.usable);
  CHECK(runner.commands().size() == 1);
  // Second call in the process: no new run.
  lab::ProbeKvm(runner, "qemu-hang", "/k/vmlinuz", cache, std::chrono::seconds(5), device);
  CHECK(runner.commands().size() == 1);
  auto cached = util::ReadFile(cache);
  REQUIRE(cached);
  CHECK(cached->find("usable=0") != std::string::npos);

  util::FakeProcessRunner working;
  working.On({"qemu-ok", "-machine", "accel=kvm"}, 0,
             "[    0.9] Kernel panic - not syncing: VFS: Unable to mount root fs\n");
  auto ok = lab::ProbeKvm(working, "qemu-ok", "/k/vmlinuz", (dir / "probe2").string(),
                          std::chrono::seconds(5), device);
  CHECK(ok.usable);
  lab::QemuOptions o = Options();
  o.qemu = "qemu-ok";
  CHECK(lab::ResolveAccel(o, working, "") == lab::Accel::kKvm);
  o.accel = lab::Accel::kTcg;
  CHECK(lab::ResolveAccel(o, working, "") == lab::Accel::kTcg);

  util::FakeProcessRunner unused;
  auto no_device = lab::ProbeKvm(unused, "qemu-nodev", "/k/vmlinuz", "", std::chrono::seconds(5),
                                 (dir / "missing").string());
  CHECK_FALSE(no_device.usable);
  CHECK(unused.commands().empty());
  fs::remove_all(dir);
}

TEST_CASE("qemu run: console lines stream to the callback and time the phases") {
  util::FakeProcessRunner runner;
  runner.On({"qemu-system-x86_64"}, 0, "SeaBIOS\nLAB-BEGIN\nLBSIM-DONE passed=0 failed=0\nLAB-END rc=0\n");
  auto o = Options();
  o.accel = lab::Accel::kTcg;
  std::vector<std::string> lines;
  auto run = lab::RunGuest(o, runner, [&](const std::string& l) { lines.push_back(l); });
  REQUIRE(run);
  CHECK(lines.size() == 4);
  CHECK(run->boot_s >= 0);
  CHECK(run->tests_s >= 0);
  CHECK(run->console.find("LAB-END rc=0") != std::string::npos);
  CHECK(run->argv == lab::QemuArgv(o, lab::Accel::kTcg));
  o.accel = lab::Accel::kAuto;
  CHECK_FALSE(lab::RunGuest(o, runner));
}
