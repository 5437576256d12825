// deps / install / uninstall / status on a host (or a root): plans that run
// every command through a ProcessRunner. With dry_run the commands and file
// writes are only listed, in order, one per line. A failed install undoes
// what this run did, in reverse, so nothing is left half-installed.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "host/profile.h"
#include "host/rootfs.h"
#include "util/process.h"
#include "util/result.h"

namespace host {

// Runs or lists actions against a root, remembering how to undo them.
class Executor {
 public:
  Executor(const RootFs& root, util::ProcessRunner& runner, bool dry_run);

  bool dry_run() const { return dry_run_; }
  const RootFs& root() const { return root_; }
  // The plan (dry run) or what was done (real run), one line per action.
  const std::vector<std::string>& lines() const { return lines_; }
  bool changed() const { return !lines_.empty(); }

  util::Result<util::ProcessResult> Run(const std::vector<std::string>& argv,
                                        std::chrono::seconds timeout = std::chrono::seconds(1800));
  // The same with a full spec (cwd, environment, stdin, output lines); the
  // plan line is the command, plus `note` when given.
  util::Result<util::ProcessResult> Run(const util::ProcessSpec& spec, const std::string& note);
  // Writes when the content or mode differs; the undo restores the old file.
  util::Result<bool> Write(const std::string& path, const std::string& content, int mode = 0644);
  util::Status Remove(const std::string& path);
  util::Status RemoveTree(const std::string& path);
  util::Result<bool> SyncTree(const std::string& local_dir, const std::string& path);

  void OnUndo(std::function<void()> undo) { undo_.push_back(std::move(undo)); }
  // Real runs: called with each action as it starts (progress for operators).
  void OnAction(std::function<void(const std::string&)> cb) { on_action_ = std::move(cb); }
  // Undoes this run's actions, newest first (real runs only).
  void Rollback();

 private:
  const RootFs& root_;
  util::ProcessRunner& runner_;
  bool dry_run_;
  std::vector<std::string> lines_;
  std::vector<std::function<void()>> undo_;
  std::function<void(const std::string&)> on_action_;
  void Note(std::string line);
};

struct InstallOptions {
  std::vector<std::string> modules{"toa", "uoa"};
  bool no_load = false;
  std::optional<std::string> trusted_sources;  // nullopt: keep what is configured
  std::string source_dir;                      // the module sources to install (module/)
  std::string lbsim;                           // simulator for the self-test; empty: none
};

// /var/lib/toa-build/state.json: what the last install recorded.
struct InstallState {
  bool present = false;
  std::string build, autoload, kernel, trusted_sources;
  std::vector<std::string> modules;
};
// The file's content checked key by key (types, known values); the error
// says which key is wrong.
util::Result<InstallState> ParseInstallState(const std::string& text);
// Missing: an empty state. Corrupt: one line naming the file and the fix.
util::Result<InstallState> ReadInstallState(const RootFs& root);

// `--module toa|uoa|all` → module list, or an error.
util::Result<std::vector<std::string>> ParseModules(const std::string& value);
// The modules' trusted_sources limit (module/common/cidr.h TB_CIDR_MAX).
inline constexpr size_t kMaxTrustedSources = 64;
// Comma-separated IPv4/IPv6 CIDRs, or an error naming the bad one: at most
// kMaxTrustedSources, no host bits, no /0, no IPv4-mapped IPv6 prefix.
util::Status ValidateTrustedSources(const std::string& value);

// Installs what is missing of compiler, make, headers, DKMS (and the repo DKMS
// comes from). The error names the step and the fix.
util::Status RunDeps(Executor& exec, const Detection& det);

util::Status RunInstall(Executor& exec, const Detection& det, const InstallOptions& opts);

util::Status RunUninstall(Executor& exec);

struct ModuleStatus {
  std::string name;
  std::string module_file;  // for the kernel, empty when not built/installed
  bool loaded = false;
  bool autoload = false;
  std::string trusted_sources;
};
struct HostStatus {
  std::string kernel;
  std::string build;
  std::string autoload;
  bool dkms_registered = false;
  // False when the running kernel (a /proc is there) has no /proc/modules:
  // built without loadable module support, nothing can be loaded.
  bool module_support = true;
  std::vector<ModuleStatus> modules;
  bool ok() const;
  std::string Problem() const;  // one line, empty when ok
};
util::Result<HostStatus> CollectStatus(const RootFs& root, const Detection& det);

// Module file of `module` installed for `kernel` (DKMS, kbuild or container
// locations), or empty.
std::string FindModuleFile(const RootFs& root, const std::string& kernel, const std::string& module);

// The self-test command for a simulator binary.
std::vector<std::string> SelftestCommand(const std::string& lbsim, const std::string& module);

}  // namespace host
