// toa-build install: detect -> deps -> build (DKMS/kbuild/container) -> load
// -> autoload -> self-test; idempotent, undone on failure.
#include <sys/utsname.h>

#include "cli/host_common.h"

namespace cli {
namespace {

class InstallCommand : public Subcommand {
 public:
  const char* name() const override { return "install"; }
  const char* description() const override {
    return "Build, load and set up boot-time loading of the modules on this host (or --root)";
  }
  void Configure(CLI::App& app) override {
    AddRootKernelOptions(app, args_);
    app.add_option("--module", module_, "toa, uoa or all")->type_name("toa|uoa|all");
    app.add_flag("--dry-run", args_.dry_run, "print the commands, one per line, and change nothing");
    app.add_flag("--no-load", no_load_, "do not load the modules now (and skip the self-test)");
    app_trusted_ = app.add_option("--trusted-sources", trusted_,
                                  "the balancers' CIDRs (IPv4 and IPv6, at most 64, no host bits, no /0, no "
                                  "::ffff:a.b.c.d prefixes: IPv4 entries never trust IPv6 packets); options from "
                                  "other sources are ignored. Left out: keep what the last install set. "
                                  "--trusted-sources \"\" clears the filter: then ANY host can set client addresses")
        ->type_name("CIDR,...");
  }
  int Run(Context& ctx) override {
    auto fail = [&](const std::string& msg) {
      *ctx.err << "toa-build install: " << msg << "\n";
      return 1;
    };
    if (auto u = CheckHostArgs(args_); !u) return UsageError(ctx, u.error().message);
    auto modules = host::ParseModules(module_);
    if (!modules) return UsageError(ctx, modules.error().message);
    host::InstallOptions opts;
    opts.modules = modules.value();
    opts.no_load = no_load_;
    if (trusted_given_()) {
      // An empty value clears the filter (removes the options file).
      if (!trusted_.empty())
        if (auto s = host::ValidateTrustedSources(trusted_); !s) return UsageError(ctx, s.error().message);
      opts.trusted_sources = trusted_;
    }
    opts.source_dir = ModuleSourceDir();
    opts.lbsim = args_.root == "/" ? FindLbsim() : "";
    auto det = DetectHost(args_);
    if (!det) return fail(det.error().message);
    // Modules built for another kernel cannot load into the running one:
    // install them for that kernel's next boot only.
    bool other_kernel = false;
    if (args_.root == "/" && !no_load_) {
      struct utsname u {};
      if (::uname(&u) == 0 && det->kernel != u.release) {
        other_kernel = true;
        opts.no_load = true;
      }
    }
    bool changed = false;
    if (int rc = RunSystemChange(ctx, name(), args_,
                                 [&](host::Executor& exec) { return host::RunInstall(exec, det.value(), opts); },
                                 &changed))
      return rc;
    if (args_.dry_run) return 0;
    if (!changed) {
      *ctx.out << "toa-build install: already installed for " << det->kernel << "; nothing changed\n";
      return 0;
    }
    *ctx.out << "toa-build install: " << (module_ == "all" ? "toa, uoa" : module_) << " installed for "
             << det->kernel << " (" << det->profile.build << ", autoload " << det->profile.autoload << ")"
             << (no_load_ ? ", not loaded (--no-load)"
                 : other_kernel ? ", not loaded (not the running kernel: they load when it boots)"
                                : ", loaded")
             << "\n";
    if (!opts.no_load && opts.lbsim.empty())
      *ctx.err << "toa-build install: self-test skipped: lbsim not found next to toa-build\n";
    return 0;
  }

 private:
  bool trusted_given_() const { return app_trusted_ && app_trusted_->count() > 0; }
  HostArgs args_;
  std::string module_ = "all";
  bool no_load_ = false;
  std::string trusted_;
  CLI::Option* app_trusted_ = nullptr;
};

}  // namespace

std::unique_ptr<Subcommand> MakeInstallCommand() { return std::make_unique<InstallCommand>(); }

}  // namespace cli
