// `toa-build matrix`: every row of the matrix file (or those named), in
// parallel, with a report per kernel x case.
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
    rows_option_ = app.add_option(
        "--rows", rows_, "Comma-separated rows (default: every non-optional row; `all`: every row)");
    app.add_option("--jobs", jobs_,
                   "Rows run at the same time (default: every row, as memory allows: a TCG "
                   "guest is one thread that often waits, so more guests than cores pay off)")
        ->check(CLI::Range(1, 64));
    flags_.Declare(app);
  }
  int Run(Context& ctx) override {
    auto matrix = lab::LoadMatrix(flags_.ConfigPath());
    if (!matrix) {
      *ctx.err << "toa-build: " << matrix.error().message << "\n";
      return 2;
    }
    // Given but empty (`--rows ""`, an unset variable in a script) is a
    // mistake, as `--rows ,` is, not a request for every row.
    if (rows_option_->count() > 0 && rows_.find_first_not_of(" \t") == std::string::npos) {
      *ctx.err << "toa-build: --rows is empty; name rows (e.g. --rows debian-12,debian-13), "
                  "`all`, or leave --rows out for every default row\n";
      return 2;
    }
    auto rows = lab::SelectRows(*matrix, rows_);
    if (!rows) {
      *ctx.err << "toa-build: " << rows.error().message << "\n";
      return 2;
    }
    int jobs = jobs_ ? jobs_
                     : lab::DefaultJobs(static_cast<int>(rows->size()), lab::MemAvailableMb(),
                                        lab::RowGuestMemoryMb(lab::QemuOptions{}.memory_mb));
    return RunAndReport(ctx, flags_, *rows, jobs);
  }

 private:
  std::string rows_;
  CLI::Option* rows_option_ = nullptr;
  int jobs_ = 0;  // 0: lab::DefaultJobs
  LabFlags flags_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeMatrixCommand() { return std::make_unique<MatrixCommand>(); }

}  // namespace cli
