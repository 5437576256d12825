// Bear-style layering: Application -> Subcommand -> Command. Each subcommand
// is a small class that declares its options on a CLI11 App and runs.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "util/process.h"
#include "util/result.h"

namespace cli {

// What every subcommand gets from the application: the process runner
// (real, or recording for --dry-run) and the streams to print to.
struct Context {
  util::ProcessRunner* runner = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
};

class Subcommand {
 public:
  virtual ~Subcommand() = default;
  virtual const char* name() const = 0;
  virtual const char* description() const = 0;
  // Declare options on `app` (already created for this subcommand).
  virtual void Configure(CLI::App& app) = 0;
  // Returns the process exit code; on failure prints one line to ctx.err.
  virtual int Run(Context& ctx) = 0;
};

using SubcommandList = std::vector<std::unique_ptr<Subcommand>>;

// Each subcommand file defines a factory; app.cc lists them.
std::unique_ptr<Subcommand> MakeVerifyCommand();
std::unique_ptr<Subcommand> MakeMatrixCommand();
std::unique_ptr<Subcommand> MakeDetectCommand();
std::unique_ptr<Subcommand> MakeDepsCommand();
std::unique_ptr<Subcommand> MakeInstallCommand();
std::unique_ptr<Subcommand> MakeUninstallCommand();
std::unique_ptr<Subcommand> MakeStatusCommand();
std::unique_ptr<Subcommand> MakeSelftestCommand();
std::unique_ptr<Subcommand> MakeKernelCommand();

// Runs the application on argv; returns the exit code.
int RunApplication(int argc, char** argv, util::ProcessRunner& runner, std::ostream& out,
                   std::ostream& err);

}  // namespace cli
