#include "host/installer.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "host/artifacts.h"
#include "util/fs.h"
#include "util/strings.h"

namespace host {

namespace {

std::string ModeText(int mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

std::string DkmsBase() { return std::string("/var/lib/dkms/") + kDkmsName + "/" + kDkmsVersion; }

std::vector<std::string> Dkms(const std::string& action, const std::vector<std::string>& more = {}) {
  std::vector<std::string> argv{"dkms", action, "-m", kDkmsName, "-v", kDkmsVersion};
  argv.insert(argv.end(), more.begin(), more.end());
  return argv;
}

bool AnyExists(const RootFs& root, const std::vector<std::string>& files) {
  for (const auto& f : files)
    if (root.Exists(f)) return true;
  return false;
}

std::string HeadersMarker(const std::string& kernel) { return "/lib/modules/" + kernel + "/build/Makefile"; }

std::string NewestKernel(const RootFs& root) {
  std::string newest;
  for (const auto& name : root.List("/lib/modules"))
    if (root.IsDir("/lib/modules/" + name) && (newest.empty() || KernelVersionLess(newest, name)))
      newest = name;
  return newest;
}

// What holds the kernel's headers, for messages.
std::string HeadersName(const Detection& det) {
  if (!det.profile.header_package.empty()) return "`" + det.profile.header_package + "`";
  return "/lib/modules/" + det.kernel + "/build";
}

std::string ArchiveHint(const Profile& p) {
  if (!p.archive || p.archive->mirror.empty()) return "";
  return " (this release's packages are archived at " + p.archive->mirror + ")";
}

std::string HeadersMissing(const RootFs& root, const Detection& det) {
  std::string msg = "step deps: the headers of kernel " + det.kernel + " (/lib/modules/" + det.kernel +
                    "/build) are missing and `" + det.profile.header_package +
                    "` could not be installed: ";
  std::string newest = NewestKernel(root);
  if (!newest.empty() && KernelVersionLess(det.kernel, newest))
    msg += "the kernel was upgraded to " + newest + " but not rebooted: reboot into it and run " +
           "`toa-build install` again, or install `" + det.profile.header_package + "` for " + det.kernel;
  else
    msg += "install `" + det.profile.header_package + "` from a repository that still has it, or " +
           "reboot into a kernel whose headers are available";
  return msg + ArchiveHint(det.profile);
}

const std::regex kUnreachable(
    "Could not resolve|Temporary failure resolving|Failed to fetch|Cannot find a valid baseurl|"
    "Could not retrieve mirrorlist|Curl error|Failed to download metadata|Cannot download repomd|"
    "Network is unreachable|Connection timed out|Valid metadata not found|Problem retrieving files|"
    "Failed to synchronize cache|Download \\(curl\\) error|Errors were encountered while downloading");
const std::regex kNotFound(
    "Unable to locate package|No package .* available|No match for argument|not found in package names|"
    "No provider of|Couldn't find any package|has no installation candidate");
const std::regex kKeyRejected(
    "Key was rejected by service|Required key not available|[Ll]ockdown|signature and/or required key|"
    "module verification failed");

util::Error PackageFailure(const RootFs& root, const Detection& det, const std::vector<std::string>& argv,
                           const util::ProcessResult& r) {
  const auto& out = r.output;
  if (std::regex_search(out, kUnreachable))
    return util::MakeError("step deps: the package repositories are unreachable (" + util::OutputTail(out, 2) +
                           "): check the network, proxy and repository configuration, then run again" +
                           ArchiveHint(det.profile));
  if (std::regex_search(out, kNotFound) && !det.profile.header_package.empty() &&
      out.find(det.profile.header_package) != std::string::npos)
    return util::MakeError(HeadersMissing(root, det));
  std::string why = r.timed_out ? "did not finish in time" : "failed (exit " + std::to_string(r.exit_code) + ")";
  return util::MakeError("step deps: `" + util::FormatCommand(argv) + "` " + why + ": " +
                         util::OutputTail(out) + "; fix the package manager's complaint and run again" +
                         ArchiveHint(det.profile));
}

std::vector<std::string> InstallCommand(const Profile& p, const std::vector<std::string>& names,
                                        const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (p.package_manager == "apt") {
    argv = {"apt-get"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"install", "-y", "--no-install-recommends"});
  } else if (p.package_manager == "zypper") {
    argv = {"zypper", "--non-interactive", "install"};
    argv.insert(argv.end(), args.begin(), args.end());
  } else {
    argv = {p.package_manager, "install", "-y"};
    argv.insert(argv.end(), args.begin(), args.end());
  }
  argv.insert(argv.end(), names.begin(), names.end());
  return argv;
}

util::Status RunPackages(Executor& exec, const Detection& det, const std::vector<std::string>& argv) {
  util::ProcessSpec spec;
  auto r = exec.Run(argv);
  if (!r) return util::MakeError("step deps: " + r.error().message);
  if (!r->ok()) return PackageFailure(exec.root(), det, argv, r.value());
  return util::Ok{};
}

using util::Join;

}  // namespace

// What the last install recorded (trusted_sources to keep, build strategy).
// Every key is checked as a value: a wrong type is an error, never an exception.
util::Result<InstallState> ParseInstallState(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return util::MakeError("is not JSON");
  if (!j.is_object()) return util::MakeError("is not a JSON object");
  InstallState st;
  st.present = true;
  auto str = [&](const char* key, std::string& into) -> util::Status {
    if (!j.contains(key)) return util::Ok{};
    if (!j[key].is_string()) return util::MakeError("`" + std::string(key) + "` is " + j[key].type_name() + ", not a string");
    into = j[key].get<std::string>();
    return util::Ok{};
  };
  for (auto [key, into] : {std::pair<const char*, std::string*>{"build", &st.build}, {"autoload", &st.autoload},
                           {"kernel", &st.kernel}, {"trusted_sources", &st.trusted_sources}})
    if (auto s = str(key, *into); !s) return s.error();
  if (!st.build.empty() && st.build != "dkms" && st.build != "kbuild" && st.build != "container")
    return util::MakeError("`build` is `" + util::Printable(st.build, 40) + "`, not dkms, kbuild or container");
  if (!st.trusted_sources.empty())
    if (auto s = ValidateTrustedSources(st.trusted_sources); !s) return util::MakeError("`trusted_sources`: " + s.error().message);
  if (!st.kernel.empty())
    if (auto s = ValidateKernelRelease(st.kernel); !s) return util::MakeError("`kernel`: " + s.error().message);
  if (j.contains("modules")) {
    if (!j["modules"].is_array()) return util::MakeError(std::string("`modules` is ") + j["modules"].type_name() + ", not a list");
    for (const auto& m : j["modules"]) {
      if (!m.is_string() || (m != "toa" && m != "uoa"))
        return util::MakeError("`modules` holds " + util::Printable(m.dump(), 40) + ", not \"toa\" or \"uoa\"");
      st.modules.push_back(m.get<std::string>());
    }
  }
  return st;
}

util::Result<InstallState> ReadInstallState(const RootFs& root) {
  if (!root.Lexists(kStatePath)) return InstallState{};
  auto text = root.ReadChecked(kStatePath, 1u << 20);
  std::string why = text ? "" : text.error().message;
  if (text) {
    auto st = ParseInstallState(*text);
    if (st) return st;
    why = st.error().message;
  }
  std::string where = root.is_host_root() ? std::string(kStatePath) : root.root() + kStatePath;
  return util::MakeError("the state file " + util::Printable(where, 200) + " is corrupt (" + util::Printable(why, 200) +
                         "); nothing was changed; fix: remove it (it only remembers the last install) and run "
                         "`toa-build install` again, with --trusted-sources if you had set them");
}

namespace {

}  // namespace

// ---------------------------------------------------------------- Executor

Executor::Executor(const RootFs& root, util::ProcessRunner& runner, bool dry_run)
    : root_(root), runner_(runner), dry_run_(dry_run) {}

void Executor::Note(std::string line) {
  if (!dry_run_ && on_action_) on_action_(line);
  lines_.push_back(std::move(line));
}

util::Result<util::ProcessResult> Executor::Run(const std::vector<std::string>& argv,
                                                std::chrono::seconds timeout) {
  Note(util::FormatCommand(argv));
  util::ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = timeout;
  if (!argv.empty() && argv[0] == "apt-get") spec.env["DEBIAN_FRONTEND"] = "noninteractive";
  return runner_.Run(spec);
}

util::Result<util::ProcessResult> Executor::Run(const util::ProcessSpec& spec, const std::string& note) {
  Note(util::FormatCommand(spec.argv) + (note.empty() ? "" : "  # " + note));
  return runner_.Run(spec);
}

namespace {

// Folders a write to `path` would create, deepest first, so an undo can take
// them away again (only if still empty).
std::vector<std::string> MissingParents(const RootFs& root, const std::string& path) {
  std::vector<std::string> missing;
  std::string dir = path.substr(0, path.rfind('/'));
  while (!dir.empty() && !root.Exists(dir)) {
    missing.push_back(dir);
    dir = dir.substr(0, dir.rfind('/'));
  }
  return missing;
}

void RemoveEmptyDirs(const RootFs& root, const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) root.RemoveIfEmptyDir(d);
}

}  // namespace

util::Result<bool> Executor::Write(const std::string& path, const std::string& content, int mode) {
  auto old = root_.Read(path);
  int old_mode = root_.Mode(path).value_or(0);
  if (old && *old == content && old_mode == mode) return false;
  Note("# write " + path + " (" + ModeText(mode) + ")");
  if (dry_run_) return true;
  auto created = MissingParents(root_, path);
  auto w = root_.WriteIfChanged(path, content, mode);
  if (!w) {
    RemoveEmptyDirs(root_, created);
    return w.error();
  }
  if (old) {
    std::string previous = *old;
    OnUndo([this, path, previous, old_mode] { (void)root_.WriteIfChanged(path, previous, old_mode); });
  } else {
    OnUndo([this, path, created] {
      (void)root_.Remove(path);
      RemoveEmptyDirs(root_, created);
    });
  }
  return true;
}

util::Status Executor::Remove(const std::string& path) {
  if (!root_.Lexists(path)) return util::Ok{};
  Note("rm -f " + path);
  if (dry_run_) return util::Ok{};
  return root_.Remove(path);
}

util::Status Executor::RemoveTree(const std::string& path) {
  if (!root_.Lexists(path)) return util::Ok{};
  Note("rm -rf " + path);
  if (dry_run_) return util::Ok{};
  return root_.RemoveTree(path);
}

util::Result<bool> Executor::SyncTree(const std::string& local_dir, const std::string& path) {
  if (root_.TreeEquals(local_dir, path)) return false;
  Note("# copy " + local_dir + " -> " + path);
  if (dry_run_) return true;
  bool existed = root_.Exists(path);
  auto created = MissingParents(root_, path + "/x");
  if (!existed)
    OnUndo([this, path, created] {
      (void)root_.RemoveTree(path);
      RemoveEmptyDirs(root_, created);
    });
  auto r = root_.SyncTree(local_dir, path);
  if (!r) return r.error();
  return true;
}

void Executor::Rollback() {
  if (dry_run_) return;
  while (!undo_.empty()) {
    auto undo = std::move(undo_.back());
    undo_.pop_back();
    undo();
  }
}

// ---------------------------------------------------------------- options

util::Result<std::vector<std::string>> ParseModules(const std::string& value) {
  if (value == "all") return std::vector<std::string>{"toa", "uoa"};
  if (value == "toa" || value == "uoa") return std::vector<std::string>{value};
  return util::MakeError("--module " + util::Printable(value, 40) + " is not one of toa, uoa, all; pass one of them");
}

util::Status ValidateTrustedSources(const std::string& value) {
  auto bad = [](const std::string& item, const std::string& why) {
    return util::MakeError("--trusted-sources: `" + util::Printable(item, 60) + "` " + why);
  };
  std::vector<std::string> items;
  for (size_t start = 0;;) {
    size_t comma = value.find(',', start);
    items.push_back(value.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (items.size() > kMaxTrustedSources)
    return util::MakeError("--trusted-sources: " + std::to_string(items.size()) + " entries, the modules take at most " +
                           std::to_string(kMaxTrustedSources) + ": merge them into wider prefixes");
  for (const auto& cidr : items) {
    if (cidr.empty())
      return util::MakeError("--trusted-sources: an empty entry (two commas, or one at an end): remove it");
    auto slash = cidr.find('/');
    std::string addr = cidr.substr(0, slash);
    unsigned char buf[16] = {};
    bool v6 = addr.find(':') != std::string::npos;
    bool ok = addr.size() < 64 && ::inet_pton(v6 ? AF_INET6 : AF_INET, addr.c_str(), buf) == 1;
    int bits = v6 ? 128 : 32;
    if (ok && slash != std::string::npos) {
      std::string len = cidr.substr(slash + 1);
      ok = !len.empty() && len.size() <= 3 && len.find_first_not_of("0123456789") == std::string::npos &&
           std::stoi(len) <= bits;
      if (ok) bits = std::stoi(len);
    }
    if (!ok) return bad(cidr, "is not an IPv4/IPv6 address or CIDR (like 100.125.0.0/16,2001:db8::/32)");
    if (bits == 0)
      return bad(cidr, "trusts every address, the same as no filter: name the balancers' prefixes, or clear the "
                       "filter explicitly with --trusted-sources \"\"");
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (v6 && std::memcmp(buf, kMapped, sizeof kMapped) == 0)
      return bad(cidr, "is an IPv4-mapped IPv6 prefix, which never matches (IPv6 packets from ::ffff:a.b.c.d are "
                       "never trusted): write the IPv4 prefix instead");
    const int bytes = v6 ? 16 : 4;
    for (int i = 0; i < bytes; ++i) {
      int keep = bits - i * 8;
      unsigned char mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : static_cast<unsigned char>(0xff << (8 - keep));
      if (buf[i] & ~mask) {
        unsigned char net[16];
        for (int k = 0; k < bytes; ++k) {
          int kk = bits - k * 8;
          net[k] = buf[k] & (kk >= 8 ? 0xff : kk <= 0 ? 0 : static_cast<unsigned char>(0xff << (8 - kk)));
        }
        char text[INET6_ADDRSTRLEN] = {};
        ::inet_ntop(v6 ? AF_INET6 : AF_INET, net, text, sizeof text);
        return bad(cidr, std::string("has host bits set: write ") + text + "/" + std::to_string(bits));
      }
    }
  }
  return util::Ok{};
}

// ---------------------------------------------------------------- deps

util::Status RunDeps(Executor& exec, const Detection& det) {
  const auto& p = det.profile;
  const auto& root = exec.root();
  if (p.package_manager == "none") return util::Ok{};  // the build container brings its tools
  bool need_dkms = p.build == "dkms" && p.dkms && !AnyExists(root, p.dkms->files);
  bool need_repo = need_dkms && p.dkms_repo && !AnyExists(root, p.dkms_repo->files);
  std::vector<std::string> names;
  for (const auto& pkg : p.packages)
    if (!AnyExists(root, pkg.files)) names.push_back(pkg.name);
  bool need_headers = !root.Exists(HeadersMarker(det.kernel));
  // No package holds them (a custom kernel): say so rather than ask for one.
  if (need_headers && p.header_package.empty())
    return util::MakeError("step deps: the headers of kernel " + det.kernel + " (/lib/modules/" + det.kernel +
                           "/build) are missing and " + p.header_package_reason);
  if (need_headers) names.push_back(p.header_package);
  if (need_dkms) names.push_back(p.dkms->name);
  if (names.empty()) return util::Ok{};

  std::vector<std::string> args;
  if (p.archive && !p.archive->file.empty()) {
    auto w = exec.Write(p.archive->file, p.archive->content);
    if (!w) return util::MakeError("step deps: " + w.error().message);
    args = p.archive->install_args;
  }
  if (p.package_manager == "apt") {
    std::vector<std::string> update{"apt-get"};
    update.insert(update.end(), args.begin(), args.end());
    update.push_back("update");
    if (auto s = RunPackages(exec, det, update); !s) return s;
  }
  if (need_repo) {
    auto argv = p.dkms_repo->command.empty() ? InstallCommand(p, {p.dkms_repo->name}, args)
                                             : p.dkms_repo->command;
    if (auto s = RunPackages(exec, det, argv); !s) return s;
  }
  if (auto s = RunPackages(exec, det, InstallCommand(p, names, args)); !s) return s;
  if (exec.dry_run()) return util::Ok{};
  if (!root.Exists(HeadersMarker(det.kernel))) return util::MakeError(HeadersMissing(root, det));
  if (p.build == "dkms" && !AnyExists(root, p.dkms->files))
    return util::MakeError("step deps: `" + p.dkms->name + "` was installed but no dkms command is there (" +
                           Join(p.dkms->files, ", ") + "): check the package manager's log");
  return util::Ok{};
}

// ---------------------------------------------------------------- install

std::string FindModuleFile(const RootFs& root, const std::string& kernel, const std::string& module) {
  // DKMS installs to updates/dkms (Debian) or extra (RHEL); kbuild's
  // modules_install keeps the source's subfolders (extra/toa-build/toa/).
  const std::string base = "/lib/modules/" + kernel;
  for (const char* dir : {"/updates", "/extra"}) {
    std::error_code ec;
    std::vector<std::string> found;
    // Resolved inside the root; the walk below follows no directory symlink.
    auto local = root.Resolve(base + dir);
    if (!local) continue;
    for (std::filesystem::recursive_directory_iterator it(*local, ec), end; !ec && it != end;
         it.increment(ec)) {
      auto name = it->path().filename().string();
      for (const char* ext : {".ko", ".ko.xz", ".ko.zst", ".ko.gz"})
        if (name == module + ext) found.push_back(it->path().string().substr(local->size()));
    }
    if (!found.empty()) return base + dir + *std::min_element(found.begin(), found.end());
  }
  std::string container = std::string(kContainerDir) + "/modules/" + kernel + "/" + module + ".ko";
  if (root.Exists(container)) return container;
  return "";
}

std::vector<std::string> SelftestCommand(const std::string& lbsim, const std::string& module) {
  return {lbsim, "run", "--netns", "--no-load", "--module", module};
}

namespace {

// The compiler's own complaints when there are any, else the log's tail.
std::string BuildLogSummary(const std::string& log) {
  std::istringstream in(log);
  std::vector<std::string> errors;
  for (std::string line; std::getline(in, line) && errors.size() < 2;)
    if (line.find("error:") != std::string::npos) errors.push_back(line);
  if (errors.empty()) return util::OutputTail(log);
  return Join(errors, " | ");
}

bool AllModulesInstalled(const RootFs& root, const std::string& kernel, const std::vector<std::string>& modules) {
  for (const auto& m : modules)
    if (FindModuleFile(root, kernel, m).empty()) return false;
  return true;
}

util::Status InstallDkms(Executor& exec, const Detection& det, const InstallOptions& opts) {
  const auto& root = exec.root();
  const std::string& kver = det.kernel;
  auto synced = exec.SyncTree(opts.source_dir, kSourcePath);
  if (!synced) return util::MakeError("step copy-source: " + synced.error().message);
  const std::string base = DkmsBase();
  bool added = root.Exists(base + "/source");
  bool built = root.IsDir(base + "/" + kver);
  bool installed = built && AllModulesInstalled(root, kver, {"toa", "uoa"});
  if (synced.value() && added) {
    // New sources under the same version: DKMS would keep the old build.
    auto r = exec.Run(Dkms("remove", {"--all"}));
    if (!r || !r->ok())
      return util::MakeError("step dkms remove (old build): " +
                             (r ? util::OutputTail(r->output) : r.error().message) +
                             "; fix: run `dkms remove -m toa-build -v 0.1.0 --all` by hand");
    added = built = installed = false;
  }
  if (!added) {
    exec.OnUndo([&exec] { (void)exec.Run(Dkms("remove", {"--all"})); });
    auto r = exec.Run(Dkms("add"));
    if (!r || !r->ok())
      return util::MakeError("step dkms add: " + (r ? util::OutputTail(r->output) : r.error().message) +
                             "; fix: check " + std::string(kSourcePath) + "/dkms.conf");
  } else if (!installed) {
    exec.OnUndo([&exec, kver] { (void)exec.Run(Dkms("remove", {"-k", kver})); });
  }
  if (!built) {
    auto r = exec.Run(Dkms("build", {"-k", kver}));
    if (!r || !r->ok()) {
      // The rollback's `dkms remove` deletes DKMS's log: keep a copy.
      std::string log = base + "/build/make.log";
      auto text = root.Read(log);
      std::string kept = "/var/log/toa-build/make-" + kver + ".log";
      if (text) (void)root.WriteIfChanged(kept, *text);
      std::string summary = text ? BuildLogSummary(*text)
                                 : (r ? BuildLogSummary(r->output) : r.error().message);
      return util::MakeError("step dkms build: the modules did not build for " + kver + ": " + summary +
                             (text ? " (full log: " + kept + ")" : "") + "; fix: make sure " +
                             HeadersName(det) +
                             " matches the running kernel and gcc is the kernel's compiler, then run again");
    }
  }
  if (!installed) {
    auto r = exec.Run(Dkms("install", {"-k", kver}));
    if (!r || !r->ok())
      return util::MakeError("step dkms install: " + (r ? util::OutputTail(r->output) : r.error().message) +
                             "; fix: check free space and permissions under /lib/modules/" + kver);
  }
  return util::Ok{};
}

util::Status InstallKbuild(Executor& exec, const Detection& det, const InstallOptions& opts) {
  const auto& root = exec.root();
  const std::string& kver = det.kernel;
  auto synced = exec.SyncTree(opts.source_dir, kSourcePath);
  if (!synced) return util::MakeError("step copy-source: " + synced.error().message);
  const std::string kdir = "/lib/modules/" + kver + "/build";
  const std::string dest = "/lib/modules/" + kver + "/" + kKbuildInstallDir;
  bool installed = root.IsDir(dest) && AllModulesInstalled(root, kver, {"toa", "uoa"});
  if (!synced.value() && installed) return util::Ok{};
  exec.OnUndo([&exec, dest, kver] {
    (void)exec.RemoveTree(dest);
    (void)exec.Run({"depmod", "-a", kver});
  });
  auto make = exec.Run({"make", "-C", kdir, std::string("M=") + kSourcePath, "modules"});
  if (!make || !make->ok())
    return util::MakeError("step build: `make` failed for " + kver + ": " +
                           (make ? util::OutputTail(make->output) : make.error().message) + "; fix: make sure " +
                           HeadersName(det) + " matches the running kernel, then run again");
  auto inst = exec.Run({"make", "-C", kdir, std::string("M=") + kSourcePath,
                        std::string("INSTALL_MOD_DIR=") + kKbuildInstallDir, "modules_install"});
  if (!inst || !inst->ok())
    return util::MakeError("step build: `make modules_install` failed: " +
                           (inst ? util::OutputTail(inst->output) : inst.error().message));
  auto dep = exec.Run({"depmod", "-a", kver});
  if (!dep || !dep->ok())
    return util::MakeError("step build: depmod failed: " + (dep ? util::OutputTail(dep->output) : dep.error().message));
  return util::Ok{};
}

util::Status InstallContainer(Executor& exec, const Detection& det, const InstallOptions& opts) {
  const auto& root = exec.root();
  const auto& spec = *det.profile.container;
  const std::string src = std::string(kContainerDir) + "/src";
  auto synced = exec.SyncTree(opts.source_dir, src);
  if (!synced) return util::MakeError("step copy-source: " + synced.error().message);
  auto recipe = exec.Write(src + "/Containerfile", RenderContainerfile(spec));
  if (!recipe) return util::MakeError("step container recipe: " + recipe.error().message);
  auto script = exec.Write(src + "/container-build.sh", RenderContainerBuildScript(), 0755);
  if (!script) return util::MakeError("step container recipe: " + script.error().message);
  bool changed = synced.value() || recipe.value() || script.value();
  const std::string out = std::string(kContainerDir) + "/modules/" + det.kernel;
  if (!changed && AllModulesInstalled(root, det.kernel, {"toa", "uoa"})) return util::Ok{};
  if (auto s = exec.RemoveTree(out); !s) return s;
  exec.OnUndo([&exec, out] { (void)exec.RemoveTree(out); });
  for (const auto& argv : {ContainerBuildCommand(spec, det.kernel), ContainerRunCommand(spec, det.kernel)}) {
    auto r = exec.Run(argv);
    if (!r || !r->ok())
      return util::MakeError("step container build: `" + util::FormatCommand(argv) + "` failed: " +
                             (r ? util::OutputTail(r->output) : r.error().message) + "; fix: make sure " +
                             spec.runtime + " runs and can pull " + spec.image);
  }
  return util::Ok{};
}

util::Error LoadFailure(const Detection& det, const std::string& module, const util::ProcessResult& r) {
  std::string tail = util::OutputTail(r.output, 2);
  if (std::regex_search(r.output, kKeyRejected)) {
    std::string key = det.profile.mok_key.empty() ? "/var/lib/dkms/mok.pub" : det.profile.mok_key;
    return util::MakeError("step load: the kernel refused " + module + " (" + tail +
                           "): Secure Boot only loads modules signed by an enrolled key; fix: `mokutil --import " +
                           key + "` (choose a one-time password), reboot, pick \"Enroll MOK\" in the MOK manager "
                           "and enter it, then run `toa-build install` again (or disable Secure Boot)");
  }
  return util::MakeError("step load: the kernel refused " + module + " (" + tail +
                         "); fix: see `dmesg | tail` for the reason");
}

std::string EffectiveTrustedSources(const InstallState& state, const InstallOptions& opts) {
  if (opts.trusted_sources) return *opts.trusted_sources;
  return state.trusted_sources;
}

util::Status InstallSteps(Executor& exec, const Detection& det, const InstallOptions& opts,
                          const InstallState& state, bool& options_changed) {
  const auto& p = det.profile;
  const auto& root = exec.root();
  if (!p.module_supported) return util::MakeError("step detect: " + p.unsupported_reason);
  std::error_code ec;
  if (opts.source_dir.empty() || !std::filesystem::exists(opts.source_dir + "/dkms.conf", ec))
    return util::MakeError("step copy-source: no module sources with dkms.conf in `" + opts.source_dir +
                           "`: set TOA_BUILD_SOURCE_DIR to the toa-build source tree (with module/dkms.conf)");
  if (auto s = RunDeps(exec, det); !s) return s;

  util::Status built = util::Ok{};
  const size_t lines_before_build = exec.lines().size();
  if (p.build == "dkms") built = InstallDkms(exec, det, opts);
  else if (p.build == "kbuild") built = InstallKbuild(exec, det, opts);
  else built = InstallContainer(exec, det, opts);
  if (!built) return built;
  // New module files: a loaded old copy has to make way for them.
  const bool rebuilt = exec.lines().size() != lines_before_build;

  // Module options before loading, so the load uses them.
  const std::string trusted = EffectiveTrustedSources(state, opts);
  options_changed = false;
  if (p.build != "container" && opts.trusted_sources) {
    if (opts.trusted_sources->empty()) {
      options_changed = root.Exists(kOptionsPath);
      if (auto s = exec.Remove(kOptionsPath); !s) return s;
    } else {
      auto w = exec.Write(kOptionsPath, RenderModprobeOptions(opts.modules, *opts.trusted_sources));
      if (!w) return util::MakeError("step options: " + w.error().message);
      options_changed = w.value();
    }
  }

  if (!opts.no_load) {
    for (const auto& m : opts.modules) {
      bool loaded = root.Exists("/sys/module/" + m);
      if (loaded && !options_changed && !rebuilt) continue;
      if (loaded) {
        auto r = exec.Run(p.build == "container" ? std::vector<std::string>{"rmmod", m}
                                                  : std::vector<std::string>{"modprobe", "-r", m});
        if (!r || !r->ok())
          return util::MakeError("step load: cannot unload the old " + m + " to load the new build or options (" +
                                 (r ? util::OutputTail(r->output) : r.error().message) +
                                 "); fix: stop what uses it, or reboot");
      }
      std::vector<std::string> argv;
      if (p.build == "container") {
        argv = {"insmod", std::string(kContainerDir) + "/modules/" + det.kernel + "/" + m + ".ko"};
        if (!trusted.empty()) argv.push_back("trusted_sources=" + trusted);
      } else {
        argv = {"modprobe", m};
      }
      exec.OnUndo([&exec, m, &p] {
        (void)exec.Run(p.build == "container" ? std::vector<std::string>{"rmmod", m}
                                               : std::vector<std::string>{"modprobe", "-r", m});
      });
      auto r = exec.Run(argv);
      if (!r) return util::MakeError("step load: " + r.error().message);
      if (!r->ok()) return LoadFailure(det, m, r.value());
    }
  }

  // Boot-time loading: only now that the modules are known to load.
  util::Result<bool> w = false;
  if (p.autoload == "sysconfig-modules") {
    w = exec.Write(kSysconfigModulesPath, RenderSysconfigModules(opts.modules), 0755);
  } else if (p.autoload == "modules-load.d") {
    w = exec.Write(kModulesLoadPath, RenderModulesLoad(opts.modules));
  } else if (p.autoload == "suse-sysconfig") {
    std::string old = root.Read(kSuseKernelPath).value_or("");
    w = exec.Write(kSuseKernelPath, EditSuseModulesOnBoot(EditSuseModulesOnBoot(old, {"toa", "uoa"}, false),
                                                          opts.modules, true));
  } else if (p.autoload == "coreos-container") {
    w = exec.Write(kUnitPath, RenderCoreosUnit(*p.container, opts.modules, trusted));
    if (w && w.value()) {
      auto r = exec.Run({"systemctl", "daemon-reload"});
      if (!r || !r->ok()) return util::MakeError("step autoload: systemctl daemon-reload failed");
    }
    if (w && !root.Exists(kUnitWantsPath)) {
      exec.OnUndo([&exec] { (void)exec.Run({"systemctl", "disable", "toa-build.service"}); });
      auto r = exec.Run({"systemctl", "enable", "toa-build.service"});
      if (!r || !r->ok())
        return util::MakeError("step autoload: `systemctl enable toa-build.service` failed: " +
                               (r ? util::OutputTail(r->output) : r.error().message));
    }
  }
  if (!w) return util::MakeError("step autoload: " + w.error().message);
  if (p.build == "kbuild")
    for (const auto& hook : p.kernel_hooks) {
      auto h = exec.Write(hook, RenderKernelHook(), 0755);
      if (!h) return util::MakeError("step kernel-hook: " + h.error().message);
    }

  nlohmann::json record{{"build", p.build},         {"autoload", p.autoload},
                        {"kernel", det.kernel},     {"modules", opts.modules},
                        {"trusted_sources", trusted}};
  auto s = exec.Write(kStatePath, record.dump(2) + "\n");
  if (!s) return util::MakeError("step state: " + s.error().message);
  return util::Ok{};
}

}  // namespace

util::Status RunInstall(Executor& exec, const Detection& det, const InstallOptions& opts) {
  // A corrupt state file stops the install before anything changes.
  auto state = ReadInstallState(exec.root());
  if (!state) return state.error();
  bool options_changed = false;
  auto s = InstallSteps(exec, det, opts, state.value(), options_changed);
  if (s && exec.changed() && !opts.no_load && !opts.lbsim.empty()) {
    for (const auto& m : opts.modules) {
      auto r = exec.Run(SelftestCommand(opts.lbsim, m), std::chrono::seconds(300));
      if (!r || !r->ok()) {
        s = util::MakeError("step selftest: " + m + " did not recover client addresses (" +
                            (r ? util::OutputTail(r->output, 2) : r.error().message) +
                            "); the install was undone; fix: see `dmesg` and run `toa-build selftest --module " +
                            m + "` after installing with --no-load");
        break;
      }
    }
  }
  if (!s) exec.Rollback();
  return s;
}

// ---------------------------------------------------------------- uninstall

util::Status RunUninstall(Executor& exec) {
  const auto& root = exec.root();
  auto state = ReadInstallState(root);
  if (!state) return state.error();
  bool container = state->build == "container" || root.Exists(kUnitPath);
  for (const char* m : {"uoa", "toa"}) {
    if (!root.Exists(std::string("/sys/module/") + m)) continue;
    auto argv = container ? std::vector<std::string>{"rmmod", m} : std::vector<std::string>{"modprobe", "-r", m};
    auto r = exec.Run(argv);
    if (!r || !r->ok())
      return util::MakeError(std::string("step unload: cannot unload ") + m + " (" +
                             (r ? util::OutputTail(r->output) : r.error().message) +
                             "); fix: stop the services using it and run `toa-build uninstall` again");
  }
  if (root.Exists(kUnitPath)) {
    if (root.Exists(kUnitWantsPath)) {
      auto r = exec.Run({"systemctl", "disable", "toa-build.service"});
      if (!r || !r->ok()) return util::MakeError("step autoload: `systemctl disable toa-build.service` failed");
    }
    if (auto s = exec.Remove(kUnitPath); !s) return s;
    auto r = exec.Run({"systemctl", "daemon-reload"});
    if (!r || !r->ok()) return util::MakeError("step autoload: systemctl daemon-reload failed");
  }
  if (root.IsDir(std::string("/var/lib/dkms/") + kDkmsName)) {
    auto r = exec.Run(Dkms("remove", {"--all"}));
    if (!r || !r->ok())
      return util::MakeError("step dkms remove: " + (r ? util::OutputTail(r->output) : r.error().message) +
                             "; fix: run `dkms status` and remove toa-build/0.1.0 by hand");
  }
  for (const auto& kver : root.List("/lib/modules")) {
    std::string dir = "/lib/modules/" + kver + "/" + kKbuildInstallDir;
    if (!root.IsDir(dir)) continue;
    if (auto s = exec.RemoveTree(dir); !s) return s;
    auto r = exec.Run({"depmod", "-a", kver});
    if (!r || !r->ok()) return util::MakeError("step depmod: depmod -a " + kver + " failed");
  }
  if (auto text = root.Read(kSuseKernelPath)) {
    std::string edited = EditSuseModulesOnBoot(*text, {"toa", "uoa"}, false);
    if (edited != *text) {
      int mode = root.Mode(kSuseKernelPath).value_or(0644);
      auto w = exec.Write(kSuseKernelPath, edited, mode);
      if (!w) return util::MakeError("step autoload: " + w.error().message);
    }
  }
  for (const char* path : {kSysconfigModulesPath, kModulesLoadPath, kOptionsPath, "/etc/kernel/postinst.d/toa-build",
                           "/etc/kernel/header_postinst.d/toa-build",
                           "/etc/yum.repos.d/toa-build-vault.repo", "/etc/zypp/repos.d/toa-build-archive.repo",
                           "/etc/toa-build/apt-archive.list"})
    if (auto s = exec.Remove(path); !s) return s;
  for (const char* dir : {kSourcePath, kContainerDir, "/var/lib/toa-build", "/var/log/toa-build"})
    if (auto s = exec.RemoveTree(dir); !s) return s;
  if (root.IsDir("/etc/toa-build") && root.List("/etc/toa-build").empty())
    if (auto s = exec.RemoveTree("/etc/toa-build"); !s) return s;
  return util::Ok{};
}

// ---------------------------------------------------------------- status

bool HostStatus::ok() const { return Problem().empty(); }

std::string HostStatus::Problem() const {
  if (!module_support)
    return "the running kernel has no loadable module support (no /proc/modules): TOA and UOA cannot be "
           "loaded into it; boot a kernel built with CONFIG_MODULES=y (every distro kernel is)";
  for (const auto& m : modules) {
    if (m.module_file.empty()) return m.name + " is not installed for kernel " + kernel + ": run `toa-build install`";
    if (!m.loaded) return m.name + " is installed but not loaded: run `toa-build install` (or `modprobe " + m.name + "`)";
    if (!m.autoload) return m.name + " is not loaded at boot: run `toa-build install`";
  }
  return "";
}

util::Result<HostStatus> CollectStatus(const RootFs& root, const Detection& det) {
  HostStatus st;
  st.kernel = det.kernel;
  st.build = det.profile.build;
  st.autoload = det.profile.autoload;
  st.dkms_registered = root.IsDir(DkmsBase());
  // A root without /proc (an image, a fixture) says nothing about loading.
  st.module_support = !root.Exists("/proc/version") || root.Exists("/proc/modules");
  auto state = ReadInstallState(root);
  if (!state) return state.error();
  std::vector<std::string> modules{"toa", "uoa"};
  if (!state->modules.empty()) modules = state->modules;
  std::string autoload_text;
  if (det.profile.autoload == "sysconfig-modules") autoload_text = root.Read(kSysconfigModulesPath).value_or("");
  else if (det.profile.autoload == "modules-load.d") autoload_text = root.Read(kModulesLoadPath).value_or("");
  else if (det.profile.autoload == "suse-sysconfig") autoload_text = root.Read(kSuseKernelPath).value_or("");
  else autoload_text = root.Exists(kUnitWantsPath) ? root.Read(kUnitPath).value_or("") : "";
  for (const auto& m : modules) {
    ModuleStatus ms;
    ms.name = m;
    ms.module_file = FindModuleFile(root, det.kernel, m);
    ms.loaded = root.Exists("/sys/module/" + m);
    std::regex word("(^|[\\s\"/])" + m + "(\\.ko)?($|[\\s\"])");
    ms.autoload = std::regex_search(autoload_text, word);
    auto param = root.Read("/sys/module/" + m + "/parameters/trusted_sources");
    if (param) {
      ms.trusted_sources = *param;
      while (!ms.trusted_sources.empty() && ms.trusted_sources.back() == '\n') ms.trusted_sources.pop_back();
    }
    st.modules.push_back(ms);
  }
  return st;
}

}  // namespace host
