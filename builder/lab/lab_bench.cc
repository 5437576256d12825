// The lab's benchmark (not a test): per row, how far the lab's module build
// and its boot-to-results are from their floors.
//   build floor: a plain `make -C HEADERS M=DIR modules` of the same sources in
//                the row's warm build root, run directly (make time only).
//   boot floor:  the row's kernel booted with busybox and an /init that only
//                powers off (QEMU wall time).
//   lab:         VerifyRow with a warm cache: BuildModules, then initramfs +
//                QEMU up to the parsed results, with lbsim running a small
//                selection of cases (default: toa/ipv4_client).
//   kernel:      rows built from source: the cached kernel's cold build time
//                (recorded when it was built), against its 10-minute target.
// Each figure is the best of --repeat runs. Target: within 1.3x of the floor.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/filesystem.hpp>

#include "lab/initramfs.h"
#include "lab/matrix.h"
#include "lab/paths.h"
#include "lab/provision.h"
#include "lab/qemu.h"
#include "lab/verify.h"

namespace fs = boost::filesystem;

namespace {

struct Figures {
  double build_lab = 1e9, build_floor = 1e9;
  double boot_lab = 1e9, boot_floor = 1e9, tests = 0;
  double kernel_build = 0;  // source rows only
  std::string kernel, error;
};

util::Result<double> BuildFloor(const lab::ProvisionedKernel& k, const std::string& module_src,
                                util::ProcessRunner& runner, const std::string& cache_root) {
  std::string in_root = "/build/" + k.row + "/bench-floor-" + std::to_string(::getpid());
  fs::path dest = fs::path(k.build_root + in_root);
  boost::system::error_code ec;
  fs::remove_all(dest, ec);
  fs::create_directories(dest, ec);
  for (fs::recursive_directory_iterator it(module_src, ec), end; !ec && it != end; it.increment(ec)) {
    fs::path rel = fs::relative(it->path(), module_src);
    if (fs::is_directory(it->path())) {
      fs::create_directories(dest / rel, ec);
    } else {
      std::string name = it->path().filename().string();
      if (name.size() > 2 && (name.substr(name.size() - 2) == ".o" || name.find(".ko") != std::string::npos ||
                              name.find(".cmd") != std::string::npos || name.find(".mod") != std::string::npos))
        continue;  // build products of someone's manual build
      fs::copy_file(it->path(), dest / rel, fs::copy_option::overwrite_if_exists, ec);
    }
  }
  if (ec) return util::MakeError("copy " + module_src + ": " + ec.message());
  auto session = lab::RootSession::Enter(k.build_root, cache_root, runner);
  if (!session) return util::MakeError(session.error().message);
  auto make = session->Run({"make", "-C", k.headers_dir, "M=" + in_root, "modules"},
                           std::chrono::minutes(20), "floor make");
  fs::remove_all(dest, ec);
  if (!make) return util::MakeError(make.error().message);
  return make->seconds;
}

util::Result<double> BootFloor(const lab::ProvisionedKernel& k, const lab::QemuOptions& base,
                               util::ProcessRunner& runner, const std::string& work) {
  lab::InitramfsSpec spec;
  spec.output = work + "/bare.cpio";
  spec.work_dir = work + "/kmod";
  spec.kernel_modules.clear();
  spec.init_script = lab::GenerateBareInit();
  auto initramfs = lab::BuildInitramfs(spec, runner);
  if (!initramfs) return util::MakeError(initramfs.error().message);
  lab::QemuOptions q = base;
  q.kernel = k.vmlinuz;
  q.initrd = initramfs->path;
  auto run = lab::RunGuest(q, runner);
  if (!run) return util::MakeError(run.error().message);
  if (run->timed_out || run->console.find("LAB-END rc=0") == std::string::npos)
    return util::MakeError("bare boot did not reach its /init: " + util::OutputTail(run->console));
  return run->seconds;
}

std::string Fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"toa-build lab benchmark: module build and boot-to-results vs their floors"};
  std::string config = lab::DefaultMatrixPath(), rows_list, accel = "auto";
  std::vector<std::string> cases{"ipv4_client"};
  std::string module = "toa";
  int repeat = 2;
  bool icount = false;
  lab::LabOptions options = lab::DefaultLabOptions();
  app.add_option("--config", config, "Kernel matrix file");
  app.add_option("--rows", rows_list, "Comma-separated rows (default: every non-optional row)");
  app.add_option("--repeat", repeat, "Runs per figure; the best counts")->check(CLI::Range(1, 20));
  app.add_option("--accel", accel, "auto, kvm or tcg")->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  app.add_flag("--icount", icount, "Instruction-clocked guests");
  app.add_option("--module", module, "lbsim --module for the lab boot");
  app.add_option("--case", cases, "lbsim cases for the lab boot")->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--module-src", options.module_src, "Module tree to build");
  app.add_option("--lbsim", options.lbsim, "Static lbsim");
  app.add_option("--sources", options.source_dirs, "Folders with kernel source tarballs (source rows)");
  CLI11_PARSE(app, argc, argv);

  auto matrix = lab::LoadMatrix(config);
  if (!matrix) {
    std::cerr << "lab_bench: " << matrix.error().message << "\n";
    return 2;
  }
  auto rows = lab::SelectRows(*matrix, rows_list);
  if (!rows) {
    std::cerr << "lab_bench: " << rows.error().message << "\n";
    return 2;
  }
  options.qemu.accel = *lab::ParseAccel(accel);
  options.qemu.icount = icount;
  options.lbsim_args = {"--module", module};
  options.cases = cases;  // baked into /init
  // The main boot's figures; the short ipv6.disable=1 boot runs beside it in
  // a matrix and is not what this compares against its floors.
  options.ipv6_disabled_boot = false;
  util::SystemProcessRunner runner;
  std::string work = options.cache_root + "/runs/bench-" + std::to_string(::getpid());
  options = lab::PrepareGuestTools(options, runner, work + "/tools");

  std::vector<std::pair<std::string, Figures>> all;
  for (const auto& row : *rows) {
    Figures f;
    std::cerr << "[" << row.name << "] provisioning (warm cache expected)\n";
    lab::ProvisionOptions provision;
    provision.source_dirs = options.source_dirs;
    auto k = lab::ProvisionRow(row, runner, options.cache_root, nullptr, provision);
    if (!k) {
      f.error = k.error().message;
      all.emplace_back(row.name, f);
      continue;
    }
    f.kernel = k->kver;
    f.kernel_build = k->kernel_build_s;
    lab::QemuOptions q = options.qemu;
    q.kernel = k->vmlinuz;
    q.accel = lab::ResolveAccel(q, runner, options.cache_root + "/kvm-probe");
    lab::LabOptions row_options = options;
    row_options.qemu.accel = q.accel;
    for (int i = 0; i < repeat && f.error.empty(); ++i) {
      std::cerr << "[" << row.name << "] run " << (i + 1) << "/" << repeat << ": build floor\n";
      auto bf = BuildFloor(*k, options.module_src, runner, options.cache_root);
      if (!bf) { f.error = bf.error().message; break; }
      f.build_floor = std::min(f.build_floor, *bf);
      std::cerr << "[" << row.name << "] run " << (i + 1) << "/" << repeat << ": lab\n";
      lab::RowReport r = lab::VerifyRow(row, row_options, runner, nullptr);
      if (!r.ok) { f.error = "lab run failed: " + r.error; break; }
      f.build_lab = std::min(f.build_lab, r.build_s);
      double boot_to_results = r.initramfs_s + r.qemu_s;
      if (boot_to_results < f.boot_lab) {
        f.boot_lab = boot_to_results;
        f.tests = r.tests_s;
      }
      std::cerr << "[" << row.name << "] run " << (i + 1) << "/" << repeat << ": boot floor\n";
      auto boot = BootFloor(*k, q, runner, work);
      if (!boot) { f.error = boot.error().message; break; }
      f.boot_floor = std::min(f.boot_floor, *boot);
    }
    all.emplace_back(row.name, f);
  }
  boost::system::error_code ec;
  fs::remove_all(work, ec);

  std::printf("%-16s %-22s %9s %9s %6s   %9s %9s %6s %8s\n", "row", "kernel", "build", "floor",
              "ratio", "boot+res", "floor", "ratio", "(tests)");
  bool within = true;
  for (const auto& [name, f] : all) {
    if (!f.error.empty()) {
      std::printf("%-16s FAILED: %s\n", name.c_str(), f.error.c_str());
      within = false;
      continue;
    }
    double rb = f.build_lab / f.build_floor, rt = f.boot_lab / f.boot_floor;
    if (rb > 1.3 || rt > 1.3) within = false;
    std::printf("%-16s %-22s %8ss %8ss %5sx   %8ss %8ss %5sx %7ss\n", name.c_str(),
                f.kernel.c_str(), Fmt(f.build_lab).c_str(), Fmt(f.build_floor).c_str(),
                Fmt(rb).c_str(), Fmt(f.boot_lab).c_str(), Fmt(f.boot_floor).c_str(),
                Fmt(rt).c_str(), Fmt(f.tests).c_str());
  }
  std::printf("target: within 1.3x of the floor: %s\n", within ? "met" : "NOT met");
  constexpr double kKernelBuildTarget = 600;
  for (const auto& [name, f] : all) {
    if (f.kernel_build <= 0) continue;
    std::printf("%-16s kernel built from source in %ss (cold, recorded in the cache); target %.0fs: %s\n",
                name.c_str(), Fmt(f.kernel_build).c_str(), kKernelBuildTarget,
                f.kernel_build <= kKernelBuildTarget ? "met" : "NOT met");
  }
  return 0;
}
