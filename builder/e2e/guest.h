// The in-VM half of the end-to-end test: `toa-e2e guest`, started at boot by
// the image's toa-e2e.service. It reads its stage from the kernel command line
// (toa_e2e.stage=...), runs that stage's steps (toa-build, apt, checks) through
// the process layer with a deadline each, prints one E2E-STEP line per step,
// the kernel log, and E2E-END; the unit then powers the VM off.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "e2e/report.h"
#include "util/process.h"

namespace e2e {

// Stages in the order the host boots them.
inline const std::vector<std::string> kStages = {"install", "reboot", "upgraded", "removed"};

// Files and folders `toa-build install` writes on a Debian host (DKMS build,
// modules-load.d autoload); none may remain after `uninstall`.
std::vector<std::string> InstalledPaths();

struct GuestParams {
  std::string stage;
  std::string kernel;                         // the kernel this boot must run
  std::string upgrade_kernel;                 // kver of the upgrade
  std::vector<std::string> upgrade_packages;  // what apt installs for it
};

// From the toa_e2e.* parameters, or an error naming the missing one.
util::Result<GuestParams> ParamsFromCmdline(const std::map<std::string, std::string>& params);

class GuestDriver {
 public:
  GuestDriver(util::ProcessRunner& runner, std::ostream& out, std::string payload_dir, std::string root = "/");
  // Runs the stage; returns whether every step passed. Always prints E2E-END.
  bool Run(const GuestParams& params);

 private:
  util::ProcessRunner& runner_;
  std::ostream& out_;
  std::string payload_;
  std::string root_;
  std::string stage_;
  bool all_ok_ = true;

  void Report(const std::string& name, bool passed, double seconds, const std::string& detail);
  util::ProcessResult Command(const std::vector<std::string>& argv, std::chrono::seconds timeout);
  bool ToaBuild(const std::string& step, const std::vector<std::string>& args, std::chrono::seconds timeout,
                util::ProcessResult* out = nullptr);
  bool CheckKernel(const std::string& want);
  bool CheckLoaded(const std::string& step, bool want_loaded);
  void CheckSigned();
  void DumpKernelLog();
};

}  // namespace e2e
