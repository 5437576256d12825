// The console-result parser: turns what a guest printed on its serial console
// into per-case results and a row verdict (ARCHITECTURE.md, "Guest run").
// A pure function over captured text, so every failure shape is unit-tested.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lab {

struct CaseResult {
  std::string module;  // "toa", "uoa", or "lab" for the lab's own checks
  std::string name;    // the case
  bool passed = false;
  std::string detail;
  // "not_applicable" from lbsim: the case cannot hold on this kernel (the
  // reason is `detail`). Counts as not failed; reports show it apart.
  bool not_applicable = false;
};

struct ConsoleReport {
  std::vector<CaseResult> cases;          // from LBSIM-RESULT lines, in order
  std::vector<nlohmann::json> benches;    // LBSIM-BENCH payloads
  std::vector<std::string> kernel_faults;  // console/dmesg lines with BUG, WARNING, Oops, ...
  bool saw_begin = false;                 // LAB-BEGIN
  bool saw_done = false;                  // LBSIM-DONE
  bool saw_end = false;                   // LAB-END
  int done_passed = 0, done_failed = 0;   // as LBSIM-DONE counted them
  int rc = -1;                            // from LAB-END rc=N
  // Why the row failed (empty when it passed); each entry is one line.
  std::vector<std::string> failures;
  bool ok() const { return failures.empty(); }
};

// What /init ran: `lbsim run` (test cases, ending with LBSIM-DONE) or
// `lbsim bench` (LBSIM-BENCH lines only; each becomes a "bench:NAME" case that
// fails when lbsim reported an error for it).
enum class GuestMode { kRun, kBench };

// `timed_out`: the runner killed QEMU at its deadline.
ConsoleReport ParseConsole(const std::string& console, bool timed_out,
                           GuestMode mode = GuestMode::kRun);

// The lab's own row-level checks as cases (lab/boot, lab/kernel_log,
// lab/cases), so JSON and JUnit show why a row failed even when no case ran.
std::vector<CaseResult> LabCases(const ConsoleReport& report);

// True when a kernel log line shows a fault the lab must fail on.
bool IsKernelFault(const std::string& line);

}  // namespace lab
