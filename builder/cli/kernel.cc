// toa-build kernel: the vendor guide's 2.6.32 path (SPEC user 4): TOA into a
// kernel tree, configure, build, and with --install the kernel, grub.conf and
// the boot-time `modprobe toa`. See kernel/flow.h for the steps.
#include <sys/utsname.h>

#include <thread>

#include "cli/host_common.h"
#include "kernel/flow.h"
#include "util/strings.h"

namespace cli {
namespace {

class KernelCommand : public Subcommand {
 public:
  const char* name() const override { return "kernel"; }
  const char* description() const override {
    return "Patch a 2.6.32 kernel tree with TOA (the LVS rs tree, kind set to 254), build it, and with --install "
           "install it, make it grub.conf's default with nohz=off and load toa at boot";
  }
  void Configure(CLI::App& app) override {
    app.add_option("--source", source_, "the unpacked kernel tree (absolute path)")->required()->type_name("DIR");
    app.add_option("--jobs", jobs_, "parallel make jobs (default: the CPUs here)")->type_name("N");
    app.add_option("--suffix", opts_.suffix, "added to EXTRAVERSION, so to `uname -r` (default -toa)");
    app.add_option("--config", opts_.config,
                   "the .config to start from (default: ROOT/boot/config-$(uname -r))")->type_name("FILE");
    app.add_flag("--install", opts_.install, "install the kernel, its modules, grub.conf and toa.modules");
    app.add_option("--root", root_, "the system to install into (default /)")->type_name("DIR");
    app.add_flag("--dry-run", dry_run_, "print the steps as exact commands and change nothing");
  }
  int Run(Context& ctx) override {
    HostArgs args;
    args.root = root_;
    if (auto s = CheckHostArgs(args); !s) return UsageError(ctx, s.error().message);
    opts_.jobs = jobs_ ? jobs_ : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    struct utsname u {};
    opts_.running_kernel = ::uname(&u) == 0 ? u.release : "";
    auto tree = kernel::InspectTree(source_);
    if (!tree) {
      *ctx.err << "toa-build kernel: step check: " << tree.error().message << "\n";
      return 1;
    }
    *ctx.out << "toa-build kernel: " << tree->dir << ": Linux " << tree->version.Text()
             << (tree->lvs_kind ? ", LVS TOA (kind " + std::to_string(*tree->lvs_kind) + ")" : ", no net/toa/")
             << "\n";
    host::RootFs tree_fs(tree->dir), root_fs(root_);
    util::RecordingProcessRunner recorder;
    util::ProcessRunner& runner = dry_run_ ? recorder : *ctx.runner;
    host::Executor tree_exec(tree_fs, runner, dry_run_), root_exec(root_fs, runner, dry_run_);
    auto echo = [&ctx](const std::string& line) { *ctx.out << "+ " << line << std::endl; };
    tree_exec.OnAction(echo);
    root_exec.OnAction(echo);
    auto r = kernel::RunKernelFlow(*tree, opts_, tree_exec, root_exec);
    if (dry_run_) {
      for (const auto& line : tree_exec.lines()) *ctx.out << line << "\n";
      for (const auto& line : root_exec.lines()) *ctx.out << line << "\n";
    }
    if (!r) {
      root_exec.Rollback();
      *ctx.err << "toa-build kernel: " << r.error().message << "\n";
      return 1;
    }
    if (dry_run_) return 0;
    *ctx.out << "toa-build kernel: built " << r->kernel_release;
    if (opts_.install)
      *ctx.out << ", installed; grub.conf boots it by default (entry " << r->grub_default
               << ", nohz=off); reboot, then `dmesg | grep 'TOA: toa loaded'`";
    *ctx.out << "\n";
    return 0;
  }

 private:
  std::string source_, root_ = "/";
  bool dry_run_ = false;
  int jobs_ = 0;  // 0: the CPUs here
  kernel::KernelFlowOptions opts_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeKernelCommand() { return std::make_unique<KernelCommand>(); }

}  // namespace cli
