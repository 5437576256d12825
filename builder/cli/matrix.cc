// `toa-build matrix`: every row of the matrix file (or those named), in
// parallel, with a report per kernel x case.
#include <thread>

#include "cli/command.h"
#include "cli/lab_common.h"

namespace cli {
namespace {

class MatrixCommand : public Subcommand {
 public:
  const char* name() const override { return "matrix"; }
  const char* description() const override {
    return "Build and prove the modules on every kernel row of the matrix file";
  }
  void Configure(CLI::App& app) override {
    app.add_option("--rows", rows_,
                   "Comma-separated rows (default: every non-optional row; `all`: every row)");
    jobs_ = std::max(1u, std::thread::hardware_concurrency());
    app.add_option("--jobs", jobs_, "Rows run at the same time (default: the number of cores)")
        ->check(CLI::Range(1, 64));
    flags_.Declare(app);
  }
  int Run(Context& ctx) override {
    auto matrix = lab::LoadMatrix(flags_.ConfigPath());
    if (!matrix) {
      *ctx.err << "toa-build: " << matrix.error().message << "\n";
      return 2;
    }
    auto rows = lab::SelectRows(*matrix, rows_);
    if (!rows) {
      *ctx.err << "toa-build: " << rows.error().message << "\n";
      return 2;
    }
    return RunAndReport(ctx, flags_, *rows, jobs_);
  }

 private:
  std::string rows_;
  int jobs_ = 1;
  LabFlags flags_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeMatrixCommand() { return std::make_unique<MatrixCommand>(); }

}  // namespace cli
