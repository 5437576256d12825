#include "e2e/guest.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "util/fs.h"
#include "util/testing.h"

namespace {

std::vector<e2e::Step> Steps(const std::string& console) {
  return e2e::ParseStage(console, "removed", false).steps;
}

e2e::GuestParams Removed() {
  return {"removed", "6.1.0-56-amd64", "6.12.95+deb12-amd64", {"linux-image-6.12.95+deb12-amd64"}};
}

// Runs the install stage against `root` and returns its step `name` (empty
// name: the step was not reported).
e2e::Step InstallStep(util::FakeProcessRunner& runner, const std::string& root, const std::string& name) {
  runner.On({"dmesg"}, 0, "");
  std::ostringstream out;
  e2e::GuestDriver driver(runner, out, "/opt/toa-e2e", root);
  e2e::GuestParams p = Removed();
  p.stage = "install";
  driver.Run(p);
  for (const auto& s : e2e::ParseStage(out.str(), "install", false).steps)
    if (s.name == name) return s;
  return e2e::Step{};
}

}  // namespace

TEST_CASE("e2e guest: after uninstall, a file of ours left behind fails the stage", "[e2e]") {
  util::testing::TempDir root;
  util::FakeProcessRunner runner;
  runner.On({"dkms", "status"}, 0, "");
  runner.On({"dmesg"}, 0, "[ 1.0] Linux version\n");
  util::WriteFileAtomic(root.path + "/proc/modules", "tun 61440 0 - Live 0x0\n");
  std::ostringstream out;
  e2e::GuestParams p = Removed();
  p.upgrade_kernel = "?";  // the kernel check fails here, the file checks are what this test is about
  e2e::GuestDriver clean(runner, out, "/opt/toa-e2e", root.path);
  clean.Run(p);
  auto steps = Steps(out.str());
  REQUIRE(steps.size() == 4);
  CHECK(steps[1].name == "nothing_loaded");
  CHECK(steps[1].passed);
  CHECK(steps[2].name == "no_files_left");
  CHECK(steps[2].passed);
  CHECK(steps[3].passed);

  util::WriteFileAtomic(root.path + "/etc/modules-load.d/toa.conf", "toa\n");
  util::WriteFileAtomic(root.path + "/lib/modules/6.12.95+deb12-amd64/updates/dkms/uoa.ko.xz", "x");
  util::WriteFileAtomic(root.path + "/proc/modules", "uoa 45056 0 - Live 0x0\n");
  runner.On({"dkms", "status"}, 0, "toa-build/0.1.0, 6.12.95+deb12-amd64, x86_64: installed\n");
  std::ostringstream out2;
  e2e::GuestDriver dirty(runner, out2, "/opt/toa-e2e", root.path);
  CHECK_FALSE(dirty.Run(p));
  steps = Steps(out2.str());
  REQUIRE(steps.size() == 4);
  CHECK_FALSE(steps[1].passed);
  CHECK(steps[1].detail == "still loaded: uoa");
  CHECK_FALSE(steps[2].passed);
  CHECK(steps[2].detail ==
        "left behind: /etc/modules-load.d/toa.conf, /lib/modules/6.12.95+deb12-amd64/updates/dkms/uoa.ko.xz");
  CHECK_FALSE(steps[3].passed);
}

TEST_CASE("e2e guest: a second install that changes something fails install_again", "[e2e]") {
  util::testing::TempDir root;
  util::FakeProcessRunner runner;
  runner.On({"/opt/toa-e2e/bin/toa-build", "install"}, 0, "+ dkms build\ntoa-build install: toa, uoa installed\n");
  runner.On({"/opt/toa-e2e/bin/toa-build"}, 0, "ok\n");
  auto s = InstallStep(runner, root.path, "install_again");
  REQUIRE(s.name == "install_again");
  CHECK_FALSE(s.passed);
  CHECK(s.detail.find("but did something") != std::string::npos);
}

TEST_CASE("e2e guest: modules DKMS did not sign, or no DKMS certificate, fail module_signed", "[e2e]") {
  auto signed_step = [](bool cert, const std::string& toa_signer) {
    util::testing::TempDir root;
    if (cert) util::WriteFileAtomic(root.path + "/var/lib/dkms/mok.pub", "CERT");
    util::FakeProcessRunner runner;
    runner.On({"modinfo", "-F", "signer", "toa"}, 0, toa_signer);
    runner.On({"modinfo", "-F", "signer", "uoa"}, 0, "DKMS module signing key\n");
    runner.On({"/opt/toa-e2e/bin/toa-build"}, 0, "nothing changed\n");
    return InstallStep(runner, root.path, "module_signed");
  };
  auto good = signed_step(true, "DKMS module signing key\n");
  CHECK(good.name == "module_signed");
  CHECK(good.passed);
  auto bad = signed_step(false, "\n");
  CHECK_FALSE(bad.passed);
  CHECK(bad.detail == "not signed: toa; /var/lib/dkms/mok.pub missing");
}
