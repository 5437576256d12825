// `toa-build verify [--kernel ROW]`: build the modules for one kernel row and
// prove them in that kernel, booted in QEMU.
#include "cli/command.h"
#include "cli/lab_common.h"

namespace cli {
namespace {

class VerifyCommand : public Subcommand {
 public:
  const char* name() const override { return "verify"; }
  const char* description() const override {
    return "Build the modules for one kernel row and prove them in QEMU";
  }
  void Configure(CLI::App& app) override {
    app.add_option("--kernel", row_,
                   "Kernel row of the matrix file (e.g. debian-12); default: the file's default row");
    flags_.Declare(app);
  }
  int Run(Context& ctx) override {
    auto matrix = lab::LoadMatrix(flags_.ConfigPath());
    if (!matrix) {
      *ctx.err << "toa-build: " << matrix.error().message << "\n";
      return 2;
    }
    auto row = lab::FindRow(*matrix, row_.empty() ? matrix->default_row : row_);
    if (!row) {
      *ctx.err << "toa-build: " << row.error().message << "\n";
      return 2;
    }
    return RunAndReport(ctx, flags_, {*row}, 1);
  }

 private:
  std::string row_;
  LabFlags flags_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeVerifyCommand() { return std::make_unique<VerifyCommand>(); }

}  // namespace cli
