#include "e2e/report.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "e2e/config.h"
#include "e2e/flow.h"
#include "e2e/guest.h"
#include "e2e/image.h"

namespace {

std::string StepLine(const std::string& stage, const std::string& step, bool pass, const std::string& detail = "") {
  return e2e::FormatStep({stage, step, pass, 1.5, detail}) + "\n";
}

std::string Boot(const std::string& body, const std::string& stage = "install", bool pass = true) {
  return "[    0.000000] Linux version 6.1.0-56-amd64\r\n"
         "[  OK  ] Reached target multi-user.target - Multi-User System.\r\n" +
         body + "E2E-DMESG-BEGIN\n[    3.1] TOA: toa loaded\n" + "E2E-DMESG-END\n" + e2e::FormatEnd(stage, pass) +
         "\n[   40.0] reboot: Power down\n";
}

}  // namespace

TEST_CASE("e2e: a step line round-trips through the parser", "[e2e]") {
  auto console = Boot(StepLine("install", "install", true, "installed \"toa\", uoa\n") +
                      StepLine("install", "install_again", true, "0.081 s"));
  auto r = e2e::ParseStage(console, "install", false);
  CHECK(r.ok());
  CHECK(r.saw_end);
  REQUIRE(r.steps.size() == 2);
  CHECK(r.steps[0].name == "install");
  CHECK(r.steps[0].detail == "installed \"toa\", uoa\n");
  CHECK(r.steps[1].seconds == Approx(1.5));
}

TEST_CASE("e2e: markers after other console output on the same line are found", "[e2e]") {
  auto console = Boot("[  42.1] systemd[1]: Starting " + StepLine("install", "selftest", true));
  auto r = e2e::ParseStage(console, "install", false);
  CHECK(r.ok());
  CHECK(r.steps.size() == 1);
}

TEST_CASE("e2e: a failed step fails the stage with its detail", "[e2e]") {
  auto r = e2e::ParseStage(Boot(StepLine("reboot", "autoload", false, "not loaded: toa"), "reboot", false),
                           "reboot", false);
  CHECK_FALSE(r.ok());
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0] == "step autoload failed: not loaded: toa");
}

TEST_CASE("e2e: a deadline or a truncated console fails the stage", "[e2e]") {
  auto partial = "[ 1.0] Linux\n" + StepLine("install", "kernel", true);
  auto timed = e2e::ParseStage(partial, "install", true);
  REQUIRE_FALSE(timed.ok());
  CHECK(timed.failures[0].find("deadline hit") == 0);
  CHECK(timed.failures[0].find("last step: kernel") != std::string::npos);
  auto cut = e2e::ParseStage(partial, "install", false);
  REQUIRE_FALSE(cut.ok());
  CHECK(cut.failures[0].find("console ends before the end of stage install") == 0);
  auto nothing = e2e::ParseStage("SeaBIOS\n", "install", true);
  CHECK(nothing.failures[0].find("no step ran") != std::string::npos);
}

TEST_CASE("e2e: kernel faults on the console or in the dumped log fail the stage, once each", "[e2e]") {
  std::string oops = "[   12.000000] BUG: kernel NULL pointer dereference, address: 0000000000000008\n";
  auto console = oops + Boot(StepLine("install", "install", true)) + "E2E-DMESG-BEGIN\n" + oops + "E2E-DMESG-END\n";
  auto r = e2e::ParseStage(console, "install", false);
  CHECK_FALSE(r.ok());
  CHECK(r.kernel_faults.size() == 1);
  CHECK(r.failures.back().find("kernel log: ") == 0);
}

TEST_CASE("e2e: fault words inside a step's detail are command output, not kernel log", "[e2e]") {
  auto r = e2e::ParseStage(Boot(StepLine("install", "install", true, "dkms: WARNING: something")), "install", false);
  CHECK(r.ok());
}

TEST_CASE("e2e: progress lines of the guest's commands are not kernel log", "[e2e]") {
  auto r = e2e::ParseStage(Boot("[ 9.0] toa-e2e[251]: E2E-LOG WARNING: could not find module\n" +
                                StepLine("install", "install", true)),
                           "install", false);
  CHECK(r.ok());
}

TEST_CASE("e2e: a step of another stage or an unreadable step line fails", "[e2e]") {
  auto wrong = e2e::ParseStage(Boot(StepLine("install", "kernel", true), "install"), "reboot", false);
  CHECK_FALSE(wrong.ok());
  CHECK(wrong.failures[0] == "the guest ran stage install instead of reboot");
  auto garbled = e2e::ParseStage(Boot("E2E-STEP {\"stage\":\"install\",\n"), "install", false);
  CHECK_FALSE(garbled.ok());
  auto empty = e2e::ParseStage(Boot(""), "install", false);
  CHECK(empty.failures[0] == "stage install reported no step");
}

TEST_CASE("e2e: kernel command line parameters", "[e2e]") {
  auto p = e2e::ParseCmdline(
      "BOOT_IMAGE=/vmlinuz root=/dev/vda rw toa_e2e.stage=reboot toa_e2e.kernel=6.1.0-56-amd64 "
      "toa_e2e.upgrade_kernel=6.12.95+deb12-amd64 "
      "toa_e2e.upgrade=linux-image-6.12.95+deb12-amd64,linux-headers-6.12.95+deb12-amd64 toa_e2e.bad\n");
  CHECK(p.size() == 4);
  auto params = e2e::ParamsFromCmdline(p);
  REQUIRE(params.ok());
  CHECK(params->stage == "reboot");
  CHECK(params->upgrade_packages.size() == 2);
  p["stage"] = "sideways";
  CHECK_FALSE(e2e::ParamsFromCmdline(p).ok());
  CHECK_FALSE(e2e::ParamsFromCmdline({{"stage", "install"}}).ok());
}

TEST_CASE("e2e: /proc/modules lookup matches whole names", "[e2e]") {
  std::string mods = "uoa 45056 0 - Live 0x0000000000000000\ntoa_x 1 0 - Live 0x0\ntun 61440 0 - Live 0x0\n";
  CHECK(e2e::ModuleListed(mods, "uoa"));
  CHECK_FALSE(e2e::ModuleListed(mods, "toa"));
  CHECK(e2e::ModuleListed(mods, "tun"));
}

TEST_CASE("e2e: releases file", "[e2e]") {
  const char* text =
      "image_packages: [systemd-sysv, kmod]\n"
      "releases:\n"
      "  - {name: debian-12, release: bookworm, kernel_row: debian-12, upgrade_row: debian-12-bpo}\n"
      "  - {name: debian-13, release: trixie, kernel_row: debian-13, upgrade_row: debian-13-cloud}\n"
      "default: [debian-12]\n";
  auto c = e2e::ParseConfig(text, "e2e.yaml");
  REQUIRE(c.ok());
  CHECK(c->image_packages.size() == 2);
  auto def = e2e::SelectReleases(c.value(), "");
  REQUIRE(def.ok());
  CHECK(def->size() == 1);
  auto both = e2e::SelectReleases(c.value(), "debian-13,debian-12");
  REQUIRE(both.ok());
  CHECK(both->at(0).release == "trixie");
  auto bad = e2e::SelectReleases(c.value(), "debian-99");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message == "--releases: no release `debian-99` in e2e.yaml (there are: debian-12, debian-13)");
  auto missing = e2e::ParseConfig("releases:\n  - {name: x, release: y, kernel_row: z}\n", "f.yaml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == "f.yaml:2: missing `upgrade_row` (a non-empty string)");
}

TEST_CASE("e2e: the repository's releases file loads and names kernel rows", "[e2e]") {
  auto c = e2e::LoadConfig(e2e::DefaultConfigPath());
  REQUIRE(c.ok());
  CHECK(c->releases.size() >= 2);
}

TEST_CASE("e2e: image sources, upgrade packages and recipe", "[e2e]") {
  e2e::ImageSpec s;
  s.release = {"debian-12", "bookworm", "debian-12", "debian-12-bpo"};
  s.row.mirror = s.upgrade_row.mirror = "http://deb.debian.org/debian";
  s.row.security_mirror = "http://deb.debian.org/debian-security";
  s.row.suite = "bookworm";
  s.row.security_suite = "bookworm-security";
  s.upgrade_row.suite = "bookworm-backports";
  s.upgrade_row.image_packages = {"linux-image-{kver}"};
  s.upgrade_row.headers_package = "linux-headers-{kver}";
  s.kver = "6.1.0-56-amd64";
  s.version = "6.1.192-2";
  s.upgrade_kver = "6.12.95+deb12-amd64";
  s.upgrade_version = "6.12.95-1~bpo12+1";
  CHECK(e2e::BuildSources(s) ==
        "# Written by toa-e2e while building the image; replaced by the local repository.\n"
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb http://deb.debian.org/debian-security bookworm-security main\n"
        "deb http://deb.debian.org/debian bookworm-backports main\n");
  CHECK(e2e::UpgradePackages(s, true) ==
        std::vector<std::string>{"linux-image-6.12.95+deb12-amd64=6.12.95-1~bpo12+1",
                                 "linux-headers-6.12.95+deb12-amd64=6.12.95-1~bpo12+1"});
  CHECK(e2e::LocalSources().find("deb [trusted=yes] file:/srv/toa-e2e-repo ./\n") != std::string::npos);
  auto recipe = e2e::ImageRecipe(s);
  s.upgrade_version = "6.12.96-1~bpo12+1";
  CHECK(e2e::ImageRecipe(s) != recipe);  // a new upgrade kernel rebuilds the image
  recipe = e2e::ImageRecipe(s);
  s.profiles_stamp = "changed";
  CHECK(e2e::ImageRecipe(s) != recipe);  // so does a profile change (deps' packages)
}

TEST_CASE("e2e: the QEMU command line has no network and a read-only payload disk", "[e2e]") {
  e2e::FlowOptions o;
  e2e::BootSpec b{"/c/vmlinuz", "/c/initrd.img", "/r/disk.img", "/r/payload.img", "install", "6.1.0-56-amd64",
                  "6.12.95+deb12-amd64", {"linux-image-X", "linux-headers-X"}};
  auto argv = e2e::BootArgv(o, lab::Accel::kTcg, b);
  auto has = [&](const std::string& s) { return std::find(argv.begin(), argv.end(), s) != argv.end(); };
  CHECK(has("accel=tcg"));
  CHECK(has("none"));
  CHECK(has("file=/r/payload.img,format=raw,if=virtio,readonly=on"));
  CHECK(has("root=/dev/vda rw console=ttyS0 panic=-1 loglevel=4 toa_e2e.stage=install toa_e2e.kernel=6.1.0-56-amd64 "
            "toa_e2e.upgrade_kernel=6.12.95+deb12-amd64 toa_e2e.upgrade=linux-image-X,linux-headers-X"));
}

TEST_CASE("e2e: every path install writes is checked after uninstall", "[e2e]") {
  auto paths = e2e::InstalledPaths();
  for (const char* p : {"/usr/src/toa-build-0.1.0", "/etc/modules-load.d/toa.conf", "/etc/modprobe.d/toa-build.conf",
                        "/var/lib/dkms/toa-build", "/var/lib/toa-build"})
    CHECK(std::find(paths.begin(), paths.end(), p) != paths.end());
}

TEST_CASE("e2e: dead runs are removed, live ones and the lab's own are kept", "[e2e]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("e2e-runs-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const char* d : {"e2e-debian-12-111", "e2e-debian-13-222", "verify-debian-12-111", "e2e-x-notapid"})
    fs::create_directories(dir / d);
  e2e::RemoveDeadRuns(dir.string(), [](long pid) { return pid == 222; });
  CHECK_FALSE(fs::exists(dir / "e2e-debian-12-111"));
  CHECK(fs::exists(dir / "e2e-debian-13-222"));
  CHECK(fs::exists(dir / "verify-debian-12-111"));
  CHECK(fs::exists(dir / "e2e-x-notapid"));
  fs::remove_all(dir);
}
