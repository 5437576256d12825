// toa-build uninstall: unload, unregister and remove every file of ours.
#include "cli/host_common.h"
#include "host/installer.h"

namespace cli {
namespace {

class UninstallCommand : public Subcommand {
 public:
  const char* name() const override { return "uninstall"; }
  const char* description() const override {
    return "Unload the modules and remove everything install added (DKMS entry, autoload, options)";
  }
  void Configure(CLI::App& app) override {
    app.add_option("--root", args_.root, "change the system under DIR instead of /")->type_name("DIR");
    app.add_flag("--dry-run", args_.dry_run, "print the commands, one per line, and change nothing");
  }
  int Run(Context& ctx) override {
    if (args_.root != "/" && !args_.dry_run) {
      // Commands (apt, dkms, modprobe) would run on this machine, not in DIR.
      *ctx.err << "toa-build uninstall: --root " << args_.root
               << " changes files there but would run package and DKMS commands on this machine: add "
                  "--dry-run, or run `chroot " << args_.root << " toa-build uninstall`\n";
      return 1;
    }
    host::RootFs root(args_.root);
    if (!root.IsDir("/")) {
      *ctx.err << "toa-build uninstall: --root " << args_.root << " is not a directory\n";
      return 1;
    }
    util::RecordingProcessRunner recorder;
    util::ProcessRunner& runner = args_.dry_run ? recorder : *ctx.runner;
    host::Executor exec(root, runner, args_.dry_run);
    exec.OnAction([&ctx](const std::string& line) { *ctx.out << "+ " << line << std::endl; });
    auto s = host::RunUninstall(exec);
    if (args_.dry_run)
      for (const auto& line : exec.lines()) *ctx.out << line << "\n";
    if (!s) {
      *ctx.err << "toa-build uninstall: " << s.error().message << "\n";
      return 1;
    }
    if (!args_.dry_run)
      *ctx.out << (exec.changed() ? "toa-build uninstall: removed\n" : "toa-build uninstall: nothing installed\n");
    return 0;
  }

 private:
  HostArgs args_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeUninstallCommand() { return std::make_unique<UninstallCommand>(); }

}  // namespace cli
