// The host half of the end-to-end test: for one release, provision its two
// kernel rows through the lab, make sure the VM image is cached, copy it for
// this run, put the binaries and module sources on a read-only payload disk,
// and boot the stages in QEMU (install -> reboot -> upgraded -> removed), each
// boot with a deadline, its console saved and parsed.
#pragma once

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "e2e/config.h"
#include "e2e/report.h"
#include "lab/qemu.h"
#include "util/process.h"

namespace e2e {

struct FlowOptions {
  std::string cache_root;
  std::string source_dir;  // the toa-build tree (module/, distros/)
  std::string toa_build;   // static toa-build for the guest
  std::string lbsim;       // static lbsim
  std::string driver;      // static toa-e2e (this program)
  std::string log_dir;     // consoles and the run's report
  std::string qemu = "qemu-system-x86_64";
  lab::Accel accel = lab::Accel::kAuto;
  int memory_mb = 2048;
  int smp = 2;
  std::chrono::seconds long_deadline{std::chrono::minutes(25)};  // stages that build modules
  std::chrono::seconds short_deadline{std::chrono::minutes(8)};
  bool keep = false;  // keep the run's disk
};

// One line of the final report.
struct StepResult {
  std::string release;
  std::string stage;  // "host" for the host's own steps
  std::string step;
  bool passed = false;
  double seconds = 0;
  std::string detail;
};

struct ReleaseResult {
  std::string release;
  std::vector<StepResult> steps;
  double seconds = 0;
  bool ok() const;
};

ReleaseResult RunRelease(const ReleaseSpec& spec, const Config& config, const FlowOptions& opts,
                         util::ProcessRunner& runner, std::ostream& out);

// The QEMU command line of one boot (pure; tested).
struct BootSpec {
  std::string vmlinuz, initrd, disk, payload;
  std::string stage, kernel, upgrade_kernel;
  std::vector<std::string> upgrade_packages;
};
std::vector<std::string> BootArgv(const FlowOptions& opts, lab::Accel accel, const BootSpec& boot);

// Removes runs/e2e-NAME-PID folders whose PID is not `alive`.
void RemoveDeadRuns(const std::string& runs_dir, const std::function<bool(long)>& alive);

// Human-readable summary lines, one per step, then a verdict per release.
std::string Summary(const std::vector<ReleaseResult>& results);

}  // namespace e2e
