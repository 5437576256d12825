// What the host subcommands (detect, deps, install, uninstall, status,
// selftest) share: --root/--kernel, loading the profiles, finding the module
// sources and the simulator.
#pragma once

#include <functional>
#include <string>

#include "cli/command.h"
#include "host/installer.h"
#include "host/profile.h"

namespace cli {

struct HostArgs {
  std::string root = "/";
  std::string kernel;
  bool dry_run = false;
  bool json = false;
};

void AddRootKernelOptions(CLI::App& app, HostArgs& args);

// --root and --kernel checked before anything is read (an empty or missing
// --root, a --kernel that is no kernel release): usage errors.
util::Status CheckHostArgs(const HostArgs& args);

// A usage error: prints `toa-build: MESSAGE` and returns 2 (team convention:
// usage errors exit 2, failures while running exit 1).
int UsageError(Context& ctx, const std::string& message);

// Detection for --root/--kernel, or a one-line error.
util::Result<host::Detection> DetectHost(const HostArgs& args);

// What deps, install and uninstall share: refuse --root without --dry-run
// (the commands would run on this machine, not in DIR), then run `plan`
// through an Executor that records under --dry-run and echoes each action
// otherwise; the dry-run plan is printed, one command per line. Returns the
// exit code: 0, 1 after printing "toa-build NAME: reason", 2 on a usage
// error. `changed` (if given) says whether a real run changed anything.
int RunSystemChange(Context& ctx, const char* command, const HostArgs& args,
                     const std::function<util::Status(host::Executor&)>& plan,
                     bool* changed = nullptr);

// The module sources installed on hosts (module/ of the source tree).
std::string ModuleSourceDir();

// lbsim next to the toa-build binary, else in the build tree; empty when absent.
std::string FindLbsim();

}  // namespace cli
