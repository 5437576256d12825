// The host commands through the real CLI application: the contract SPEC
// fixes (JSON keys, one-line errors, exit codes, --dry-run output).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "host/artifacts.h"
#include "lab/matrix.h"

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
  CHECK(missing.code == 2);
  CHECK(missing.err ==
        "toa-build: --root /nonexistent/root is not a directory; pass the directory holding the system's /etc and /lib\n");
  auto module = Cli({"install", "--dry-run", "--module", "tcp", "--root", kFixtures + "debian-12"});
  CHECK(module.code != 0);
  CHECK(module.code == 2);
  CHECK(module.err == "toa-build: --module tcp is not one of toa, uoa, all; pass one of them\n");
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
    CHECK(r.code == 2);
    CHECK(r.err.find(std::string("toa-build: ") + cmd + " --root ") == 0);
    CHECK(r.err.find("; add --dry-run, or run `chroot ") != std::string::npos);
  }
}

namespace {

size_t Lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// A scratch copy of a fixture root.
struct RootCopy {
  std::filesystem::path dir;
  explicit RootCopy(const std::string& fixture) {
    static int n = 0;
    dir = std::filesystem::temp_directory_path() / ("cli-root-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::filesystem::copy(kFixtures + fixture, dir, std::filesystem::copy_options::recursive);
  }
  ~RootCopy() { std::filesystem::remove_all(dir); }
  void Write(const std::string& rel, const std::string& content) {
    std::filesystem::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << content;
  }
};

}  // namespace

TEST_CASE("cli: usage errors exit 2 with one line `toa-build: what; fix`, in every command", "[host][cli]") {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"install", "--dry-run", "--module", "foo", "--root", kFixtures + "debian-12"},
           {"selftest", "--module", "foo"},
           {"verify", "--module", "foo"},
           {"detect", "--bogus"},
           {"install", "--dry-run", "--trusted-sources", "10.0.0.0/99", "--root", kFixtures + "debian-12"},
           {"detect", "--kernel", "x;id", "--root", kFixtures + "debian-12"},
           {"status", "--root", "/nonexistent"},
       }) {
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    INFO(shown);
    auto r = Cli(args);
    CHECK(r.code == 2);
    CHECK(r.err.rfind("toa-build: ", 0) == 0);
    CHECK(Lines(r.err) == 1);
    CHECK(r.out.empty());
  }
}

TEST_CASE("cli: an unknown command is named, with the list of commands", "[host][cli]") {
  auto r = Cli({"instal"});
  CHECK(r.code == 2);
  CHECK(r.err == "toa-build: unknown command 'instal'; commands: verify, matrix, detect, deps, install, uninstall, "
                 "status, selftest, kernel (toa-build --help)\n");
  auto none = Cli({});
  CHECK(none.code == 2);
  CHECK(none.err.find("toa-build: a command is required; commands: verify, ") == 0);
}

TEST_CASE("cli: package says it is not in this version (even with --help)", "[host][cli]") {
  for (const char* cmd : {"package"}) {
    for (std::vector<std::string> args : {std::vector<std::string>{cmd, "--help"}, std::vector<std::string>{cmd}}) {
      auto r = Cli(args);
      CHECK(r.code == 2);
      CHECK(r.out.empty());
      CHECK(r.err.find(std::string("toa-build: `") + cmd + "` is not available in this version: ") == 0);
      CHECK(Lines(r.err) == 1);
    }
  }
  auto help = Cli({"--help"});
  CHECK(help.out.find("Not available in this version: package, fleet.") != std::string::npos);
}

TEST_CASE("cli: an empty --root is refused by every command (never plans against /)", "[host][cli]") {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"uninstall", "--dry-run", "--root", ""}, {"install", "--dry-run", "--root", ""},
           {"deps", "--dry-run", "--root", ""}, {"detect", "--root", ""}, {"status", "--root", ""}}) {
    INFO(args[0]);
    auto r = Cli(args);
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "toa-build: --root is empty; pass the directory holding the system (leave --root out for /)\n");
  }
}

TEST_CASE("cli: --kernel takes only kernel releases, and the error is short and escaped", "[host][cli]") {
  for (const std::string& bad : {std::string("-rf"), std::string(".."), std::string("x;id"), std::string("6.1.0\nid"),
                                 std::string(10240, 'a'), std::string("6.1\x1b[31m-red")}) {
    INFO(bad.substr(0, 40));
    for (const char* cmd : {"detect", "install", "deps", "status"}) {
      auto r = Cli({cmd, "--dry-run", "--kernel", bad, "--root", kFixtures + "debian-12"});
      if (std::string(cmd) == "detect" || std::string(cmd) == "status")
        r = Cli({cmd, "--kernel", bad, "--root", kFixtures + "debian-12"});
      CHECK(r.code == 2);
      CHECK(r.out.empty());  // nothing planned: no dkms or apt line with it
      CHECK(Lines(r.err) == 1);
      CHECK(r.err.size() < 400);
      CHECK(r.err.find('\x1b') == std::string::npos);
    }
  }
}

TEST_CASE("cli install --trusted-sources: the module's limits, checked before anything runs", "[host][cli]") {
  auto with = [](const std::string& value) {
    return Cli({"install", "--dry-run", "--trusted-sources", value, "--root", kFixtures + "debian-12"});
  };
  std::string v64, v65;
  for (int i = 0; i < 65; ++i) {
    std::string c = "10.0." + std::to_string(i) + ".0/24";
    if (i < 64) v64 += (v64.empty() ? "" : ",") + c;
    v65 += (v65.empty() ? "" : ",") + c;
  }
  CHECK(with(v64).code == 0);
  auto many = with(v65);
  CHECK(many.code == 2);
  CHECK(many.err == "toa-build: --trusted-sources: 65 entries, the modules take at most 64: merge them into wider "
                    "prefixes\n");
  auto host_bits = with("10.0.0.1/8");
  CHECK(host_bits.code == 2);
  CHECK(host_bits.err == "toa-build: --trusted-sources: `10.0.0.1/8` has host bits set: write 10.0.0.0/8\n");
  CHECK(with("2001:db8::1/32").err == "toa-build: --trusted-sources: `2001:db8::1/32` has host bits set: write 2001:db8::/32\n");
  for (const char* all : {"0.0.0.0/0", "::/0"}) {
    auto r = with(all);
    CHECK(r.code == 2);
    CHECK(r.err.find("trusts every address") != std::string::npos);
  }
  auto mapped = with("::ffff:10.0.0.0/104");
  CHECK(mapped.code == 2);
  CHECK(mapped.err.find("IPv4-mapped IPv6 prefix, which never matches") != std::string::npos);
  CHECK(with("10.0.0.0/8,").code == 2);
  CHECK(with("").code == 0);  // clears the filter, as --help says
  auto help = Cli({"install", "--help"});
  CHECK(help.out.find("--trusted-sources \"\" clears the filter") != std::string::npos);
}

TEST_CASE("cli: a corrupt state file is one line naming it, and nothing runs", "[host][cli]") {
  for (const char* state : {"{\"trusted_sources\": null}", "{\"build\": 7}", "{\"modules\": [1]}",
                            "{\"modules\": \"toa\"}", "{\"modules\": [\"../x\"]}", "{\"kernel\": \"x;id\"}",
                            "{\"trusted_sources\": \"0.0.0.0/0\"}", "[]", "not json"}) {
    INFO(state);
    RootCopy root("debian-12");
    root.Write("var/lib/toa-build/state.json", state);
    for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
             {"install", "--dry-run"}, {"uninstall", "--dry-run"}, {"status"}}) {
      INFO(args[0]);
      args.push_back("--root");
      args.push_back(root.dir.string());
      auto r = Cli(args);
      CHECK(r.code == 1);
      CHECK(Lines(r.err) == 1);
      CHECK(r.err.find("toa-build " + args[0] + ": the state file " + root.dir.string() +
                       "/var/lib/toa-build/state.json is corrupt (") == 0);
      CHECK(r.err.find("; nothing was changed; fix: remove it") != std::string::npos);
      if (args[0] != "status") CHECK(r.out.empty());
    }
  }
}

TEST_CASE("cli status: a kernel without module support says so", "[host][cli]") {
  RootCopy root("debian-13");
  root.Write("proc/version", "Linux version 6.12.57+deb13-amd64\n");
  auto r = Cli({"status", "--root", root.dir.string()});
  CHECK(r.code == 1);
  CHECK(r.err == "toa-build status: the running kernel has no loadable module support (no /proc/modules): TOA and "
                 "UOA cannot be loaded into it; boot a kernel built with CONFIG_MODULES=y (every distro kernel is)\n");
  root.Write("proc/modules", "");
  CHECK(Cli({"status", "--root", root.dir.string()}).err.find("toa is not installed") != std::string::npos);
}

TEST_CASE("cli detect/install: a kernel no distro ships has no header package", "[host][cli]") {
  auto r = Cli({"detect", "--json", "--root", kFixtures + "debian-12", "--kernel", "6.6.0-custom"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["header_package"].is_null());
  CHECK(j["header_package_reason"].get<std::string>().find("kernel 6.6.0-custom is not a kernel Debian ships") == 0);
  CHECK(j["packages"] == nlohmann::json{"gcc", "make", "openssl", "dkms"});
  auto inst = Cli({"install", "--dry-run", "--root", kFixtures + "debian-12", "--kernel", "6.6.0-custom"});
  CHECK(inst.code == 1);
  CHECK(inst.out.empty());
  CHECK(inst.err.find("toa-build install: step deps: the headers of kernel 6.6.0-custom (/lib/modules/6.6.0-custom/"
                      "build) are missing and kernel 6.6.0-custom is not a kernel Debian ships") == 0);
}

TEST_CASE("cli detect: Flatcar's header_package is null, with the reason", "[host][cli]") {
  auto r = Cli({"detect", "--json", "--root", kFixtures + "flatcar"});
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["header_package"].is_null());
  CHECK(j["header_package_reason"] ==
        "no package holds the headers: the OS ships the build tree in /lib/modules/6.6.54-flatcar/build, which the "
        "build container mounts");
}

TEST_CASE("cli detect/install: arm64 is refused with the reason, before any step", "[host][cli]") {
  auto d = Cli({"detect", "--json", "--root", kFixtures + "debian-12-arm64"});
  REQUIRE(d.code == 0);
  auto j = nlohmann::json::parse(d.out);
  CHECK(j["arch"] == "aarch64");
  CHECK(j["module_supported"] == false);
  CHECK(j["unsupported_reason"].get<std::string>().find("is arm64 (aarch64") != std::string::npos);
  auto i = Cli({"install", "--dry-run", "--root", kFixtures + "debian-12-arm64"});
  CHECK(i.code == 1);
  CHECK(i.out.empty());  // no apt-get, no dkms
  CHECK(i.err.find("toa-build install: step detect: kernel 6.1.0-56-arm64 is arm64 (aarch64, from the release's "
                   "suffix -arm64): TOA and UOA do not build there yet") == 0);
  CHECK(Lines(i.err) == 1);
}

TEST_CASE("cli: text from files is escaped and cut in errors", "[host][cli]") {
  RootCopy root("debian-12");
  root.Write("etc/os-release", "ID=\"" + std::string(1 << 20, 'x') + "\x1b]0;owned\x07\"\nVERSION_ID=12\n");
  auto r = Cli({"detect", "--root", root.dir.string()});
  CHECK(r.code == 1);
  CHECK(Lines(r.err) == 1);
  CHECK(r.err.size() < 400);
  CHECK(r.err.find('\x1b') == std::string::npos);
  CHECK(r.err.find("... (1048586 bytes)") != std::string::npos);
}

TEST_CASE("cli install --dry-run on CentOS 7 plans what the lab's centos-7 row proved", "[host][cli]") {
  // The row builds 3.10.0-1160.el7 from CentOS's tree and builds module/ by
  // Kbuild and by DKMS against it; the installer must plan that same DKMS
  // package (module/dkms.conf) from the same sources for that kernel.
  auto matrix = lab::LoadMatrix(lab::DefaultMatrixPath());
  REQUIRE(matrix.ok());
  auto row = lab::FindRow(*matrix, "centos-7");
  REQUIRE(row.ok());
  const std::string kver = row->source.Kver();
  std::ifstream conf(std::string(TOA_SOURCE_DIR) + "/module/dkms.conf");
  std::string line, version;
  while (std::getline(conf, line))
    if (line.rfind("PACKAGE_VERSION=", 0) == 0) version = line.substr(16);
  version.erase(std::remove(version.begin(), version.end(), '"'), version.end());
  REQUIRE_FALSE(version.empty());
  auto r = Cli({"install", "--dry-run", "--root", kFixtures + "centos-7"});
  REQUIRE(r.code == 0);
  CHECK(r.out.find("kernel-devel-" + kver) != std::string::npos);
  CHECK(r.out.find("# copy " + std::string(TOA_SOURCE_DIR) + "/module -> /usr/src/toa-build-" + version) !=
        std::string::npos);
  CHECK(r.out.find("dkms build -m toa-build -v " + version + " -k " + kver + "\n") != std::string::npos);
}
