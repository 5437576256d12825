#include "lab/checkpatch.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>

#include "lab/provision.h"
#include "util/fs.h"
#include "util/strings.h"

namespace lab {

namespace fs = std::filesystem;
using std::chrono::minutes;
using util::EndsWith;
using util::MakeError;

namespace {

// What checkpatch.pl reads besides itself (missing ones only weaken it
// quietly, so all are taken).
const char* kScriptFiles[] = {"checkpatch.pl", "spelling.txt", "const_structs.checkpatch"};

std::string CheckpatchDir(const std::string& cache_root, const std::string& package) {
  return cache_root + "/checkpatch/" + package;
}

bool Complete(const std::string& dir) {
  for (const char* f : kScriptFiles)
    if (!fs::is_regular_file(dir + "/scripts/" + f)) return false;
  return fs::is_regular_file(dir + "/complete");
}

// The one .deb apt-get download left in `dir`.
util::Result<std::string> DownloadedDeb(const std::string& dir, const std::string& package) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(package + "_", 0) == 0 && EndsWith(name, ".deb")) return e.path().string();
  }
  return MakeError("apt-get download left no " + package + "_*.deb in " + dir);
}

// Downloads and unpacks into `stage` (a fresh folder next to the final one).
util::Status Unpack(const KernelRow& row, const std::string& package, util::ProcessRunner& runner,
                    const std::string& cache_root, const std::string& stage) {
  auto kernel = ProvisionRow(row, runner, cache_root, nullptr);
  if (!kernel) return kernel.error();
  std::string in_root = "/tmp/checkpatch-" + std::to_string(::getpid());
  std::string host_dir = kernel->build_root + in_root;
  std::error_code ec;
  fs::remove_all(host_dir, ec);
  fs::create_directories(host_dir, ec);
  if (ec) return MakeError("cannot create " + host_dir + ": " + ec.message());
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{host_dir};
  {
    auto lock = util::FileLock::Acquire(RootLockPath(row, cache_root), 3600);
    if (!lock) return lock.error();
    auto session = RootSession::Enter(kernel->build_root, cache_root, runner);
    if (!session) return session.error();
    // The root's lists may be older than the archive: one update, then again.
    auto got = session->RunUnchecked({"apt-get", "download", "-q", package}, minutes(20), in_root);
    if (!got) return got.error();
    if (!got->ok()) {
      auto update = session->Run({"apt-get", "update", "-q"}, minutes(10),
                                 "apt-get update in the " + row.root_release + " root");
      if (!update) return update.error();
      auto again = session->Run({"apt-get", "download", "-q", package}, minutes(20),
                                "apt-get download " + package + " in the " + row.root_release +
                                    " root");
      if (!again) return again.error();
    }
  }
  auto deb = DownloadedDeb(host_dir, package);
  if (!deb) return deb.error();
  auto x = runner.RunChecked({"dpkg-deb", "-x", *deb, host_dir + "/x"}, minutes(5),
                   "unpack " + *deb);
  if (!x) return x.error();
  // The package holds the tree as one tarball: take only the scripts.
  std::string tarball, top;
  for (const auto& e : fs::directory_iterator(host_dir + "/x/usr/src", ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("linux-source-", 0) == 0 && name.find(".tar.") != std::string::npos) {
      tarball = e.path().string();
      top = name.substr(0, name.find(".tar."));
    }
  }
  if (tarball.empty()) return MakeError(package + " holds no /usr/src/linux-source-*.tar.*");
  std::vector<std::string> tar = {"tar", "-xf", tarball, "-C", stage};
  for (const char* f : kScriptFiles) tar.push_back(top + "/scripts/" + f);
  auto untar = runner.RunChecked(tar, minutes(10), "take checkpatch out of " + tarball);
  if (!untar) return untar.error();
  fs::rename(stage + "/" + top + "/scripts", stage + "/scripts", ec);
  if (ec) return MakeError("cannot move the scripts in " + stage + ": " + ec.message());
  fs::remove_all(stage + "/" + top, ec);
  return util::WriteFileAtomic(stage + "/complete", package + "\n");
}

}  // namespace

std::string CheckpatchFinding::ToString() const {
  return file + ":" + std::to_string(line) + ": " + level + ":" + type + ": " + message;
}

std::vector<CheckpatchFinding> ParseCheckpatch(const std::string& output) {
  static const std::regex kLine(R"(^(.+?):(\d+): (ERROR|WARNING|CHECK):([A-Z0-9_]+): (.*)$)");
  std::vector<CheckpatchFinding> out;
  std::istringstream in(output);
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!std::regex_match(line, m, kLine)) continue;
    out.push_back({m[1], std::stoi(m[2]), m[3], m[4], m[5]});
  }
  return out;
}

const std::vector<std::string>& CompatHeaderAllowedTypes() {
  static const std::vector<std::string> types = {
      "LINUX_VERSION_CODE",     // the point of the header
      "CONSTANT_COMPARISON",    // LINUX_VERSION_CODE >= KERNEL_VERSION(...)
      "MACRO_WITH_FLOW_CONTROL",  // callback-defining wrappers that return
      "DEPRECATED_API",         // wrappers for old kernels that only have the old call
  };
  return types;
}

std::vector<std::string> ModuleSourceFiles(const std::string& module_dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(module_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string p = it->path().string();
    // Kbuild's generated files (x.mod.c) are not ours.
    if ((EndsWith(p, ".c") && !EndsWith(p, ".mod.c")) || EndsWith(p, ".h")) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  return files;
}

util::Result<std::string> FetchCheckpatch(const KernelRow& row, const std::string& package,
                                          util::ProcessRunner& runner,
                                          const std::string& cache_root) {
  std::string dir = CheckpatchDir(cache_root, package);
  std::string script = dir + "/scripts/checkpatch.pl";
  if (Complete(dir)) return script;
  std::error_code ec;
  fs::create_directories(cache_root + "/locks", ec);
  auto lock = util::FileLock::Acquire(cache_root + "/locks/checkpatch-" + package, 3600);
  if (!lock) return lock.error();
  if (Complete(dir)) return script;  // another run fetched it meanwhile
  std::string stage = dir + ".partial-" + std::to_string(::getpid());
  fs::remove_all(stage, ec);
  fs::create_directories(stage, ec);
  if (ec) return MakeError("cannot create " + stage + ": " + ec.message());
  if (auto st = Unpack(row, package, runner, cache_root, stage); !st) {
    fs::remove_all(stage, ec);
    return st.error();
  }
  fs::remove_all(dir, ec);  // an incomplete one
  fs::rename(stage, dir, ec);
  if (ec) return MakeError("cannot move " + stage + " to " + dir + ": " + ec.message());
  return script;
}

util::Result<std::vector<CheckpatchFinding>> RunCheckpatch(const std::string& script,
                                                           const std::vector<std::string>& files,
                                                           util::ProcessRunner& runner) {
  std::vector<CheckpatchFinding> all;
  for (const auto& file : files) {
    util::ProcessSpec spec;
    spec.argv = {"perl", script, "--no-tree", "--terse", "--show-types", "--no-summary", "-f"};
    if (fs::path(file).filename() == "compat.h") {
      std::string ignore;
      for (const auto& t : CompatHeaderAllowedTypes()) ignore += (ignore.empty() ? "" : ",") + t;
      spec.argv.push_back("--ignore=" + ignore);
    }
    spec.argv.push_back(file);
    spec.timeout = minutes(2);
    auto r = runner.Run(spec);
    if (!r) return r.error();
    auto found = ParseCheckpatch(r->output);
    // checkpatch exits 1 when it found something; anything else is its own failure.
    if (r->timed_out || (r->exit_code != 0 && (r->exit_code != 1 || found.empty())))
      return MakeError("checkpatch failed on " + file + ": " + util::OutputTail(r->output));
    all.insert(all.end(), found.begin(), found.end());
  }
  return all;
}

}  // namespace lab
