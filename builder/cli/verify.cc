// Placeholder until the lab lands: replaced by the real verify command.
#include "cli/command.h"
namespace cli {
namespace {
class VerifyCommand : public Subcommand {
 public:
  const char* name() const override { return "verify"; }
  const char* description() const override { return "Build the modules for one kernel row and prove them in QEMU"; }
  void Configure(CLI::App&) override {}
  int Run(Context& ctx) override { *ctx.err << "toa-build verify: not implemented yet\n"; return 1; }
};
}  // namespace
std::unique_ptr<Subcommand> MakeVerifyCommand() { return std::make_unique<VerifyCommand>(); }
std::unique_ptr<Subcommand> MakeMatrixCommand() { return std::make_unique<VerifyCommand>(); }
}  // namespace cli
