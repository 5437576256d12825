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
  std::string junit;
  bool json = false;
  bool gzip = false;

  void Declare(CLI::App& app);
  // Options for the lab, or a one-line error.
  util::Result<lab::LabOptions> ToOptions() const;
  std::string ConfigPath() const;
};

// Runs `rows`, prints JSON or the summary table to ctx.out, writes JUnit when
// asked; returns the exit code (0 only when every row passed).
int RunAndReport(Context& ctx, const LabFlags& flags, const std::vector<lab::KernelRow>& rows,
                 int jobs);

}  // namespace cli
