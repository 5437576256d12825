// toa-build deps: compiler, make, the kernel's exact headers and DKMS.
#include "cli/host_common.h"

namespace cli {
namespace {

class DepsCommand : public Subcommand {
 public:
  const char* name() const override { return "deps"; }
  const char* description() const override {
    return "Install what building the modules needs: compiler, make, exact kernel headers, DKMS";
  }
  void Configure(CLI::App& app) override {
    AddRootKernelOptions(app, args_);
    app.add_flag("--dry-run", args_.dry_run, "print the commands, one per line, and change nothing");
  }
  int Run(Context& ctx) override {
    if (auto u = CheckHostArgs(args_); !u) return UsageError(ctx, u.error().message);
    auto det = DetectHost(args_);
    if (!det) {
      *ctx.err << "toa-build deps: " << det.error().message << "\n";
      return 1;
    }
    bool changed = false;
    const auto& detection = det.value();
    if (int rc = RunSystemChange(ctx, name(), args_,
                                 [&](host::Executor& exec) { return host::RunDeps(exec, detection); }, &changed))
      return rc;
    if (!args_.dry_run && !changed) *ctx.out << "toa-build deps: everything is already installed\n";
    return 0;
  }

 private:
  HostArgs args_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeDepsCommand() { return std::make_unique<DepsCommand>(); }

}  // namespace cli
