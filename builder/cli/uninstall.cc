// toa-build uninstall: unload, unregister and remove every file of ours.
#include "cli/host_common.h"

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
    bool changed = false;
    if (int rc = RunSystemChange(ctx, name(), args_, host::RunUninstall, &changed)) return rc;
    if (!args_.dry_run)
      *ctx.out << (changed ? "toa-build uninstall: removed\n" : "toa-build uninstall: nothing installed\n");
    return 0;
  }

 private:
  HostArgs args_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeUninstallCommand() { return std::make_unique<UninstallCommand>(); }

}  // namespace cli
