// toa-e2e: the end-to-end test of `toa-build install` on real Debian hosts,
// booted in QEMU (issue 5). `toa-e2e run` is the host side (ctest label e2e);
// `toa-e2e guest` runs inside the VM, started by the image's toa-e2e.service.
// Static, so the same binary runs on the host and in every release's VM.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <thread>
#include <iostream>

#include "e2e/config.h"
#include "e2e/flow.h"
#include "e2e/guest.h"
#include "e2e/report.h"
#include "lab/paths.h"
#include "util/fs.h"

namespace {

std::string SelfPath() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "" : p.string();
}

int Guest() {
  util::SystemProcessRunner runner;
  auto cmdline = util::ReadFile("/proc/cmdline");
  std::string payload = std::filesystem::path(SelfPath()).parent_path().parent_path().string();
  auto params = e2e::ParamsFromCmdline(e2e::ParseCmdline(cmdline ? cmdline.value() : ""));
  if (!params) {
    std::cout << e2e::FormatStep({"?", "params", false, 0, params.error().message}) << std::endl;
    std::cout << e2e::FormatEnd("?", false) << std::endl;
    return 1;
  }
  e2e::GuestDriver driver(runner, std::cout, payload);
  driver.Run(params.value());
  return 0;  // the verdict is on the console; the unit powers off either way
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"toa-build end-to-end test: install, reboot, kernel upgrade, uninstall in Debian VMs"};
  app.require_subcommand(1);
  auto* run = app.add_subcommand("run", "Build (or reuse) the VM images and run the flow per release");
  std::string releases, config_path = e2e::DefaultConfigPath(), accel = "auto";
  e2e::FlowOptions opts;
  opts.cache_root = lab::CacheRoot();
  opts.source_dir = lab::SourceDir();
  opts.toa_build = lab::BinaryDir() + "/tests/toa-build-static";
  opts.lbsim = lab::BinaryDir() + "/lbsim";
  opts.driver = SelfPath();
  opts.log_dir = "e2e-logs";
  int long_min = 25, short_min = 8, jobs = 2;
  run->add_option("--releases", releases, "comma-separated releases of distros/e2e.yaml (default: its list)");
  run->add_option("--config", config_path, "the releases file")->type_name("FILE");
  run->add_option("--toa-build", opts.toa_build, "static toa-build to test in the VM")->type_name("FILE");
  run->add_option("--lbsim", opts.lbsim, "static lbsim")->type_name("FILE");
  run->add_option("--log-dir", opts.log_dir, "where the consoles go")->type_name("DIR");
  run->add_option("--accel", accel, "auto, kvm or tcg");
  run->add_option("--memory", opts.memory_mb, "guest MB");
  run->add_option("--smp", opts.smp, "guest CPUs");
  run->add_option("--long-deadline", long_min, "minutes for boots that build modules");
  run->add_option("--short-deadline", short_min, "minutes for the other boots");
  run->add_option("--jobs", jobs, "releases run at the same time (each guest is mostly one busy thread)");
  run->add_flag("--keep", opts.keep, "keep the run's disk even when it passed");
  app.add_subcommand("guest", "Inside the VM: run the stage named on the kernel command line");
  CLI11_PARSE(app, argc, argv);

  if (app.got_subcommand("guest")) return Guest();

  auto fail = [](const std::string& m) {
    std::cerr << "toa-e2e run: " << m << "\n";
    return 2;
  };
  auto a = lab::ParseAccel(accel);
  if (!a) return fail(a.error().message);
  opts.accel = a.value();
  opts.long_deadline = std::chrono::minutes(long_min);
  opts.short_deadline = std::chrono::minutes(short_min);
  if (long_min <= 0 || short_min <= 0) return fail("--long-deadline and --short-deadline must be positive minutes");
  auto config = e2e::LoadConfig(config_path);
  if (!config) return fail(config.error().message);
  auto selected = e2e::SelectReleases(config.value(), releases);
  if (!selected) return fail(selected.error().message);
  for (const auto& [what, path] : {std::pair<std::string, std::string>{"--toa-build", opts.toa_build},
                                   {"--lbsim", opts.lbsim}}) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
      return fail(what + " " + path + " does not exist: build it (ninja toa-build-static lbsim) or pass its path");
  }
  if (::geteuid() != 0) return fail("needs root (debootstrap, chroot, mkfs of the image): run it with sudo");

  util::SystemProcessRunner runner;
  if (jobs < 1) return fail("--jobs must be at least 1");
  const auto& releases_to_run = selected.value();
  std::vector<e2e::ReleaseResult> results(releases_to_run.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < releases_to_run.size(); i = next++)
      results[i] = e2e::RunRelease(releases_to_run[i], config.value(), opts, runner, std::cout);
  };
  std::vector<std::thread> threads;
  for (int j = 1; j < jobs && j < static_cast<int>(releases_to_run.size()); ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  std::cout << e2e::Summary(results) << std::flush;
  for (const auto& r : results)
    if (!r.ok()) return 1;
  return 0;
}
