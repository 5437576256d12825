#include "cli/lab_common.h"

#include <unistd.h>

#include <iostream>

#include "lab/modbuild.h"
#include "lab/paths.h"
#include "lab/report.h"
#include "util/fs.h"

namespace cli {

void LabFlags::Declare(CLI::App& app) {
  app.add_option("--config", config, "Kernel matrix file (default: distros/kernels.yaml)");
  app.add_option("--method", method,
                 "How to build the modules: kbuild, dkms, or both (both are built; the guest "
                 "boots the Kbuild ones)")
      ->check(CLI::IsMember({"kbuild", "dkms", "both"}));
  app.add_option("--accel", accel, "QEMU accelerator: auto (probe KVM, fall back to TCG), kvm, tcg")
      ->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  app.add_flag("--icount", icount,
               "Instruction-clocked guest (-icount shift=0,sleep=off) for repeatable in-guest "
               "benchmarks; implies TCG");
  app.add_flag("--bench", bench,
               "Run lbsim's in-guest benchmarks (lbsim bench) instead of the cases; implies "
               "--icount");
  app.add_option("--deadline", deadline_s, "Seconds a guest may run before it is killed")
      ->check(CLI::Range(5, 24 * 3600));
  app.add_option("--module-src", module_src, "Module tree to build (default: the project's module/)");
  app.add_option("--lbsim", lbsim, "Static lbsim to run in the guest (default: the build's lbsim)");
  app.add_option("--module", module, "Modules to test in the guest: toa, uoa or all")
      ->check(CLI::IsMember({"toa", "uoa", "all"}));
  app.add_option("--case", cases, "Only these lbsim cases (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--lbsim-arg", lbsim_args,
                 "Extra argument for `lbsim run` in the guest (repeatable), e.g. --lbsim-arg=--no-load")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--junit", junit, "Write a JUnit XML report to FILE");
  app.add_flag("--json", json, "Print one JSON object instead of the summary table");
  app.add_flag("--gzip-initramfs", gzip, "Compress the guest's initramfs with gzip -1");
}

std::string LabFlags::ConfigPath() const {
  return config.empty() ? lab::DefaultMatrixPath() : config;
}

util::Result<lab::LabOptions> LabFlags::ToOptions() const {
  lab::LabOptions o = lab::DefaultLabOptions();
  if (method == "both") {
    o.methods = {lab::BuildMethod::kKbuild, lab::BuildMethod::kDkms};
  } else {
    auto m = lab::ParseBuildMethod(method);
    if (!m) return util::MakeError(m.error().message);
    o.methods = {*m};
  }
  auto a = lab::ParseAccel(accel);
  if (!a) return util::MakeError(a.error().message);
  o.qemu.accel = *a;
  o.qemu.icount = icount || bench;
  o.mode = bench ? lab::GuestMode::kBench : lab::GuestMode::kRun;
  o.qemu.deadline = std::chrono::seconds(deadline_s);
  if (!module_src.empty()) o.module_src = module_src;
  if (!lbsim.empty()) o.lbsim = lbsim;
  if (module != "all") o.lbsim_args = {"--module", module};
  for (const auto& c : cases) {
    o.lbsim_args.push_back("--case");
    o.lbsim_args.push_back(c);
  }
  o.lbsim_args.insert(o.lbsim_args.end(), lbsim_args.begin(), lbsim_args.end());
  o.gzip_initramfs = gzip;
  if (::access(o.lbsim.c_str(), X_OK) != 0)
    return util::MakeError("no lbsim at " + o.lbsim + ": build it (ninja lbsim) or pass --lbsim FILE");
  if (::access((o.module_src).c_str(), R_OK) != 0)
    return util::MakeError("no module sources at " + o.module_src + ": pass --module-src DIR");
  return o;
}

int RunAndReport(Context& ctx, const LabFlags& flags, const std::vector<lab::KernelRow>& rows,
                 int jobs) {
  auto options = flags.ToOptions();
  if (!options) {
    *ctx.err << "toa-build: " << options.error().message << "\n";
    return 2;
  }
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(r.name);
  // Live progress goes to stderr so stdout stays one JSON object or the table.
  bool terminal = ctx.err == &std::cerr && ::isatty(STDERR_FILENO);
  lab::ProgressDisplay progress(*ctx.err, terminal, names);
  lab::MatrixReport report = lab::RunMatrix(rows, *options, jobs, *ctx.runner, &progress);

  if (!flags.junit.empty()) {
    if (auto w = util::WriteFileAtomic(flags.junit, lab::ToJunit(report)); !w)
      *ctx.err << "toa-build: cannot write JUnit report: " << w.error().message << "\n";
  }
  if (flags.json) {
    *ctx.out << lab::ToJson(report).dump(2) << "\n";
  } else {
    // One row (verify): show what each case saw, i.e. the recovered addresses.
    if (report.rows.size() == 1) *ctx.out << "\n" << lab::CaseListing(report);
    *ctx.out << "\n" << lab::SummaryTable(report);
  }
  if (!report.ok()) {
    int failed = 0;
    for (const auto& r : report.rows)
      if (!r.ok) ++failed;
    *ctx.err << "toa-build: " << failed << " of " << report.rows.size() << " row(s) failed\n";
    return 1;
  }
  return 0;
}

}  // namespace cli
