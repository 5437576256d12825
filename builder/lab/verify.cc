#include "lab/verify.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include <boost/filesystem.hpp>

#include "lab/console.h"
#include "lab/initramfs.h"
#include "lab/paths.h"
#include "lab/provision.h"
#include "util/fs.h"

namespace lab {

namespace fs = boost::filesystem;

namespace {

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string Fixed1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Console lines for the progress display: printable characters only.
std::string Printable(const std::string& line) {
  std::string out;
  for (size_t i = 0; i < line.size(); ++i) {
    unsigned char c = line[i];
    if (c == 0x1b) {  // skip an escape sequence
      if (i + 1 < line.size() && line[i + 1] == '[') {
        i += 2;
        while (i < line.size() && !(line[i] >= '@' && line[i] <= '~')) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
  }
  return out;
}

// Scratch dirs are named NAME-PID; those of runs that died (killed, crashed)
// are removed so they do not pile up in the cache.
void RemoveDeadRuns(const std::string& runs_dir) {
  boost::system::error_code ec;
  std::vector<fs::path> dead;
  for (fs::directory_iterator it(runs_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    size_t dash = name.rfind('-');
    if (dash == std::string::npos) continue;
    char* rest = nullptr;
    long pid = std::strtol(name.c_str() + dash + 1, &rest, 10);
    if (pid <= 0 || !rest || *rest != '\0') continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) dead.push_back(it->path());
  }
  for (const auto& d : dead) fs::remove_all(d, ec);
}

// The short boot's init script in the row's initramfs (rdinit=/NAME).
constexpr char kIpv6DisabledInit[] = "init-ipv6-disabled";

void Fail(RowReport& report, const std::string& step, const std::string& message) {
  report.ok = false;
  if (report.error.empty()) report.error = step + ": " + message;
  report.results.push_back({"lab", step, false, message});
}

}  // namespace

LabOptions DefaultLabOptions() {
  LabOptions o;
  o.cache_root = CacheRoot();
  o.module_src = SourceDir() + "/module";
  o.lbsim = BinaryDir() + "/lbsim";
  return o;
}

LabOptions PrepareGuestTools(const LabOptions& options, util::ProcessRunner& runner,
                             const std::string& dir) {
  LabOptions out = options;
  boost::system::error_code ec;
  fs::create_directories(dir, ec);
  std::string copy = dir + "/lbsim";
  util::ProcessSpec strip;
  strip.argv = {"strip", "--strip-debug", "-o", copy, options.lbsim};
  strip.timeout = std::chrono::seconds(60);
  auto r = runner.Run(strip);
  if (r && r->ok() && fs::exists(copy, ec)) out.lbsim = copy;
  return out;
}

RowReport VerifyRow(const KernelRow& row, const LabOptions& options, util::ProcessRunner& runner,
                    ProgressDisplay* progress) {
  auto start = std::chrono::steady_clock::now();
  RowReport report;
  report.row = row.name;
  report.method = options.methods.empty() ? "" : BuildMethodName(options.methods.front());
  for (size_t i = 1; i < options.methods.size(); ++i)
    report.method += "+" + BuildMethodName(options.methods[i]);
  auto phase = [&](const std::string& text) {
    if (progress) progress->Phase(row.name, text);
  };
  auto activity = [&](const std::string& text) {
    if (progress) progress->Activity(row.name, Printable(text));
  };
  auto finish = [&]() -> RowReport {
    report.total_s = Since(start);
    if (progress)
      progress->Done(row.name, report.ok,
                     report.ok ? Fixed1(report.total_s) + "s"
                               : (report.error.empty() ? "" : report.error.substr(0, 80)));
    return report;
  };

  // 1. Kernel and build root.
  phase("provisioning");
  ProvisionOptions provision;
  provision.source_dirs = options.source_dirs;
  auto kernel = ProvisionRow(row, runner, options.cache_root, activity, provision);
  if (!kernel) {
    Fail(report, "provision", kernel.error().message);
    return finish();
  }
  report.kernel = kernel->kver;
  report.package_version = kernel->package_version;
  report.provision_s = kernel->seconds;
  report.compiler = kernel->gcc_version.empty() ? "" : "gcc " + kernel->gcc_version + " (" + row.root_release + ")";
  report.source = kernel->source;
  report.kernel_build_s = kernel->kernel_build_s;
  report.kernel_built_now = kernel->kernel_built_now;
  report.results.push_back({"lab", "provision", true,
                            kernel->kver + " (" + kernel->package_version + ")" +
                                (kernel->source.empty() ? "" : ", " + kernel->source) +
                                (report.compiler.empty() ? "" : ", " + report.compiler) +
                                (kernel->kernel_built_now
                                     ? ", kernel built in " + Fixed1(kernel->kernel_build_s) + " s"
                                     : "") +
                                (kernel->warm ? ", warm cache" : "")});

  // 2. Modules, by every method asked for; the first one's go in the guest.
  std::vector<std::string> ko_files;
  for (size_t i = 0; i < options.methods.size(); ++i) {
    std::string method = BuildMethodName(options.methods[i]);
    phase("building (" + method + ")");
    auto built = BuildModules(*kernel, options.module_src, options.methods[i], runner,
                              options.cache_root);
    std::string step = "build_" + method;
    if (!built) {
      Fail(report, step, built.error().message);
      if (i == 0) return finish();
      continue;
    }
    if (built->ko_files.empty()) {
      Fail(report, step, "the build produced no .ko files in " + options.module_src);
      if (i == 0) return finish();
      continue;
    }
    std::string names;
    for (const auto& ko : built->ko_files) names += (names.empty() ? "" : " ") + fs::path(ko).filename().string();
    report.results.push_back({"lab", step, true, names + " in " + Fixed1(built->seconds) + " s"});
    if (i == 0) {
      report.build_s = built->seconds;
      ko_files = built->ko_files;
    }
  }

  // 3. The guest's initramfs, in a scratch dir of this process (removed by
  // the interrupt handler when the run is stopped).
  phase("initramfs");
  std::string work = options.cache_root + "/runs/" + row.name + "-" + std::to_string(::getpid());
  util::ScratchPath scratch(work);
  boost::system::error_code ec;
  fs::remove_all(work, ec);
  fs::create_directories(work, ec);
  InitramfsSpec spec;
  spec.output = work + (options.gzip_initramfs ? "/initramfs.cpio.gz" : "/initramfs.cpio");
  spec.work_dir = work + "/kmod";
  spec.busybox = options.busybox;
  spec.lbsim = options.lbsim;
  spec.test_modules = ko_files;
  spec.kernel_modules_dir = kernel->modules_dir;
  spec.kernel_modules = options.kernel_modules;
  auto case_args = [](const std::vector<std::string>& names) {
    std::vector<std::string> args;
    for (const auto& n : names) {
      args.push_back("--case");
      args.push_back(n);
    }
    return args;
  };
  spec.lbsim_args = options.lbsim_args;
  for (const auto& a : case_args(options.cases)) spec.lbsim_args.push_back(a);
  bool second_boot = options.ipv6_disabled_boot && options.mode == GuestMode::kRun;
  if (second_boot) {
    std::vector<std::string> args = options.lbsim_args;
    args.push_back("--ipv6-disabled");
    for (const auto& a : case_args(options.ipv6_disabled_cases)) args.push_back(a);
    spec.other_inits.push_back({kIpv6DisabledInit, args});
  }
  spec.lbsim_subcommand = options.mode == GuestMode::kBench ? "bench" : "run";
  spec.gzip = options.gzip_initramfs;
  auto initramfs = BuildInitramfs(spec, runner);
  if (!initramfs) {
    Fail(report, "initramfs", initramfs.error().message);
    fs::remove_all(work, ec);
    return finish();
  }
  report.initramfs_s = initramfs->seconds;

  // 4. Boot and collect the console: the main boot and, beside it, the short
  // boot with ipv6.disable=1, from the one initramfs (its own init script).
  QemuOptions qemu = options.qemu;
  qemu.kernel = kernel->vmlinuz;
  qemu.initrd = initramfs->path;
  std::string why;
  qemu.accel = ResolveAccel(qemu, runner, options.cache_root + "/kvm-probe", &why);
  report.accel = AccelName(qemu.icount ? Accel::kTcg : qemu.accel);
  QemuOptions v6off = qemu;
  v6off.memory_mb = std::min(qemu.memory_mb, kIpv6DisabledGuestMb);
  v6off.extra_append.push_back("ipv6.disable=1");
  v6off.extra_append.push_back(std::string("rdinit=/") + kIpv6DisabledInit);
  util::Result<GuestRun> second = util::Error{"not run"};
  // Its own thread: that thread forks QEMU and stays blocked in Run() until
  // QEMU is gone (PR_SET_PDEATHSIG follows the forking thread).
  std::thread second_thread;
  std::atomic<bool> second_done{false};
  if (second_boot)
    second_thread = std::thread([&] {
      second = RunGuest(v6off, runner);
      second_done = true;
    });
  phase("booting (" + report.accel + (qemu.icount ? ", icount" : "") +
        (second_boot ? (options.main_boot ? ", + ipv6.disable=1 boot" : ", ipv6.disable=1") : "") +
        ")");
  bool testing = false;
  util::Result<GuestRun> run = util::Error{"not run"};
  if (options.main_boot) {
    run = RunGuest(qemu, runner, [&](const std::string& line) {
      if (!testing && line.find("LAB-BEGIN") != std::string::npos) {
        testing = true;
        phase("testing");
      }
      activity(line);
    });
  }
  if (second_thread.joinable()) {
    if (options.main_boot && !second_done) phase("waiting for the ipv6.disable=1 boot");
    second_thread.join();
  }
  fs::remove_all(work, ec);

  // 5. Verdict.
  bool builds_ok = report.error.empty();
  bool boots_ok = true;
  if (options.main_boot) {
    if (!run) {
      Fail(report, "boot", run.error().message);
      return finish();
    }
    report.qemu_s = run->seconds;
    report.boot_s = run->boot_s >= 0 ? run->boot_s : run->seconds;
    report.tests_s = run->tests_s >= 0 ? run->tests_s : 0;
    std::string log = options.cache_root + "/logs/" + row.name + ".console.log";
    if (util::WriteFileAtomic(log, run->console)) report.console_log = log;
    ConsoleReport parsed = ParseConsole(run->console, run->timed_out, options.mode);
    for (auto& c : parsed.cases) report.results.push_back(c);
    for (auto& c : LabCases(parsed)) report.results.push_back(c);
    report.kernel_faults = parsed.kernel_faults;
    report.benches = parsed.benches;
    boots_ok = parsed.ok();
    if (!parsed.ok() && report.error.empty()) report.error = parsed.failures.front();
  }
  if (second_boot) {
    // Its lab checks are named ipv6_disabled_boot, ..._kernel_log, ..._cases.
    const std::string prefix = "ipv6_disabled_";
    if (!second) {
      Fail(report, prefix + "boot", second.error().message);
      boots_ok = false;
    } else {
      report.ipv6_disabled_qemu_s = second->seconds;
      std::string log = options.cache_root + "/logs/" + row.name + ".ipv6-disabled.console.log";
      if (util::WriteFileAtomic(log, second->console)) report.ipv6_disabled_console_log = log;
      ConsoleReport parsed = ParseConsole(second->console, second->timed_out, GuestMode::kRun);
      for (auto& c : parsed.cases) report.results.push_back(c);
      for (auto c : LabCases(parsed)) {
        c.name = prefix + c.name;
        report.results.push_back(c);
      }
      for (const auto& f : parsed.kernel_faults)
        report.kernel_faults.push_back("(ipv6.disable=1 boot) " + f);
      if (!parsed.ok()) {
        boots_ok = false;
        if (report.error.empty()) report.error = "ipv6.disable=1 boot: " + parsed.failures.front();
      }
    }
  }
  report.ok = builds_ok && boots_ok;
  return finish();
}

int DefaultJobs(int rows, long mem_available_mb, int guest_memory_mb) {
  constexpr long kQemuOverheadMb = 256;
  long by_memory = mem_available_mb < 0 ? 1 : mem_available_mb / (guest_memory_mb + kQemuOverheadMb);
  return static_cast<int>(std::max<long>(1, std::min<long>(rows, by_memory)));
}

long MemAvailableMb(const std::string& meminfo) {
  std::ifstream in(meminfo);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("MemAvailable:", 0) == 0) return std::atol(line.c_str() + 13) / 1024;  // kB
  return -1;
}

MatrixReport RunMatrix(const std::vector<KernelRow>& rows, const LabOptions& options, int jobs,
                       util::ProcessRunner& runner, ProgressDisplay* progress) {
  auto start = std::chrono::steady_clock::now();
  MatrixReport report;
  report.rows.resize(rows.size());
  if (jobs < 1) jobs = 1;
  jobs = std::min<int>(jobs, static_cast<int>(rows.size()));
  RemoveDeadRuns(options.cache_root + "/runs");
  std::string tools = options.cache_root + "/runs/tools-" + std::to_string(::getpid());
  util::ScratchPath scratch(tools);
  LabOptions prepared = PrepareGuestTools(options, runner, tools);
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    for (size_t i = next++; i < rows.size(); i = next++)
      report.rows[i] = VerifyRow(rows[i], prepared, runner, progress);
  };
  std::vector<std::thread> threads;
  for (int j = 1; j < jobs; ++j) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  boost::system::error_code ec;
  fs::remove_all(tools, ec);
  report.seconds = Since(start);
  return report;
}

}  // namespace lab
