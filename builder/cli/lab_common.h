// What `verify` and `matrix` share: the lab's options on the command line,
// and printing a run's reports.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/command.h"
#include "lab/matrix.h"
#include "lab/verify.h"

namespace cli {

struct LabFlags {
  std::string config;
  std::string method = "kbuild";
  std::string accel = "auto";
  bool icount = false;
  bool bench = false;
  int deadline_s = 300;
  std::string module_src;
  std::string lbsim;
  std::string module = "all";
  std::vector<std::string> cases;
  std::vector<std::string> lbsim_args;
  std::vector<std::string> sources;  // folders with kernel source tarballs (source rows)
  std::string junit;
  bool json = false;
  bool gzip = false;

  void Declare(CLI::App& app);
  // Options for the lab, or a one-line error.
  util::Result<lab::LabOptions> ToOptions() const;
  std::string ConfigPath() const;
};

// Checks --case names against lbsim's tables (`lbsim run --list`, and
// `--ipv6-disabled --list` for the short boot) and splits them between the
// row's two boots; an unknown name is an error. No --case: unchanged.
util::Status SelectCases(const LabFlags& flags, util::ProcessRunner& runner,
                         lab::LabOptions* options);

// Whether a report can be written to `path` (as util::WriteFileAtomic does),
// before a run that takes minutes finds out.
util::Status ProbeWritable(const std::string& path);

// Runs `rows`, prints JSON or the summary table to ctx.out, writes JUnit when
// asked; returns the exit code (0 only when every row passed).
int RunAndReport(Context& ctx, const LabFlags& flags, const std::vector<lab::KernelRow>& rows,
                 int jobs);

// The reporting half of RunAndReport: JUnit (when asked), then JSON or the
// summary on ctx.out. 1 when a report could not be written or a row failed.
int PrintReports(Context& ctx, const LabFlags& flags, const lab::MatrixReport& report);

}  // namespace cli
