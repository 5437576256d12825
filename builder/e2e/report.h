// The end-to-end test's guest protocol (builder/e2e): what the in-VM driver
// (`toa-e2e guest`) prints on the serial console, and the host's parser that
// turns one boot's console into a stage verdict. Pure functions over text, so
// every failure shape is unit-tested.
//
//   E2E-STEP {"stage":"install","step":"selftest","pass":true,"seconds":12.3,"detail":"..."}
//   E2E-LOG <a line of a running command's output>
//   E2E-DMESG-BEGIN / kernel log lines / E2E-DMESG-END
//   E2E-END {"stage":"install","pass":true}
#pragma once

#include <map>
#include <string>
#include <vector>

namespace e2e {

inline constexpr const char* kStepTag = "E2E-STEP ";
inline constexpr const char* kEndTag = "E2E-END ";
// Output of the guest's commands as they run (progress; never scanned for kernel faults).
inline constexpr const char* kLogTag = "E2E-LOG ";
inline constexpr const char* kDmesgBegin = "E2E-DMESG-BEGIN";
inline constexpr const char* kDmesgEnd = "E2E-DMESG-END";

struct Step {
  std::string stage;
  std::string name;
  bool passed = false;
  double seconds = 0;
  std::string detail;
};

// One console line for a step / for the end of a stage.
std::string FormatStep(const Step& step);
std::string FormatEnd(const std::string& stage, bool passed);

struct StageReport {
  std::vector<Step> steps;                 // in the order the guest ran them
  std::vector<std::string> kernel_faults;  // BUG, WARNING, Oops, ... (lab::IsKernelFault)
  bool saw_end = false;
  // Why the stage failed (empty when it passed); one line each.
  std::vector<std::string> failures;
  bool ok() const { return failures.empty(); }
};

// `stage`: the stage the host asked for; `timed_out`: QEMU hit its deadline.
StageReport ParseStage(const std::string& console, const std::string& stage, bool timed_out);

// The toa_e2e.* parameters of a kernel command line ("toa_e2e.stage=install"
// -> {"stage": "install"}); other parameters are ignored.
std::map<std::string, std::string> ParseCmdline(const std::string& cmdline);

// Whether /proc/modules text lists `module`.
bool ModuleListed(const std::string& proc_modules, const std::string& module);

}  // namespace e2e
