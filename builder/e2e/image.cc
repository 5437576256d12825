#include "e2e/image.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>
#include <filesystem>
#include <set>

#include "host/profile.h"
#include "host/rootfs.h"
#include "lab/cache.h"
#include "lab/paths.h"
#include "util/fs.h"
#include "util/strings.h"

namespace e2e {

namespace fs = std::filesystem;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

// Bumped when the way images are made changes.
const char* kImageFormat = "2";

using util::Join;

util::Result<util::ProcessResult> Host(util::ProcessRunner& runner, std::vector<std::string> argv,
                                       seconds timeout, const std::string& step, const std::string& cwd = "") {
  util::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = timeout;
  spec.cwd = cwd;
  return runner.RunChecked(spec, step);
}

std::string GuestUnit() {
  return std::string(
             "# toa-build end-to-end test: runs the stage named on the kernel command line,\n"
             "# prints its report on the console and powers the VM off.\n"
             "[Unit]\n"
             "Description=toa-build end-to-end test stage\n"
             "After=multi-user.target\n"
             "RequiresMountsFor=") +
         kPayloadMount +
         "\n"
         "ConditionKernelCommandLine=toa_e2e.stage\n"
         "SuccessAction=poweroff-force\n"
         "FailureAction=poweroff-force\n\n"
         "[Service]\n"
         "Type=oneshot\n"
         "ExecStart=" +
         kPayloadMount +
         "/bin/toa-e2e guest\n"
         "StandardOutput=journal+console\n"
         "StandardError=journal+console\n"
         "TimeoutStartSec=infinity\n\n"
         "[Install]\n"
         "WantedBy=multi-user.target\n";
}

// Units that would only slow a TCG guest down or touch the network.
const std::vector<std::string> kMasked = {"apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                                          "fstrim.timer", "man-db.timer", "systemd-timesyncd.service"};

uintmax_t TreeBytes(const std::string& dir) {
  uintmax_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2) && !it->is_symlink(e2)) total += (it->file_size(e2) + 4095) / 4096 * 4096;
    else total += 4096;
  }
  return total;
}

}  // namespace

std::vector<std::string> UpgradePackages(const ImageSpec& spec, bool pinned) {
  std::vector<std::string> out;
  for (const auto& t : spec.upgrade_row.image_packages) out.push_back(lab::ExpandKver(t, spec.upgrade_kver));
  out.push_back(lab::ExpandKver(spec.upgrade_row.headers_package, spec.upgrade_kver));
  if (pinned)
    for (auto& p : out) p += "=" + spec.upgrade_version;
  return out;
}

std::string BuildSources(const ImageSpec& spec) {
  std::vector<std::string> lines;
  std::set<std::string> seen;
  auto add = [&](const std::string& line) {
    if (seen.insert(line).second) lines.push_back(line);
  };
  add("deb " + spec.row.mirror + " " + spec.release.release + " main");
  for (const auto* row : {&spec.row, &spec.upgrade_row}) {
    add("deb " + row->mirror + " " + row->suite + " main");
    if (!row->security_suite.empty()) add("deb " + row->security_mirror + " " + row->security_suite + " main");
  }
  return "# Written by toa-e2e while building the image; replaced by the local repository.\n" +
         Join(lines, "\n") + "\n";
}

std::string LocalSources() {
  return std::string("# The image has no network: its only source is this local repository.\n") +
         "deb [trusted=yes] file:" + kRepoDir + " ./\n";
}

std::vector<std::pair<std::string, std::string>> ImageFiles() {
  return {
      {"/etc/fstab", std::string("/dev/vda / ext4 rw,errors=remount-ro 0 1\n/dev/vdb ") + kPayloadMount +
                         " ext4 ro,nofail 0 0\n"},
      {"/etc/hostname", "toa-e2e\n"},
      {"/etc/apt/apt.conf.d/90toa-e2e",
       "APT::Install-Recommends \"false\";\nAcquire::Languages \"none\";\n"},
      {"/etc/systemd/system/toa-e2e.service", GuestUnit()},
  };
}

std::vector<std::pair<std::string, std::string>> BootedImageFiles() {
  return {{"/etc/initramfs-tools/conf.d/toa-e2e.conf",
           "# Written by toa-e2e after the image's first initrd was made (in a chroot, where `dep` cannot\n"
           "# see the VM's devices): in the VM, initrds of new kernels hold only the modules this VM needs.\n"
           "# `most` takes ~25 min under TCG for a kernel with xz-compressed modules.\n"
           "MODULES=dep\n"}};
}

std::string ImageRecipe(const ImageSpec& spec) {
  std::string files;
  auto all = ImageFiles();
  for (const auto& f : BootedImageFiles()) all.push_back(f);
  for (const auto& [path, content] : all)
    files += path + ":" + std::to_string(std::hash<std::string>{}(content)) + ",";
  return std::string("kind=e2e-image\nformat=") + kImageFormat + "\nname=" + spec.release.name +
         "\nrelease=" + spec.release.release + "\nmirror=" + spec.row.mirror + "\nkernel=" + spec.kver + "=" +
         spec.version + "\nupgrade=" + spec.upgrade_kver + "=" + spec.upgrade_version +
         "\npackages=" + Join(spec.packages, ",") + "\nheadroom_mb=" + std::to_string(spec.headroom_mb) +
         "\nprofiles=" + spec.profiles_stamp + "\nfiles=" + files;
}

std::string ProfilesStamp(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".yaml") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string all;
  for (const auto& n : names) {
    auto content = util::ReadFile(dir + "/" + n);
    all += n + ":" + (content ? *content : std::string("<unreadable>")) + "\n";
  }
  return std::to_string(std::hash<std::string>{}(all));
}

namespace {

util::Result<std::string> BuildImage(const ImageSpec& spec, util::ProcessRunner& runner,
                                     const std::string& cache_root, const std::string& tmp,
                                     const ProgressFn& progress) {
  const std::string root = tmp + "/root";
  std::error_code ec;
  progress("debootstrap " + spec.release.release + " image root");
  auto boot = Host(runner,
                   {"debootstrap", "--variant=minbase", "--include=" + Join(spec.packages, ","),
                    spec.release.release, root, spec.row.mirror},
                   minutes(30), "debootstrap the " + spec.release.name + " image");
  if (!boot) return boot.error();
  for (const auto& [path, content] : ImageFiles())
    if (auto st = util::WriteFileAtomic(root + path, content); !st) return st.error();
  if (auto st = util::WriteFileAtomic(root + "/etc/apt/sources.list", BuildSources(spec)); !st) return st.error();

  std::vector<std::string> image_pkgs;
  for (const auto& t : spec.row.image_packages) image_pkgs.push_back(lab::ExpandKver(t, spec.kver) + "=" + spec.version);
  std::vector<std::string> deps;
  {
    auto session = lab::RootSession::Enter(root, cache_root, runner);
    if (!session) return session.error();
    progress("apt-get update in the image");
    if (auto r = session->Run({"apt-get", "update", "-q"}, minutes(10), "apt-get update in the image"); !r)
      return r.error();
    progress("installing " + spec.kver + " in the image");
    std::vector<std::string> install{"apt-get", "install", "-y", "-q", "--no-install-recommends"};
    install.insert(install.end(), image_pkgs.begin(), image_pkgs.end());
    if (auto r = session->Run(install, minutes(30), "install the kernel in the image"); !r) return r.error();

    // Exactly what `toa-build deps` will install in the VM, asked of toa-build's own planner.
    auto profiles = host::ProfileSet::Load(host::ProfilesDir(lab::SourceDir()));
    if (!profiles) return profiles.error();
    host::RootFs image_root(root);
    auto det = host::Detect(profiles.value(), image_root, spec.kver);
    if (!det) return det.error();
    deps = det->AllPackages();
    progress("downloading for the local repository: " + Join(deps, " ") + " + " +
             Join(UpgradePackages(spec, false), " "));
    std::vector<std::string> download{"apt-get", "install", "-y", "-q", "--no-install-recommends", "--download-only"};
    download.insert(download.end(), deps.begin(), deps.end());
    for (const auto& p : UpgradePackages(spec, true)) download.push_back(p);
    if (auto r = session->Run(download, minutes(20), "download the local repository's packages"); !r)
      return r.error();

    fs::create_directories(root + kRepoDir, ec);
    int debs = 0;
    for (const auto& e : fs::directory_iterator(root + "/var/cache/apt/archives", ec)) {
      if (e.path().extension() != ".deb") continue;
      fs::rename(e.path(), root + kRepoDir + "/" + e.path().filename().string(), ec);
      if (ec) return util::MakeError("cannot move " + e.path().string() + " into the repository: " + ec.message());
      ++debs;
    }
    if (debs == 0) return util::MakeError("apt downloaded no package for the local repository");
    auto scan = Host(runner, {"dpkg-scanpackages", "--multiversion", ".", "/dev/null"}, minutes(5),
                     "index the local repository (dpkg-scanpackages)", root + kRepoDir);
    if (!scan) return scan.error();
    // dpkg-scanpackages reports on stderr too; keep only the stanzas.
    std::string index, line;
    std::istringstream in(scan->output);
    bool stanza = false;
    while (std::getline(in, line)) {
      if (line.rfind("Package: ", 0) == 0) stanza = true;
      if (line.rfind("dpkg-scanpackages:", 0) == 0) continue;
      if (stanza) index += line + "\n";
    }
    if (auto st = util::WriteFileAtomic(root + kRepoDir + "/Packages", index); !st) return st.error();
    if (auto st = util::WriteFileAtomic(root + "/etc/apt/sources.list", LocalSources()); !st) return st.error();
    fs::remove_all(root + "/etc/apt/sources.list.d", ec);
    fs::create_directories(root + "/etc/apt/sources.list.d", ec);
    progress("apt-get update against the local repository (" + std::to_string(debs) + " packages)");
    if (auto r = session->Run({"apt-get", "update", "-q"}, minutes(5), "apt-get update from the local repository"); !r)
      return r.error();
    // The VM must find everything: a simulated install of all of it.
    std::vector<std::string> check{"apt-get", "install", "-s", "-q", "--no-install-recommends"};
    check.insert(check.end(), deps.begin(), deps.end());
    for (const auto& p : UpgradePackages(spec, false)) check.push_back(p);
    if (auto r = session->Run(check, minutes(5), "check the local repository resolves everything"); !r)
      return r.error();
    if (auto r = session->Run({"apt-get", "clean"}, minutes(5), "apt-get clean in the image"); !r) return r.error();
  }
  for (const auto& [path, content] : BootedImageFiles())
    if (auto st = util::WriteFileAtomic(root + path, content); !st) return st.error();

  fs::create_directories(root + kPayloadMount, ec);
  const std::string sd = root + "/etc/systemd/system/";
  fs::create_directories(sd + "multi-user.target.wants", ec);
  fs::create_symlink("../toa-e2e.service", sd + "multi-user.target.wants/toa-e2e.service", ec);
  for (const auto& unit : kMasked) {
    fs::remove(sd + unit, ec);
    fs::create_symlink("/dev/null", sd + unit, ec);
  }

  for (auto [from, to] : {std::pair<std::string, std::string>{"/boot/vmlinuz-" + spec.kver, "vmlinuz"},
                          {"/boot/initrd.img-" + spec.kver, "initrd.img"}}) {
    fs::copy_file(root + from, tmp + "/" + to, fs::copy_options::overwrite_existing, ec);
    if (ec) return util::MakeError("the image has no " + from + " (" + ec.message() + "): did the kernel install?");
  }

  uintmax_t bytes = TreeBytes(root) * 11 / 10 + static_cast<uintmax_t>(spec.headroom_mb) * 1024 * 1024;
  bytes = (bytes + (1 << 20) - 1) / (1 << 20) * (1 << 20);
  const std::string disk = tmp + "/disk.img";
  progress("mkfs.ext4 -d (" + std::to_string(bytes >> 20) + " MB)");
  if (::truncate(disk.c_str(), 0) != 0) {
    if (auto st = util::WriteFileAtomic(disk, ""); !st) return st.error();
  }
  if (::truncate(disk.c_str(), static_cast<off_t>(bytes)) != 0)
    return util::MakeError("cannot size " + disk + ": " + std::strerror(errno));
  if (auto r = Host(runner, {"mkfs.ext4", "-q", "-F", "-L", "toa-e2e", "-d", root, disk}, minutes(10),
                    "make the image filesystem (mkfs.ext4 -d)");
      !r)
    return r.error();
  if (auto st = lab::RemoveTree(root, runner); !st) return st.error();
  return "disk_bytes=" + std::to_string(bytes) + "\nrepo=" + Join(deps, ",") + "\n";
}

}  // namespace

util::Result<Image> EnsureImage(const ImageSpec& spec, util::ProcessRunner& runner, const std::string& cache_root,
                                const ProgressFn& progress) {
  auto start = std::chrono::steady_clock::now();
  lab::CacheEntrySpec entry;
  entry.dir = cache_root + "/e2e-images/" + spec.release.name;
  entry.lock = cache_root + "/locks/e2e-image-" + spec.release.name + ".lock";
  entry.recipe = ImageRecipe(spec);
  entry.key_files = {"disk.img", "vmlinuz", "initrd.img"};
  std::error_code ec;
  fs::create_directories(cache_root + "/locks", ec);
  fs::create_directories(cache_root + "/e2e-images", ec);
  auto build = [&](const std::string& tmp) { return BuildImage(spec, runner, cache_root, tmp, progress); };
  auto ensured = lab::EnsureEntry(entry, runner, build);
  if (!ensured) return ensured.error();
  // Verified before use: a disk of another size than built is not trusted.
  uintmax_t want = std::strtoull(lab::StampValue(ensured->stamp, "disk_bytes").c_str(), nullptr, 10);
  uintmax_t have = fs::file_size(entry.dir + "/disk.img", ec);
  if (ec || want == 0 || have != want) {
    progress("cached image " + entry.dir + " is damaged (disk.img is " + std::to_string(have) + " bytes, built as " +
             std::to_string(want) + "): rebuilding");
    {
      auto lock = util::FileLock::Acquire(entry.lock, entry.lock_timeout_s);
      if (!lock) return lock.error();
      if (auto st = lab::RemoveTree(entry.dir, runner); !st) return st.error();
    }
    ensured = lab::EnsureEntry(entry, runner, build);
    if (!ensured) return ensured.error();
  }
  Image img;
  img.dir = entry.dir;
  img.disk = entry.dir + "/disk.img";
  img.vmlinuz = entry.dir + "/vmlinuz";
  img.initrd = entry.dir + "/initrd.img";
  img.upgrade_packages = UpgradePackages(spec, false);
  img.built = ensured->built;
  img.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return img;
}

}  // namespace e2e
