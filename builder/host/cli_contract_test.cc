// The host commands through the real CLI application: the contract SPEC
// fixes (JSON keys, one-line errors, exit codes, --dry-run output).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/command.h"

namespace {

const std::string kFixtures = std::string(TOA_SOURCE_DIR) + "/tests/fixtures/roots/";

struct Outcome {
  int code;
  std::string out, err;
};

Outcome Cli(std::vector<std::string> args) {
  args.insert(args.begin(), "toa-build");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  util::FakeProcessRunner fake;  // no rules: a real command would fail loudly
  std::ostringstream out, err;
  int code = cli::RunApplication(static_cast<int>(argv.size()), argv.data(), fake, out, err);
  CHECK(fake.commands().empty());
  return {code, out.str(), err.str()};
}

}  // namespace

TEST_CASE("cli detect --json: exactly the contract's keys", "[host][cli]") {
  auto r = Cli({"detect", "--json", "--root", kFixtures + "centos-7"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"distro", "kernel", "package_manager", "header_package", "packages", "autoload", "build"})
    CHECK(j.contains(key));
  CHECK(j["distro"] == nlohmann::json{{"id", "centos"}, {"version", "7"}, {"name", "CentOS Linux 7 (Core)"},
                                      {"family", "rhel"}});
  CHECK(j["kernel"] == "3.10.0-1160.el7.x86_64");
  CHECK(j["package_manager"] == "yum");
  CHECK(j["header_package"] == "kernel-devel-3.10.0-1160.el7.x86_64");
  CHECK(j["packages"] == nlohmann::json{"epel-release", "gcc", "make", "kernel-devel-3.10.0-1160.el7.x86_64", "dkms"});
  CHECK(j["autoload"] == "sysconfig-modules");
  CHECK(j["build"] == "dkms");
}

TEST_CASE("cli detect: legacy-only host and --kernel", "[host][cli]") {
  auto r = Cli({"detect", "--json", "--root", kFixtures + "sles-11.3", "--kernel", "3.0.101-63-xen"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["distro"]["id"] == "sles");
  CHECK(j["distro"]["version"] == "11.3");
  CHECK(j["header_package"] == "kernel-xen-devel");
  CHECK(j["autoload"] == "suse-sysconfig");
}

TEST_CASE("cli: bad input is one line on stderr and a non-zero exit", "[host][cli]") {
  auto missing = Cli({"detect", "--root", "/nonexistent/root"});
  CHECK(missing.code != 0);
  CHECK(missing.err == "toa-build detect: --root /nonexistent/root is not a directory\n");
  auto module = Cli({"install", "--dry-run", "--module", "tcp", "--root", kFixtures + "debian-12"});
  CHECK(module.code != 0);
  CHECK(module.err == "toa-build install: --module tcp is not one of toa, uoa, all\n");
  auto unsupported = Cli({"install", "--dry-run", "--root", kFixtures + "centos-6.8"});
  CHECK(unsupported.code != 0);
  CHECK(unsupported.out.empty());
  CHECK(std::count(unsupported.err.begin(), unsupported.err.end(), '\n') == 1);
}

TEST_CASE("cli install --dry-run prints the plan, one command per line", "[host][cli]") {
  auto r = Cli({"install", "--dry-run", "--module", "toa", "--root", kFixtures + "ubuntu-18.04"});
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());
  std::istringstream in(r.out);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  REQUIRE(lines.size() == 9);
  CHECK(lines[0] == "apt-get update");
  CHECK(lines[1] == "apt-get install -y --no-install-recommends gcc make openssl linux-headers-4.15.0-20-generic dkms");
  CHECK(lines[2].rfind("# copy ", 0) == 0);
  CHECK(lines[5] == "dkms install -m toa-build -v 0.1.0 -k 4.15.0-20-generic");
  CHECK(lines[6] == "modprobe toa");
  CHECK(lines[7] == "# write /etc/modules-load.d/toa.conf (0644)");
}

TEST_CASE("cli deps/uninstall --dry-run on fixture roots", "[host][cli]") {
  auto deps = Cli({"deps", "--dry-run", "--root", kFixtures + "almalinux-9"});
  REQUIRE(deps.code == 0);
  CHECK(deps.out ==
        "dnf install -y epel-release\n"
        "dnf install -y gcc make elfutils-libelf-devel kernel-devel-5.14.0-362.8.1.el9_3.x86_64 dkms\n");
  auto un = Cli({"uninstall", "--dry-run", "--root", kFixtures + "almalinux-9"});
  REQUIRE(un.code == 0);
  CHECK(un.out.empty());  // nothing of ours there
}

TEST_CASE("cli status on a clean root says what to do", "[host][cli]") {
  auto r = Cli({"status", "--json", "--root", kFixtures + "debian-13"});
  CHECK(r.code == 1);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["ok"] == false);
  CHECK(j["modules"]["toa"]["installed"] == false);
  CHECK(r.err == "toa-build status: toa is not installed for kernel 6.12.57+deb13-amd64: run `toa-build install`\n");
}

TEST_CASE("cli selftest runs lbsim per module and reports per case", "[host][cli]") {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("host-selftest-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "lbsim") << "#!/bin/false\n";
  ::setenv("TOA_BUILD_BINARY_DIR", dir.c_str(), 1);
  const std::string lbsim = (dir / "lbsim").string();
  auto run = [&](std::vector<std::string> args, util::FakeProcessRunner& fake, std::string& out, std::string& err) {
    args.insert(args.begin(), "toa-build");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::ostringstream o, e;
    int code = cli::RunApplication(static_cast<int>(argv.size()), argv.data(), fake, o, e);
    out = o.str();
    err = e.str();
    return code;
  };
  util::FakeProcessRunner fake;
  fake.On({lbsim, "run", "--netns", "--no-load", "--module", "toa"}, 0,
          "LBSIM-RESULT {\"module\":\"toa\",\"case\":\"ipv4_client\",\"result\":\"pass\",\"detail\":\"\"}\n"
          "LBSIM-RESULT {\"module\":\"toa\",\"case\":\"ipv6_client\",\"result\":\"pass\",\"detail\":\"\"}\n"
          "LBSIM-DONE passed=2 failed=0\n");
  fake.On({lbsim, "run", "--netns", "--no-load", "--module", "uoa"}, 1,
          "LBSIM-RESULT {\"module\":\"uoa\",\"case\":\"ipv4_option\",\"result\":\"fail\",\"detail\":\"saw 198.51.100.2\"}\n"
          "LBSIM-DONE passed=0 failed=1\n");
  std::string out, err;
  CHECK(run({"selftest", "--module", "toa"}, fake, out, err) == 0);
  CHECK(out == "toa ipv4_client: pass\ntoa ipv6_client: pass\npassed 2, failed 0\n");
  CHECK(run({"selftest"}, fake, out, err) == 1);
  CHECK(out.find("uoa ipv4_option: fail (saw 198.51.100.2)\n") != std::string::npos);
  CHECK(out.find("passed 2, failed 1\n") != std::string::npos);
  CHECK(err == "toa-build selftest: uoa: lbsim exited 1: LBSIM-RESULT {\"module\":\"uoa\",\"case\":\"ipv4_option\","
               "\"result\":\"fail\",\"detail\":\"saw 198.51.100.2\"} | LBSIM-DONE passed=0 failed=1\n");
  fs::remove(dir / "lbsim");
  util::FakeProcessRunner none;
  CHECK(run({"selftest"}, none, out, err) == 1);
  CHECK(err.find("toa-build selftest: lbsim not found") == 0);
  ::unsetenv("TOA_BUILD_BINARY_DIR");
  fs::remove_all(dir);
}

TEST_CASE("cli: --root without --dry-run is refused (commands would hit this machine)", "[host][cli]") {
  for (const char* cmd : {"deps", "install", "uninstall"}) {
    auto r = Cli({cmd, "--root", kFixtures + "debian-12"});
    CHECK(r.code == 1);
    CHECK(r.err.find(std::string("toa-build ") + cmd + ": --root ") == 0);
    CHECK(r.err.find("add --dry-run, or run `chroot ") != std::string::npos);
  }
}
