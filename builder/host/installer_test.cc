#include "host/installer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/cidr.h"
#include "host/artifacts.h"

namespace fs = std::filesystem;

namespace {

const std::string kFixtures = std::string(TOA_SOURCE_DIR) + "/tests/fixtures/roots/";

const host::ProfileSet& Profiles() {
  static auto set = host::ProfileSet::Load(std::string(TOA_SOURCE_DIR) + "/distros/profiles");
  REQUIRE(set.ok());
  return set.value();
}

void Touch(const fs::path& p, const std::string& content = "") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int Mode(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Every file and directory under a root, with content, to prove "nothing left behind".
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> all;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    auto rel = fs::relative(it->path(), dir).string();
    all[rel] = it->is_regular_file() ? Slurp(it->path()) : "<dir>";
  }
  return all;
}

// A scratch copy of a fixture root plus a module source tree.
struct Sandbox {
  fs::path base;
  fs::path root;
  fs::path src;
  explicit Sandbox(const std::string& fixture) {
    static int n = 0;
    base = fs::temp_directory_path() / ("host-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(base);
    root = base / "root";
    src = base / "src";
    fs::create_directories(root);
    fs::copy(kFixtures + fixture, root, fs::copy_options::recursive);
    Touch(src / "dkms.conf", "PACKAGE_NAME=\"toa-build\"\nPACKAGE_VERSION=\"0.1.0\"\n");
    Touch(src / "Kbuild", "obj-m += toa/ uoa/\n");
    Touch(src / "toa/toa_main.c", "/* toa */\n");
  }
  ~Sandbox() { fs::remove_all(base); }
  // Tools present, headers present: deps has nothing to do.
  void InstallTools(const std::string& kernel) {
    for (const char* f : {"usr/bin/gcc", "usr/bin/make", "usr/bin/openssl", "usr/sbin/dkms", "usr/include/libelf.h"}) Touch(root / f);
    fs::create_directories(root / "var/lib/dkms");  // the dkms package's own folder
    Touch(root / ("lib/modules/" + kernel + "/build/Makefile"));
  }
  host::InstallOptions Options() const {
    host::InstallOptions o;
    o.source_dir = src.string();
    return o;
  }
};

// A fake world for Debian-style hosts: package installs drop the files they
// would, DKMS registers and installs, modprobe makes /sys/module/X.
void FakeDebianWorld(util::FakeProcessRunner& fake, const fs::path& root, const std::string& kernel) {
  const std::string dkms = "var/lib/dkms/toa-build/0.1.0";
  fake.On({"apt-get"}, 0, "ok");
  fake.On({"apt-get", "install"}, 0, "Setting up dkms", [root, kernel](const util::ProcessSpec&) {
    for (const char* f : {"usr/bin/gcc", "usr/bin/make", "usr/bin/openssl", "usr/sbin/dkms"}) Touch(root / f);
    fs::create_directories(root / "var/lib/dkms");
    Touch(root / ("lib/modules/" + kernel + "/build/Makefile"));
  });
  fake.On({"dkms", "add"}, 0, "Creating symlink", [root, dkms](const util::ProcessSpec&) {
    Touch(root / dkms / "source" / "dkms.conf");
  });
  fake.On({"dkms", "build"}, 0, "Building module", [root, dkms, kernel](const util::ProcessSpec&) {
    Touch(root / dkms / kernel / "x86_64/module/toa.ko");
  });
  fake.On({"dkms", "install"}, 0, "Installing", [root, kernel](const util::ProcessSpec&) {
    Touch(root / ("lib/modules/" + kernel + "/updates/dkms/toa.ko"));
    Touch(root / ("lib/modules/" + kernel + "/updates/dkms/uoa.ko"));
  });
  fake.On({"dkms", "remove"}, 0, "Deleting module", [root, kernel](const util::ProcessSpec&) {
    fs::remove_all(root / "var/lib/dkms/toa-build");
    fs::remove_all(root / ("lib/modules/" + kernel + "/updates"));
  });
  fake.On({"modprobe"}, 0, "", [root](const util::ProcessSpec& spec) {
    Touch(root / "sys/module" / spec.argv.back() / "refcnt", "0\n");
  });
  fake.On({"modprobe", "-r"}, 0, "", [root](const util::ProcessSpec& spec) {
    fs::remove_all(root / "sys/module" / spec.argv.back());
  });
}

std::vector<std::string> Plan(const std::string& fixture, const std::string& kernel = "",
                              std::optional<std::string> trusted = std::nullopt, std::string* error = nullptr,
                              std::string* src_out = nullptr) {
  Sandbox box(fixture);
  host::RootFs root(box.root.string());
  auto det = host::Detect(Profiles(), root, kernel);
  REQUIRE(det.ok());
  util::RecordingProcessRunner recorder;
  host::Executor exec(root, recorder, true);
  auto opts = box.Options();
  opts.trusted_sources = trusted;
  opts.lbsim = "/usr/lib/toa-build/lbsim";
  auto s = host::RunInstall(exec, det.value(), opts);
  if (error) *error = s ? "" : s.error().message;
  if (src_out) *src_out = box.src.string();
  // Dry run: the root is untouched.
  CHECK(Snapshot(box.root) == Snapshot(kFixtures + fixture));
  // Every command line the recorder saw is in the plan, in order.
  std::vector<std::string> commands;
  for (const auto& line : exec.lines())
    if (line[0] != '#' && line.rfind("rm ", 0) != 0) commands.push_back(line);
  std::vector<std::string> recorded;
  for (const auto& argv : recorder.commands()) recorded.push_back(util::FormatCommand(argv));
  CHECK(commands == recorded);
  return exec.lines();
}

}  // namespace

TEST_CASE("install --dry-run: Debian 12 (DKMS, modules-load.d)", "[host][plan]") {
  std::string src;
  auto lines = Plan("debian-12", "", std::string("100.125.0.0/16"), nullptr, &src);
  CHECK(lines == std::vector<std::string>{
                     "apt-get update",
                     "apt-get install -y --no-install-recommends gcc make openssl linux-headers-6.1.0-56-amd64 dkms",
                     "# copy " + src + " -> /usr/src/toa-build-0.1.0",
                     "dkms add -m toa-build -v 0.1.0",
                     "dkms build -m toa-build -v 0.1.0 -k 6.1.0-56-amd64",
                     "dkms install -m toa-build -v 0.1.0 -k 6.1.0-56-amd64",
                     "# write /etc/modprobe.d/toa-build.conf (0644)",
                     "modprobe toa",
                     "modprobe uoa",
                     "# write /etc/modules-load.d/toa.conf (0644)",
                     "# write /var/lib/toa-build/state.json (0644)",
                     "/usr/lib/toa-build/lbsim run --netns --no-load --module toa",
                     "/usr/lib/toa-build/lbsim run --netns --no-load --module uoa",
                 });
}

TEST_CASE("install --dry-run: CentOS 7 (vault, EPEL, DKMS, sysconfig-modules)", "[host][plan]") {
  std::string src;
  auto lines = Plan("centos-7", "", std::nullopt, nullptr, &src);
  CHECK(lines == std::vector<std::string>{
                     "# write /etc/yum.repos.d/toa-build-vault.repo (0644)",
                     "yum install -y --disablerepo=base,updates,extras epel-release",
                     "yum install -y --disablerepo=base,updates,extras gcc make kernel-devel-3.10.0-1160.el7.x86_64 dkms",
                     "# copy " + src + " -> /usr/src/toa-build-0.1.0",
                     "dkms add -m toa-build -v 0.1.0",
                     "dkms build -m toa-build -v 0.1.0 -k 3.10.0-1160.el7.x86_64",
                     "dkms install -m toa-build -v 0.1.0 -k 3.10.0-1160.el7.x86_64",
                     "modprobe toa",
                     "modprobe uoa",
                     "# write /etc/sysconfig/modules/toa.modules (0755)",
                     "# write /var/lib/toa-build/state.json (0644)",
                     "/usr/lib/toa-build/lbsim run --netns --no-load --module toa",
                     "/usr/lib/toa-build/lbsim run --netns --no-load --module uoa",
                 });
}

TEST_CASE("install --dry-run: Rocky 9 and RHEL 9 (EPEL by package or URL)", "[host][plan]") {
  auto rocky = Plan("rocky-9");
  REQUIRE(rocky.size() > 2);
  CHECK(rocky[0] == "dnf install -y epel-release");
  CHECK(rocky[1] == "dnf install -y gcc make elfutils-libelf-devel kernel-devel-5.14.0-362.8.1.el9_3.x86_64 dkms");
  auto rhel = Plan("rhel-9");
  CHECK(rhel[0] == "dnf install -y https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm");
  auto amzn = Plan("amzn-2");
  CHECK(amzn[0] == "amazon-linux-extras install -y epel");
  CHECK(amzn[1] == "yum install -y gcc make elfutils-libelf-devel kernel-devel-5.10.219-208.866.amzn2.x86_64 dkms");
}

TEST_CASE("install --dry-run: openSUSE 42.2 (archive, kbuild, kernel hook)", "[host][plan]") {
  std::string src;
  auto lines = Plan("opensuse-42.2", "", std::nullopt, nullptr, &src);
  const std::string k = "4.4.36-8-default";
  CHECK(lines == std::vector<std::string>{
                     "# write /etc/zypp/repos.d/toa-build-archive.repo (0644)",
                     "zypper --non-interactive install --from toa-build-archive gcc make kernel-default-devel",
                     "# copy " + src + " -> /usr/src/toa-build-0.1.0",
                     "make -C /lib/modules/" + k + "/build M=/usr/src/toa-build-0.1.0 modules",
                     "make -C /lib/modules/" + k +
                         "/build M=/usr/src/toa-build-0.1.0 INSTALL_MOD_DIR=extra/toa-build modules_install",
                     "depmod -a " + k,
                     "modprobe toa",
                     "modprobe uoa",
                     "# write /etc/modules-load.d/toa.conf (0644)",
                     "# write /etc/kernel/postinst.d/toa-build (0755)",
                     "# write /var/lib/toa-build/state.json (0644)",
                     "/usr/lib/toa-build/lbsim run --netns --no-load --module toa",
                     "/usr/lib/toa-build/lbsim run --netns --no-load --module uoa",
                 });
}

TEST_CASE("install --dry-run: Debian 8 (archive.debian.org through a private source list)", "[host][plan]") {
  auto lines = Plan("debian-8.2");
  const std::string args =
      "-o Dir::Etc::SourceList=/etc/toa-build/apt-archive.list -o Dir::Etc::SourceParts=/nonexistent "
      "-o Acquire::Check-Valid-Until=false";
  REQUIRE(lines.size() > 3);
  CHECK(lines[0] == "# write /etc/toa-build/apt-archive.list (0644)");
  CHECK(lines[1] == "apt-get " + args + " update");
  CHECK(lines[2] == "apt-get " + args + " install -y --no-install-recommends gcc make openssl linux-headers-3.16.0-4-amd64 dkms");
}

TEST_CASE("install --dry-run: Flatcar (container build, systemd unit)", "[host][plan]") {
  std::string src;
  auto lines = Plan("flatcar", "", std::string("10.0.0.0/8"), nullptr, &src);
  const std::string k = "6.6.54-flatcar";
  CHECK(lines == std::vector<std::string>{
                     "# copy " + src + " -> /opt/toa-build/src",
                     "# write /opt/toa-build/src/Containerfile (0644)",
                     "# write /opt/toa-build/src/container-build.sh (0755)",
                     "docker build -t toa-build-builder:" + k + " /opt/toa-build/src",
                     "docker run --rm -v /lib/modules:/lib/modules:ro -v /usr/src:/usr/src:ro -v "
                     "/opt/toa-build/modules:/out toa-build-builder:" + k + " " + k,
                     "insmod /opt/toa-build/modules/" + k + "/toa.ko trusted_sources=10.0.0.0/8",
                     "insmod /opt/toa-build/modules/" + k + "/uoa.ko trusted_sources=10.0.0.0/8",
                     "# write /etc/systemd/system/toa-build.service (0644)",
                     "systemctl daemon-reload",
                     "systemctl enable toa-build.service",
                     "# write /var/lib/toa-build/state.json (0644)",
                     "/usr/lib/toa-build/lbsim run --netns --no-load --module toa",
                     "/usr/lib/toa-build/lbsim run --netns --no-load --module uoa",
                 });
}

TEST_CASE("install --dry-run: Fedora CoreOS builds against its own kernel-devel", "[host][plan]") {
  auto lines = Plan("fedora-coreos-41");
  const std::string k = "6.11.5-300.fc41.x86_64";
  REQUIRE(lines.size() > 4);
  CHECK(lines[3] == "podman build -t toa-build-builder:" + k + " /opt/toa-build/src");
  CHECK(lines[4] == "podman run --rm -v /opt/toa-build/modules:/out toa-build-builder:" + k + " " + k);
}

TEST_CASE("install --dry-run: releases the modules do not support say what to do instead", "[host][plan]") {
  std::string error;
  auto centos6 = Plan("centos-6.8", "", std::nullopt, &error);
  CHECK(centos6.empty());
  CHECK(error.find("step detect: kernel 2.6.32 (CentOS 6)") == 0);
  CHECK(error.find("toa-build kernel --source DIR --install") != std::string::npos);
  Plan("sles-11.3", "", std::nullopt, &error);
  CHECK(error.find("upgrade to SLES 12 or later") != std::string::npos);
}

TEST_CASE("install --dry-run --module uoa --no-load", "[host][plan]") {
  Sandbox box("ubuntu-22.04");
  box.InstallTools("5.15.0-91-generic");
  host::RootFs root(box.root.string());
  auto det = host::Detect(Profiles(), root, "");
  REQUIRE(det.ok());
  util::RecordingProcessRunner recorder;
  host::Executor exec(root, recorder, true);
  auto opts = box.Options();
  opts.modules = {"uoa"};
  opts.no_load = true;
  opts.lbsim = "/x/lbsim";
  REQUIRE(host::RunInstall(exec, det.value(), opts).ok());
  CHECK(exec.lines() == std::vector<std::string>{
                            "# copy " + box.src.string() + " -> /usr/src/toa-build-0.1.0",
                            "dkms add -m toa-build -v 0.1.0",
                            "dkms build -m toa-build -v 0.1.0 -k 5.15.0-91-generic",
                            "dkms install -m toa-build -v 0.1.0 -k 5.15.0-91-generic",
                            "# write /etc/modules-load.d/toa.conf (0644)",
                            "# write /var/lib/toa-build/state.json (0644)",
                        });
}

TEST_CASE("autoload files, byte for byte", "[host][autoload]") {
  CHECK(host::RenderModulesLoad({"toa", "uoa"}) ==
        "# Written by toa-build install; removed by toa-build uninstall.\ntoa\nuoa\n");
  CHECK(host::RenderSysconfigModules({"toa"}) ==
        "#!/bin/sh\n"
        "# Written by toa-build install; removed by toa-build uninstall.\n"
        "# Loads the modules at boot when this kernel has them (rebuilt by DKMS on upgrades).\n"
        "/sbin/modinfo -F filename toa > /dev/null 2>&1\n"
        "if [ $? -eq 0 ]; then\n"
        "    /sbin/modprobe toa\n"
        "fi\n");
  CHECK(host::RenderModprobeOptions({"toa", "uoa"}, "100.125.0.0/16,2001:db8::/32") ==
        "# Written by toa-build install; removed by toa-build uninstall.\n"
        "options toa trusted_sources=100.125.0.0/16,2001:db8::/32\n"
        "options uoa trusted_sources=100.125.0.0/16,2001:db8::/32\n");
  auto hook = host::RenderKernelHook();
  CHECK(hook.rfind("#!/bin/sh\n", 0) == 0);
  CHECK(hook.find("make -C \"/lib/modules/$kver/build\" M=/usr/src/toa-build-0.1.0 INSTALL_MOD_DIR=extra/toa-build "
                  "modules_install\n") != std::string::npos);
  CHECK(hook.find("depmod -a \"$kver\"\n") != std::string::npos);
}

TEST_CASE("SUSE MODULES_LOADED_ON_BOOT: edit the one variable, keep the rest", "[host][autoload]") {
  const std::string before =
      "## Path: System/Kernel\n"
      "INITRD_MODULES=\"\"\n"
      "MODULES_LOADED_ON_BOOT=\"ipv6 bonding\"\n"
      "DOMU_INITRD_MODULES=\"xennet\"\n";
  const std::string after =
      "## Path: System/Kernel\n"
      "INITRD_MODULES=\"\"\n"
      "MODULES_LOADED_ON_BOOT=\"ipv6 bonding toa uoa\"\n"
      "DOMU_INITRD_MODULES=\"xennet\"\n";
  CHECK(host::EditSuseModulesOnBoot(before, {"toa", "uoa"}, true) == after);
  CHECK(host::EditSuseModulesOnBoot(after, {"toa", "uoa"}, true) == after);  // idempotent
  CHECK(host::EditSuseModulesOnBoot(after, {"toa", "uoa"}, false) ==
        "## Path: System/Kernel\nINITRD_MODULES=\"\"\nMODULES_LOADED_ON_BOOT=\"ipv6 bonding\"\n"
        "DOMU_INITRD_MODULES=\"xennet\"\n");
  CHECK(host::EditSuseModulesOnBoot("A=1\n", {"toa"}, true) ==
        "A=1\n## Type: string\n## Description: modules loaded at boot (toa-build added its own)\n"
        "MODULES_LOADED_ON_BOOT=\"toa\"\n");
}

TEST_CASE("CoreOS unit builds for %v, then loads", "[host][autoload]") {
  host::ContainerSpec spec{"docker", "docker.io/library/debian:bookworm-slim", "apt-get update", true};
  auto unit = host::RenderCoreosUnit(spec, {"toa"}, "10.0.0.0/8");
  CHECK(unit.find("ExecStartPre=/usr/bin/docker build -t toa-build-builder:%v /opt/toa-build/src\n") !=
        std::string::npos);
  CHECK(unit.find("ExecStart=/usr/sbin/insmod /opt/toa-build/modules/%v/toa.ko trusted_sources=10.0.0.0/8\n") !=
        std::string::npos);
  CHECK(unit.find("WantedBy=multi-user.target\n") != std::string::npos);
  auto recipe = host::RenderContainerfile(spec);
  CHECK(recipe.find("FROM docker.io/library/debian:bookworm-slim\nRUN apt-get update\nCOPY . /src\n") !=
        std::string::npos);
}

TEST_CASE("install for real on a Debian root: files, second run does nothing, uninstall leaves nothing",
          "[host][install]") {
  Sandbox box("debian-12");
  const std::string k = "6.1.0-56-amd64";
  auto pristine = Snapshot(box.root);
  host::RootFs root(box.root.string());
  auto det = host::Detect(Profiles(), root, "");
  REQUIRE(det.ok());
  util::FakeProcessRunner fake;
  FakeDebianWorld(fake, box.root, k);
  fake.On({"/x/lbsim"}, 0, "LBSIM-DONE passed=5 failed=0\n");
  auto opts = box.Options();
  opts.trusted_sources = "100.125.0.0/16";
  opts.lbsim = "/x/lbsim";
  {
    host::Executor exec(root, fake, false);
    auto s = host::RunInstall(exec, det.value(), opts);
    REQUIRE(s.ok());
  }
  CHECK(Slurp(box.root / "etc/modules-load.d/toa.conf") == host::RenderModulesLoad({"toa", "uoa"}));
  CHECK(Mode(box.root / "etc/modules-load.d/toa.conf") == 0644);
  CHECK(Slurp(box.root / "etc/modprobe.d/toa-build.conf") ==
        host::RenderModprobeOptions({"toa", "uoa"}, "100.125.0.0/16"));
  CHECK(Slurp(box.root / "usr/src/toa-build-0.1.0/dkms.conf") == Slurp(box.src / "dkms.conf"));
  CHECK(Slurp(box.root / "usr/src/toa-build-0.1.0/toa/toa_main.c") == "/* toa */\n");
  CHECK(fs::exists(box.root / "sys/module/toa"));
  auto status = host::CollectStatus(root, det.value()).value();
  CHECK(status.ok());
  CHECK(status.modules.at(0).module_file == "/lib/modules/" + k + "/updates/dkms/toa.ko");

  // Second install: no command, no write, fast.
  auto installed = Snapshot(box.root);
  util::FakeProcessRunner idle;  // no rules: any command would fail the install
  auto t0 = std::chrono::steady_clock::now();
  {
    host::Executor exec(root, idle, false);
    auto again = opts;
    again.trusted_sources.reset();
    auto s = host::RunInstall(exec, det.value(), again);
    REQUIRE(s.ok());
    CHECK(exec.lines().empty());
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  CHECK(idle.commands().empty());
  CHECK(Snapshot(box.root) == installed);
  // The same with the same --trusted-sources again.
  {
    host::Executor exec(root, idle, false);
    REQUIRE(host::RunInstall(exec, det.value(), opts).ok());
    CHECK(exec.lines().empty());
  }

  // Uninstall: back to the pristine root, apart from what deps installed.
  {
    host::Executor exec(root, fake, false);
    REQUIRE(host::RunUninstall(exec).ok());
    CHECK(exec.lines() == std::vector<std::string>{
                              "modprobe -r uoa",
                              "modprobe -r toa",
                              "dkms remove -m toa-build -v 0.1.0 --all",
                              "rm -f /etc/modules-load.d/toa.conf",
                              "rm -f /etc/modprobe.d/toa-build.conf",
                              "rm -rf /usr/src/toa-build-0.1.0",
                              "rm -rf /var/lib/toa-build",
                          });
  }
  auto left = Snapshot(box.root);
  for (const auto& [path, content] : left) {
    (void)content;
    bool from_fixture = pristine.count(path) > 0;
    bool from_deps = path.rfind("usr", 0) == 0 || path.rfind("lib/modules", 0) == 0 || path.rfind("sys", 0) == 0 ||
                     path.rfind("var", 0) == 0 || path == "etc/modules-load.d" || path == "etc/modprobe.d";
    INFO(path);
    CHECK((from_fixture || from_deps));
  }
  CHECK_FALSE(fs::exists(box.root / "usr/src/toa-build-0.1.0"));
  CHECK_FALSE(fs::exists(box.root / "var/lib/dkms/toa-build"));
  CHECK_FALSE(fs::exists(box.root / "etc/modules-load.d/toa.conf"));
  // A second uninstall has nothing to do.
  host::Executor again(root, idle, false);
  REQUIRE(host::RunUninstall(again).ok());
  CHECK(again.lines().empty());
}

TEST_CASE("install for real on CentOS 7: the vendor-style boot script, executable", "[host][install]") {
  Sandbox box("centos-7");
  const std::string k = "3.10.0-1160.el7.x86_64";
  box.InstallTools(k);
  host::RootFs root(box.root.string());
  auto det = host::Detect(Profiles(), root, "");
  REQUIRE(det.ok());
  util::FakeProcessRunner fake;
  FakeDebianWorld(fake, box.root, k);  // DKMS and modprobe behave the same
  fake.On({"dkms", "install"}, 0, "", [&](const util::ProcessSpec&) {
    Touch(box.root / ("lib/modules/" + k + "/extra/toa.ko.xz"));
    Touch(box.root / ("lib/modules/" + k + "/extra/uoa.ko.xz"));
  });
  host::Executor exec(root, fake, false);
  REQUIRE(host::RunInstall(exec, det.value(), box.Options()).ok());
  CHECK(Slurp(box.root / "etc/sysconfig/modules/toa.modules") == host::RenderSysconfigModules({"toa", "uoa"}));
  CHECK(Mode(box.root / "etc/sysconfig/modules/toa.modules") == 0755);
  CHECK_FALSE(fs::exists(box.root / "etc/modules-load.d/toa.conf"));
  CHECK(host::FindModuleFile(root, k, "uoa") == "/lib/modules/" + k + "/extra/uoa.ko.xz");
}

namespace {

// Runs a failing install on a root with tools and headers in place, and
// checks the root is exactly as before.
std::string FailingInstall(const std::string& fixture, const std::string& kernel,
                           const std::function<void(util::FakeProcessRunner&, const fs::path&)>& breakit,
                           util::FakeProcessRunner* out_fake = nullptr, bool tools = true) {
  Sandbox box(fixture);
  if (tools) box.InstallTools(kernel);
  host::RootFs root(box.root.string());
  util::FakeProcessRunner fake;
  FakeDebianWorld(fake, box.root, kernel);
  breakit(fake, box.root);
  auto before = Snapshot(box.root);
  auto det = host::Detect(Profiles(), root, kernel);
  REQUIRE(det.ok());
  host::Executor exec(root, fake, false);
  auto opts = box.Options();
  opts.trusted_sources = "100.125.0.0/16";
  auto s = host::RunInstall(exec, det.value(), opts);
  REQUIRE_FALSE(s.ok());
  // Nothing half-installed: the root is as it was (sys/ is the kernel's view).
  auto after = Snapshot(box.root);
  after.erase("sys");
  after.erase("sys/module");
  // The one thing a failed run keeps: the build log it points to.
  for (const char* kept : {"var/log/toa-build/make-" , "var/log/toa-build", "var/log"})
    for (auto it = after.begin(); it != after.end();)
      it = (it->first.rfind(kept, 0) == 0 && !before.count(it->first)) ? after.erase(it) : std::next(it);
  for (const auto& [path, content] : after) {
    INFO("left behind or changed: " << path);
    CHECK((before.count(path) && before.at(path) == content));
  }
  CHECK(after.size() == before.size());
  if (out_fake) *out_fake = fake;
  CHECK(s.error().message.find('\n') == std::string::npos);
  return s.error().message;
}

}  // namespace

TEST_CASE("failure: DKMS build fails -> tail of make.log, dkms remove, nothing left", "[host][failure]") {
  const std::string k = "6.1.0-56-amd64";
  util::FakeProcessRunner fake;
  auto msg = FailingInstall("debian-12", k, [&](util::FakeProcessRunner& f, const fs::path& root) {
    f.On({"dkms", "build"}, 10, "Error! Bad return status for module build", [root](const util::ProcessSpec&) {
      Touch(root / "var/lib/dkms/toa-build/0.1.0/build/make.log",
            "make -C /lib/modules/6.1.0-56-amd64/build\n"
            "toa/toa_main.c:42:1: error: unknown type name 'foo'\n"
            "make[1]: *** [toa_main.o] Error 1\n");
    });
  }, &fake);
  CHECK(msg.find("step dkms build: the modules did not build for 6.1.0-56-amd64") == 0);
  // The compiler's error, not make's noise after it; the log is kept.
  CHECK(msg.find("6.1.0-56-amd64: toa/toa_main.c:42:1: error: unknown type name 'foo' (full log: "
                 "/var/log/toa-build/make-6.1.0-56-amd64.log)") != std::string::npos);
  bool removed = false;
  for (const auto& argv : fake.commands())
    removed = removed || util::FormatCommand(argv) == "dkms remove -m toa-build -v 0.1.0 --all";
  CHECK(removed);
  for (const auto& argv : fake.commands()) CHECK(argv[0] != "modprobe");
}

TEST_CASE("failure: Secure Boot rejects the module -> MOK steps, unloaded, nothing left", "[host][failure]") {
  util::FakeProcessRunner fake;
  auto msg = FailingInstall("debian-12", "6.1.0-56-amd64", [](util::FakeProcessRunner& f, const fs::path&) {
    f.On({"modprobe", "uoa"}, 1, "modprobe: ERROR: could not insert 'uoa': Key was rejected by service\n");
  }, &fake);
  CHECK(msg.find("step load: the kernel refused uoa") == 0);
  CHECK(msg.find("Key was rejected by service") != std::string::npos);
  CHECK(msg.find("mokutil --import /var/lib/dkms/mok.pub") != std::string::npos);
  CHECK(msg.find("Enroll MOK") != std::string::npos);
  // toa had loaded: the rollback unloaded it.
  std::vector<std::string> cmds;
  for (const auto& argv : fake.commands()) cmds.push_back(util::FormatCommand(argv));
  CHECK(std::find(cmds.begin(), cmds.end(), "modprobe -r toa") != cmds.end());
}

TEST_CASE("failure: Ubuntu names its own MOK key", "[host][failure]") {
  auto msg = FailingInstall("ubuntu-24.04", "6.8.0-31-generic", [](util::FakeProcessRunner& f, const fs::path&) {
    f.On({"modprobe", "toa"}, 1, "modprobe: ERROR: could not insert 'toa': Key was rejected by service\n");
  });
  CHECK(msg.find("mokutil --import /var/lib/shim-signed/mok/MOK.der") != std::string::npos);
}

TEST_CASE("failure: headers gone after a kernel upgrade without reboot", "[host][failure]") {
  // Running 6.1.0-56, a newer 6.1.0-60 installed; the old headers are gone from the mirror.
  auto msg = FailingInstall("debian-12", "6.1.0-56-amd64", [](util::FakeProcessRunner& f, const fs::path& root) {
    fs::create_directories(root / "lib/modules/6.1.0-60-amd64");
    f.On({"apt-get", "install"}, 100,
         "Reading package lists...\nE: Unable to locate package linux-headers-6.1.0-56-amd64\n"
         "E: Couldn't find any package by glob 'linux-headers-6.1.0-56-amd64'\n");
  }, nullptr, false);
  CHECK(msg.find("step deps: the headers of kernel 6.1.0-56-amd64") == 0);
  CHECK(msg.find("upgraded to 6.1.0-60-amd64 but not rebooted: reboot into it") != std::string::npos);
  CHECK(msg.find("install `linux-headers-6.1.0-56-amd64`") != std::string::npos);
}

TEST_CASE("failure: package repositories unreachable", "[host][failure]") {
  auto msg = FailingInstall("debian-12", "6.1.0-56-amd64", [](util::FakeProcessRunner& f, const fs::path&) {
    f.On({"apt-get", "update"}, 100,
         "Err:1 http://deb.debian.org/debian bookworm InRelease\n"
         "  Temporary failure resolving 'deb.debian.org'\n");
  }, nullptr, false);
  CHECK(msg.find("step deps: the package repositories are unreachable") == 0);
  CHECK(msg.find("Temporary failure resolving") != std::string::npos);
  CHECK(msg.find("check the network, proxy and repository configuration") != std::string::npos);
}

TEST_CASE("failure: unreachable on an archived release names the archive", "[host][failure]") {
  auto msg = FailingInstall("centos-7", "3.10.0-1160.el7.x86_64", [](util::FakeProcessRunner& f, const fs::path&) {
    f.On({"yum"}, 1, "Could not retrieve mirrorlist http://mirrorlist.centos.org/?release=7 error was\n"
                     "14: curl#6 - \"Could not resolve host: mirrorlist.centos.org\"\n");
  }, nullptr, false);
  CHECK(msg.find("step deps: the package repositories are unreachable") == 0);
  CHECK(msg.find("archived at https://vault.centos.org/7.9.2009/") != std::string::npos);
}

TEST_CASE("failure: the self-test fails -> the install is undone", "[host][failure]") {
  Sandbox box("debian-12");
  box.InstallTools("6.1.0-56-amd64");
  auto before = Snapshot(box.root);
  host::RootFs root(box.root.string());
  auto det = host::Detect(Profiles(), root, "");
  util::FakeProcessRunner fake;
  FakeDebianWorld(fake, box.root, "6.1.0-56-amd64");
  fake.On({"/x/lbsim"}, 1, "LBSIM-RESULT {\"module\":\"toa\",\"case\":\"ipv4_client\",\"result\":\"fail\"}\n"
                           "LBSIM-DONE passed=0 failed=1\n");
  auto opts = box.Options();
  opts.lbsim = "/x/lbsim";
  host::Executor exec(root, fake, false);
  auto s = host::RunInstall(exec, det.value(), opts);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("step selftest: toa did not recover client addresses") == 0);
  auto after = Snapshot(box.root);
  after.erase("sys");
  after.erase("sys/module");
  CHECK(after == before);
}

TEST_CASE("install: new sources replace the old DKMS build and reload the modules", "[host][install]") {
  Sandbox box("debian-12");
  const std::string k = "6.1.0-56-amd64";
  box.InstallTools(k);
  host::RootFs root(box.root.string());
  auto det = host::Detect(Profiles(), root, "");
  util::FakeProcessRunner fake;
  FakeDebianWorld(fake, box.root, k);
  {
    host::Executor exec(root, fake, false);
    REQUIRE(host::RunInstall(exec, det.value(), box.Options()).ok());
  }
  Touch(box.src / "toa/toa_main.c", "/* toa v2 */\n");
  host::Executor exec(root, fake, false);
  REQUIRE(host::RunInstall(exec, det.value(), box.Options()).ok());
  CHECK(exec.lines() == std::vector<std::string>{
                            "# copy " + box.src.string() + " -> /usr/src/toa-build-0.1.0",
                            "dkms remove -m toa-build -v 0.1.0 --all",
                            "dkms add -m toa-build -v 0.1.0",
                            "dkms build -m toa-build -v 0.1.0 -k " + k,
                            "dkms install -m toa-build -v 0.1.0 -k " + k,
                            "modprobe -r toa",
                            "modprobe toa",
                            "modprobe -r uoa",
                            "modprobe uoa",
                        });
  CHECK(Slurp(box.root / "usr/src/toa-build-0.1.0/toa/toa_main.c") == "/* toa v2 */\n");
}

TEST_CASE("install: a new kernel (after an upgrade) builds for it only", "[host][install]") {
  Sandbox box("debian-12");
  box.InstallTools("6.1.0-56-amd64");
  host::RootFs root(box.root.string());
  util::FakeProcessRunner fake;
  FakeDebianWorld(fake, box.root, "6.1.0-56-amd64");
  {
    auto det = host::Detect(Profiles(), root, "6.1.0-56-amd64");
    host::Executor exec(root, fake, false);
    REQUIRE(host::RunInstall(exec, det.value(), box.Options()).ok());
  }
  box.InstallTools("6.1.0-60-amd64");
  FakeDebianWorld(fake, box.root, "6.1.0-60-amd64");
  fs::remove_all(box.root / "sys/module");  // rebooted into the new kernel
  auto det = host::Detect(Profiles(), root, "6.1.0-60-amd64");
  host::Executor exec(root, fake, false);
  REQUIRE(host::RunInstall(exec, det.value(), box.Options()).ok());
  CHECK(exec.lines() == std::vector<std::string>{
                            "dkms build -m toa-build -v 0.1.0 -k 6.1.0-60-amd64",
                            "dkms install -m toa-build -v 0.1.0 -k 6.1.0-60-amd64",
                            "modprobe toa",
                            "modprobe uoa",
                            "# write /var/lib/toa-build/state.json (0644)",
                        });
}

TEST_CASE("--module and --trusted-sources are checked", "[host][options]") {
  CHECK(host::ParseModules("all").value() == std::vector<std::string>{"toa", "uoa"});
  CHECK(host::ParseModules("uoa").value() == std::vector<std::string>{"uoa"});
  CHECK(host::ParseModules("tcp").error().message == "--module tcp is not one of toa, uoa, all; pass one of them");
  // The limit is the module's own.
  CHECK(host::kMaxTrustedSources == TB_CIDR_MAX);
  CHECK(host::ValidateTrustedSources("100.125.0.0/16,2001:db8::/32,192.0.2.7").ok());
  auto bad = host::ValidateTrustedSources("100.125.0.0/33");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("`100.125.0.0/33` is not") != std::string::npos);
  CHECK_FALSE(host::ValidateTrustedSources("10.0.0.0/8,nonsense").ok());
}

TEST_CASE("CoreOS: install builds in a container and loads; uninstall takes it all away", "[host][install]") {
  Sandbox box("flatcar");
  const std::string k = "6.6.54-flatcar";
  auto pristine = Snapshot(box.root);
  host::RootFs root(box.root.string());
  auto det = host::Detect(Profiles(), root, "");
  REQUIRE(det.ok());
  util::FakeProcessRunner fake;
  fake.On({"docker", "build"}, 0, "Successfully built");
  fake.On({"docker", "run"}, 0, "", [&](const util::ProcessSpec&) {
    Touch(box.root / ("opt/toa-build/modules/" + k + "/toa.ko"));
    Touch(box.root / ("opt/toa-build/modules/" + k + "/uoa.ko"));
  });
  fake.On({"insmod"}, 0, "", [&](const util::ProcessSpec& spec) {
    Touch(box.root / "sys/module" / fs::path(spec.argv[1]).stem() / "refcnt");
  });
  fake.On({"rmmod"}, 0, "", [&](const util::ProcessSpec& spec) { fs::remove_all(box.root / "sys/module" / spec.argv[1]); });
  fake.On({"systemctl"}, 0);
  fake.On({"systemctl", "enable"}, 0, "", [&](const util::ProcessSpec&) {
    Touch(box.root / "etc/systemd/system/multi-user.target.wants/toa-build.service");
  });
  fake.On({"systemctl", "disable"}, 0, "", [&](const util::ProcessSpec&) {
    fs::remove(box.root / "etc/systemd/system/multi-user.target.wants/toa-build.service");
  });
  {
    host::Executor exec(root, fake, false);
    REQUIRE(host::RunInstall(exec, det.value(), box.Options()).ok());
  }
  CHECK(Slurp(box.root / "etc/systemd/system/toa-build.service") ==
        host::RenderCoreosUnit(*det->profile.container, {"toa", "uoa"}, ""));
  CHECK(Slurp(box.root / "opt/toa-build/src/Containerfile") == host::RenderContainerfile(*det->profile.container));
  CHECK(host::CollectStatus(root, det.value()).value().ok());
  {
    host::Executor exec(root, fake, false);
    REQUIRE(host::RunInstall(exec, det.value(), box.Options()).ok());
    CHECK(exec.lines().empty());
  }
  {
    host::Executor exec(root, fake, false);
    REQUIRE(host::RunUninstall(exec).ok());
    CHECK(exec.lines() == std::vector<std::string>{
                              "rmmod uoa",
                              "rmmod toa",
                              "systemctl disable toa-build.service",
                              "rm -f /etc/systemd/system/toa-build.service",
                              "systemctl daemon-reload",
                              "rm -rf /opt/toa-build",
                              "rm -rf /var/lib/toa-build",
                          });
  }
  for (const auto& [path, content] : Snapshot(box.root)) {
    (void)content;
    INFO(path);
    CHECK((pristine.count(path) || path.rfind("sys", 0) == 0 || path.rfind("etc/systemd", 0) == 0 ||
           path == "opt" || path == "var" || path == "var/lib"));
  }
}

TEST_CASE("uninstall: SUSE MODULES_LOADED_ON_BOOT gets its old value back", "[host][install]") {
  Sandbox box("sles-11.3");
  const std::string before = "INITRD_MODULES=\"\"\nMODULES_LOADED_ON_BOOT=\"ipv6\"\n";
  Touch(box.root / "etc/sysconfig/kernel", host::EditSuseModulesOnBoot(before, {"toa", "uoa"}, true));
  fs::permissions(box.root / "etc/sysconfig/kernel", fs::perms(0644));
  host::RootFs root(box.root.string());
  util::FakeProcessRunner idle;
  host::Executor exec(root, idle, false);
  REQUIRE(host::RunUninstall(exec).ok());
  CHECK(exec.lines() == std::vector<std::string>{"# write /etc/sysconfig/kernel (0644)"});
  CHECK(Slurp(box.root / "etc/sysconfig/kernel") == before);
}

TEST_CASE("install --dry-run with the kbuild strategy on an installed host does nothing", "[host][install]") {
  Sandbox box("sles-15");
  const std::string k = "5.14.21-150500.55.39-default";
  box.InstallTools(k);
  host::RootFs root(box.root.string());
  auto det = host::Detect(Profiles(), root, "");
  util::FakeProcessRunner fake;
  fake.On({"make"}, 0, "", [&](const util::ProcessSpec& spec) {
    if (spec.argv.back() == "modules_install")
      for (const char* m : {"toa", "uoa"}) Touch(box.root / ("lib/modules/" + k + "/extra/toa-build/" + m + "/" + m + ".ko"));
  });
  fake.On({"depmod"}, 0);
  fake.On({"modprobe"}, 0, "", [&](const util::ProcessSpec& spec) { Touch(box.root / "sys/module" / spec.argv[1] / "x"); });
  {
    host::Executor exec(root, fake, false);
    REQUIRE(host::RunInstall(exec, det.value(), box.Options()).ok());
  }
  CHECK(host::FindModuleFile(root, k, "uoa") == "/lib/modules/" + k + "/extra/toa-build/uoa/uoa.ko");
  CHECK(Slurp(box.root / "etc/kernel/postinst.d/toa-build") == host::RenderKernelHook());
  CHECK(Mode(box.root / "etc/kernel/postinst.d/toa-build") == 0755);
  // Build outputs next to the sources do not count as a change.
  Touch(box.root / "usr/src/toa-build-0.1.0/toa/toa.o", "obj");
  util::RecordingProcessRunner recorder;
  host::Executor plan(root, recorder, true);
  REQUIRE(host::RunInstall(plan, det.value(), box.Options()).ok());
  CHECK(plan.lines().empty());
  CHECK(recorder.commands().empty());
}

TEST_CASE("kbuild on Debian hooks both the kernel and the header packages", "[host][plan]") {
  Sandbox box("debian-12");
  box.InstallTools("6.1.0-56-amd64");
  fs::create_directories(box.base / "profiles");
  for (const auto& e : fs::directory_iterator(std::string(TOA_SOURCE_DIR) + "/distros/profiles"))
    fs::copy(e.path(), box.base / "profiles" / e.path().filename());
  // The same facts with the kbuild strategy (a host where DKMS cannot be had).
  auto debian = Slurp(box.base / "profiles/debian.yaml");
  auto at = debian.find("  build: dkms\n");
  REQUIRE(at != std::string::npos);
  debian.replace(at, 13, "  build: kbuild\n");
  std::ofstream(box.base / "profiles/debian.yaml") << debian;
  auto set = host::ProfileSet::Load((box.base / "profiles").string());
  REQUIRE(set.ok());
  host::RootFs root(box.root.string());
  auto det = host::Detect(set.value(), root, "");
  REQUIRE(det.ok());
  REQUIRE(det->profile.build == "kbuild");
  util::RecordingProcessRunner recorder;
  host::Executor exec(root, recorder, true);
  auto opts = box.Options();
  opts.no_load = true;
  REQUIRE(host::RunInstall(exec, det.value(), opts).ok());
  CHECK(exec.lines() == std::vector<std::string>{
                            "# copy " + box.src.string() + " -> /usr/src/toa-build-0.1.0",
                            "make -C /lib/modules/6.1.0-56-amd64/build M=/usr/src/toa-build-0.1.0 modules",
                            "make -C /lib/modules/6.1.0-56-amd64/build M=/usr/src/toa-build-0.1.0 "
                            "INSTALL_MOD_DIR=extra/toa-build modules_install",
                            "depmod -a 6.1.0-56-amd64",
                            "# write /etc/modules-load.d/toa.conf (0644)",
                            "# write /etc/kernel/postinst.d/toa-build (0755)",
                            "# write /etc/kernel/header_postinst.d/toa-build (0755)",
                            "# write /var/lib/toa-build/state.json (0644)",
                        });
}


TEST_CASE("failure: dnf and zypper say the same things their own way", "[host][failure]") {
  auto dnf = FailingInstall("rocky-9", "5.14.0-362.8.1.el9_3.x86_64", [](util::FakeProcessRunner& f, const fs::path&) {
    f.On({"dnf"}, 1, "Last metadata expiration check: 0:01:02 ago.\n"
                     "No match for argument: kernel-devel-5.14.0-362.8.1.el9_3.x86_64\n"
                     "Error: Unable to find a match: kernel-devel-5.14.0-362.8.1.el9_3.x86_64\n");
  }, nullptr, false);
  CHECK(dnf.find("step deps: the headers of kernel 5.14.0-362.8.1.el9_3.x86_64") == 0);
  CHECK(dnf.find("install `kernel-devel-5.14.0-362.8.1.el9_3.x86_64`") != std::string::npos);
  auto zypper = FailingInstall("sles-15", "5.14.21-150500.55.39-default", [](util::FakeProcessRunner& f, const fs::path&) {
    f.On({"zypper"}, 4, "Problem retrieving files from 'SLE-Module-Basesystem15-SP5-Updates'.\n"
                        "Download (curl) error for 'https://updates.suse.com/...': Could not resolve host\n");
  }, nullptr, false);
  CHECK(zypper.find("step deps: the package repositories are unreachable") == 0);
}

TEST_CASE("install/uninstall for real: a corrupt state file changes nothing, runs nothing", "[host][failure]") {
  for (const char* state : {"{\"trusted_sources\": null}", "{\"build\": 7}", "{\"modules\": [1]}"}) {
    INFO(state);
    Sandbox box("debian-12");
    box.InstallTools("6.1.0-56-amd64");
    Touch(box.root / "var/lib/toa-build/state.json", state);
    Touch(box.root / "sys/module/toa/refcnt", "0\n");  // loaded: uninstall would unload it
    auto before = Snapshot(box.root);
    host::RootFs root(box.root.string());
    auto det = host::Detect(Profiles(), root, "");
    REQUIRE(det.ok());
    util::FakeProcessRunner fake;
    FakeDebianWorld(fake, box.root, "6.1.0-56-amd64");
    {
      host::Executor exec(root, fake, false);
      auto s = host::RunInstall(exec, det.value(), box.Options());
      REQUIRE_FALSE(s.ok());
      CHECK(s.error().message.find("/var/lib/toa-build/state.json is corrupt (") != std::string::npos);
    }
    {
      host::Executor exec(root, fake, false);
      CHECK_FALSE(host::RunUninstall(exec).ok());
    }
    CHECK_FALSE(host::CollectStatus(root, det.value()).ok());
    CHECK(fake.commands().empty());
    CHECK(Snapshot(box.root) == before);
  }
}

TEST_CASE("state file: every key checked as a value", "[host][state]") {
  auto ok = host::ParseInstallState(
      "{\"build\":\"dkms\",\"autoload\":\"modules-load.d\",\"kernel\":\"6.1.0-56-amd64\",\"modules\":[\"toa\",\"uoa\"],"
      "\"trusted_sources\":\"100.125.0.0/16\"}");
  REQUIRE(ok.ok());
  CHECK(ok->trusted_sources == "100.125.0.0/16");
  CHECK(ok->modules == std::vector<std::string>{"toa", "uoa"});
  CHECK(host::ParseInstallState("{}").ok());
  CHECK(host::ParseInstallState("{\"trusted_sources\": null}").error().message == "`trusted_sources` is null, not a string");
  CHECK(host::ParseInstallState("{\"build\": 7}").error().message == "`build` is number, not a string");
  CHECK(host::ParseInstallState("{\"modules\": [1]}").error().message == "`modules` holds 1, not \"toa\" or \"uoa\"");
  CHECK(host::ParseInstallState("[1]").error().message == "is not a JSON object");
}

TEST_CASE("module/dkms.conf: DKMS's own test takes x86_64 and skips arm64", "[host][dkms]") {
  // dkms sources dkms.conf with bash and tests [[ $arch =~ $BUILD_EXCLUSIVE_ARCH ]].
  util::SystemProcessRunner runner;
  util::ProcessSpec spec;
  spec.argv = {"bash", "-c",
               "set -u; kernel_source_dir=/k; dkms_tree=/t; . \"$1\"; [[ -n \"${BUILD_EXCLUSIVE_ARCH:-}\" ]] || exit 2; "
               "[[ x86_64 =~ $BUILD_EXCLUSIVE_ARCH ]] || exit 3; [[ aarch64 =~ $BUILD_EXCLUSIVE_ARCH ]] && exit 4; "
               "[[ arm64 =~ $BUILD_EXCLUSIVE_ARCH ]] && exit 5; "
               "echo \"$PACKAGE_NAME $PACKAGE_VERSION ${BUILT_MODULE_NAME[*]} $AUTOINSTALL\"",
               "bash", std::string(TOA_SOURCE_DIR) + "/module/dkms.conf"};
  spec.timeout = std::chrono::seconds(20);
  auto r = runner.Run(spec);
  REQUIRE(r.ok());
  INFO(r->output);
  CHECK(r->exit_code == 0);
  CHECK(r->output == "toa-build 0.1.0 toa uoa yes\n");
}
