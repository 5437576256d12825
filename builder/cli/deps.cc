// toa-build deps: compiler, make, the kernel's exact headers and DKMS.
#include "cli/host_common.h"
#include "host/installer.h"

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
    auto det = DetectHost(args_);
    if (!det) {
      *ctx.err << "toa-build deps: " << det.error().message << "\n";
      return 1;
    }
    if (args_.root != "/" && !args_.dry_run) {
      // Commands (apt, dkms, modprobe) would run on this machine, not in DIR.
      *ctx.err << "toa-build deps: --root " << args_.root
               << " changes files there but would run package and DKMS commands on this machine: add "
                  "--dry-run, or run `chroot " << args_.root << " toa-build deps`\n";
      return 1;
    }
    host::RootFs root(args_.root);
    util::RecordingProcessRunner recorder;
    util::ProcessRunner& runner = args_.dry_run ? recorder : *ctx.runner;
    host::Executor exec(root, runner, args_.dry_run);
    exec.OnAction([&ctx](const std::string& line) { *ctx.out << "+ " << line << std::endl; });
    auto s = host::RunDeps(exec, det.value());
    if (args_.dry_run)
      for (const auto& line : exec.lines()) *ctx.out << line << "\n";
    if (!s) {
      *ctx.err << "toa-build deps: " << s.error().message << "\n";
      return 1;
    }
    if (!args_.dry_run && !exec.changed()) *ctx.out << "toa-build deps: everything is already installed\n";
    return 0;
  }

 private:
  HostArgs args_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeDepsCommand() { return std::make_unique<DepsCommand>(); }

}  // namespace cli
