// What the host subcommands (detect, deps, install, uninstall, status,
// selftest) share: --root/--kernel, loading the profiles, finding the module
// sources and the simulator.
#pragma once

#include <string>

#include "cli/command.h"
#include "host/profile.h"

namespace cli {

struct HostArgs {
  std::string root = "/";
  std::string kernel;
  bool dry_run = false;
  bool json = false;
};

void AddRootKernelOptions(CLI::App& app, HostArgs& args);

// Detection for --root/--kernel, or a one-line error.
util::Result<host::Detection> DetectHost(const HostArgs& args);

// The module sources installed on hosts (module/ of the source tree).
std::string ModuleSourceDir();

// lbsim next to the toa-build binary, else in the build tree; empty when absent.
std::string FindLbsim();

}  // namespace cli
