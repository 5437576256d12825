#include "cli/lab_common.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "lab/modbuild.h"
#include "lab/paths.h"
#include "lab/report.h"
#include "util/fs.h"
#include "util/strings.h"

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
  app.add_option("--sources", sources,
                 "Folder holding kernel source tarballs for rows built from source (repeatable; searched "
                 "before $TOA_BUILD_KERNEL_SOURCES and the cache's sources/)");
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
  // --case names are checked and split between the two boots by
  // SelectCases (they need lbsim's tables).
  if (bench) o.ipv6_disabled_boot = false;
  o.lbsim_args.insert(o.lbsim_args.end(), lbsim_args.begin(), lbsim_args.end());
  o.gzip_initramfs = gzip;
  for (const auto& dir : sources) {
    if (dir.empty() || ::access(dir.c_str(), R_OK | X_OK) != 0)
      return util::MakeError("--sources " + util::Printable(dir, 80) +
                             " is not a readable folder; pass the folder holding the kernel tarballs");
    o.source_dirs.push_back(dir);
  }
  if (::access(o.lbsim.c_str(), X_OK) != 0)
    return util::MakeError("no lbsim at " + o.lbsim + ": build it (ninja lbsim) or pass --lbsim FILE");
  if (::access((o.module_src).c_str(), R_OK) != 0)
    return util::MakeError("no module sources at " + o.module_src + ": pass --module-src DIR");
  return o;
}

namespace {

// "module name" lines of `lbsim run|bench [--ipv6-disabled] --list`.
util::Result<std::set<std::string>> ListCases(util::ProcessRunner& runner, const std::string& lbsim,
                                              const std::string& subcommand,
                                              const std::string& module, bool ipv6_disabled) {
  util::ProcessSpec list;
  list.argv = {lbsim, subcommand, "--list", "--module", module};
  if (ipv6_disabled) list.argv.push_back("--ipv6-disabled");
  list.timeout = std::chrono::seconds(30);
  auto r = runner.RunChecked(list, "list lbsim's cases");
  if (!r) return r.error();
  std::set<std::string> names;
  std::istringstream in(r->output);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string mod, name, extra;
    if (fields >> mod >> name && !(fields >> extra)) names.insert(name);
  }
  return names;
}

}  // namespace

util::Status SelectCases(const LabFlags& flags, util::ProcessRunner& runner,
                         lab::LabOptions* options) {
  if (flags.cases.empty()) return util::Ok{};
  std::string sub = flags.bench ? "bench" : "run";
  auto main = ListCases(runner, options->lbsim, sub, flags.module, false);
  if (!main) return main.error();
  std::set<std::string> second;
  if (!flags.bench) {
    auto listed = ListCases(runner, options->lbsim, sub, flags.module, true);
    if (!listed) return listed.error();
    second = *listed;
  }
  options->cases.clear();
  options->ipv6_disabled_cases.clear();
  for (const auto& name : flags.cases) {
    bool in_main = main->count(name) > 0, in_second = second.count(name) > 0;
    if (!in_main && !in_second)
      return util::MakeError("unknown --case `" + util::Printable(name, 80) + "` for --module " + flags.module +
                             "; list the names with `" + options->lbsim + " " + sub +
                             " --list`" + (flags.bench ? "" : " (and --ipv6-disabled --list)"));
    if (in_main) options->cases.push_back(name);
    if (in_second) options->ipv6_disabled_cases.push_back(name);
  }
  options->main_boot = !options->cases.empty();
  options->ipv6_disabled_boot = !flags.bench && !options->ipv6_disabled_cases.empty();
  return util::Ok{};
}

util::Status ProbeWritable(const std::string& path) {
  std::error_code ec;
  if (path.empty()) return util::MakeError("the path is empty");
  std::filesystem::path target(path);
  if (std::filesystem::is_directory(target, ec))
    return util::MakeError(path + " is a directory");
  // As util::WriteFileAtomic writes: a temporary file beside the target,
  // parent folders made first.
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  std::string probe = path + ".probe." + std::to_string(::getpid());
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return util::MakeError("cannot write " + path + ": " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
  return util::Ok{};
}

int RunAndReport(Context& ctx, const LabFlags& flags, const std::vector<lab::KernelRow>& rows,
                 int jobs) {
  auto options = flags.ToOptions();
  if (!options) {
    *ctx.err << "toa-build: " << options.error().message << "\n";
    return 2;
  }
  if (!flags.junit.empty()) {
    if (auto st = ProbeWritable(flags.junit); !st) {
      *ctx.err << "toa-build: --junit " << util::Printable(flags.junit, 80) << ": " << st.error().message
               << "; pass a writable file path\n";
      return 2;
    }
  }
  if (auto st = SelectCases(flags, *ctx.runner, &*options); !st) {
    *ctx.err << "toa-build: " << st.error().message << "\n";
    return 2;
  }
  // Ctrl-C, SIGTERM: the guests and scratch folders go with the tool.
  if (dynamic_cast<util::SystemProcessRunner*>(ctx.runner))
    util::InstallInterruptHandler("toa-build");
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(r.name);
  // Live progress goes to stderr so stdout stays one JSON object or the table.
  bool terminal = ctx.err == &std::cerr && ::isatty(STDERR_FILENO);
  lab::ProgressDisplay progress(*ctx.err, terminal, names);
  lab::MatrixReport report = lab::RunMatrix(rows, *options, jobs, *ctx.runner, &progress);

  return PrintReports(ctx, flags, report);
}

int PrintReports(Context& ctx, const LabFlags& flags, const lab::MatrixReport& report) {
  bool reports_written = true;
  if (!flags.junit.empty()) {
    if (auto w = util::WriteFileAtomic(flags.junit, lab::ToJunit(report)); !w) {
      *ctx.err << "toa-build: cannot write the JUnit report: " << w.error().message << "\n";
      reports_written = false;
    }
  }
  if (flags.json) {
    *ctx.out << lab::ToJson(report).dump(2) << "\n";
  } else {
    // One row (verify): show what each case saw, i.e. the recovered addresses.
    if (report.rows.size() == 1) *ctx.out << "\n" << lab::CaseListing(report);
    *ctx.out << "\n" << lab::SummaryTable(report);
  }
  ctx.out->flush();
  if (ctx.out->fail()) {
    *ctx.err << "toa-build: cannot write the " << (flags.json ? "JSON report" : "summary")
             << " to standard output\n";
    reports_written = false;
  }
  if (!report.ok()) {
    int failed = 0;
    for (const auto& r : report.rows)
      if (!r.ok) ++failed;
    *ctx.err << "toa-build: " << failed << " of " << report.rows.size() << " row(s) failed\n";
    return 1;
  }
  return reports_written ? 0 : 1;
}

}  // namespace cli
