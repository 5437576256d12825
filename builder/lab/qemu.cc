#include "lab/qemu.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <map>
#include <mutex>

#include "util/fs.h"

namespace lab {

util::Result<Accel> ParseAccel(const std::string& text) {
  if (text == "auto") return Accel::kAuto;
  if (text == "kvm") return Accel::kKvm;
  if (text == "tcg") return Accel::kTcg;
  return util::MakeError("unknown accelerator `" + text + "`: use auto, kvm or tcg");
}

const char* AccelName(Accel accel) {
  switch (accel) {
    case Accel::kAuto: return "auto";
    case Accel::kKvm: return "kvm";
    case Accel::kTcg: return "tcg";
  }
  return "?";
}

std::vector<std::string> QemuArgv(const QemuOptions& opts, Accel accel) {
  if (opts.icount) accel = Accel::kTcg;
  // no_timer_check: the IO-APIC timer check counts ticks against a busy
  // loop, and a TCG guest on a loaded host fails it ("IO-APIC + timer doesn't
  // work", a panic before init; seen on debian-13 with ten guests on 2 cores).
  std::string append = "console=ttyS0 panic=-1 no_timer_check loglevel=" + std::to_string(opts.loglevel);
  if (opts.oops_panic) append += " oops=panic";
  for (const auto& a : opts.extra_append) append += " " + a;
  std::vector<std::string> argv = {
      opts.qemu,
      "-machine", std::string("accel=") + (accel == Accel::kKvm ? "kvm" : "tcg"),
      "-nographic", "-no-reboot",
      // No NIC: the guest's network is its own TUN device, and skipping the
      // NIC's option ROM saves boot time.
      "-nic", "none",
      "-m", std::to_string(opts.memory_mb),
      "-smp", std::to_string(opts.smp),
      "-kernel", opts.kernel,
  };
  if (!opts.initrd.empty()) {
    argv.push_back("-initrd");
    argv.push_back(opts.initrd);
  }
  argv.push_back("-append");
  argv.push_back(append);
  if (opts.icount) {
    argv.push_back("-icount");
    argv.push_back("shift=0,sleep=off");
  }
  return argv;
}

namespace {

std::string HostKernel() {
  struct utsname u {};
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

std::mutex g_probe_mutex;
std::map<std::string, KvmProbe> g_probe_cache;  // by qemu binary

}  // namespace

KvmProbe ProbeKvm(util::ProcessRunner& runner, const std::string& qemu, const std::string& vmlinuz,
                  const std::string& cache_file, std::chrono::seconds timeout,
                  const std::string& kvm_device) {
  std::lock_guard<std::mutex> lock(g_probe_mutex);
  if (auto it = g_probe_cache.find(qemu); it != g_probe_cache.end()) return it->second;
  KvmProbe probe;
  // The cached answer is valid for this host kernel only.
  std::string key = "host=" + HostKernel() + " qemu=" + qemu;
  if (!cache_file.empty()) {
    if (auto cached = util::ReadFile(cache_file); cached) {
      std::string text = *cached;
      if (text.rfind(key + " usable=", 0) == 0) {
        probe.usable = text.compare(key.size() + 8, 1, "1") == 0;
        probe.detail = "cached probe (" + cache_file + ")";
        g_probe_cache[qemu] = probe;
        return probe;
      }
    }
  }
  if (::access(kvm_device.c_str(), R_OK | W_OK) != 0) {
    probe.detail = kvm_device + " is not usable";
  } else {
    util::ProcessSpec spec;
    spec.argv = {qemu, "-machine", "accel=kvm", "-nographic", "-no-reboot", "-nic", "none",
                 "-m", "256", "-kernel", vmlinuz,
                 "-append", "console=ttyS0 panic=-1 loglevel=1"};
    spec.timeout = timeout;
    auto r = runner.Run(spec);
    if (!r) {
      probe.detail = r.error().message;
    } else {
      probe.seconds = r->seconds;
      if (r->timed_out) {
        probe.detail = "a KVM guest did not finish within " + std::to_string(timeout.count()) +
                       " s (KVM hangs here)";
      } else if (r->output.find("Kernel panic") != std::string::npos) {
        probe.usable = true;
        probe.detail = "a KVM guest booted and ended";
      } else {
        probe.detail = "qemu with KVM exited " + std::to_string(r->exit_code) + ": " +
                       util::OutputTail(r->output, 1);
      }
    }
  }
  if (!cache_file.empty())
    util::WriteFileAtomic(cache_file, key + " usable=" + (probe.usable ? "1" : "0") + "\n");
  g_probe_cache[qemu] = probe;
  return probe;
}

Accel ResolveAccel(const QemuOptions& opts, util::ProcessRunner& runner,
                   const std::string& cache_file, std::string* why) {
  if (opts.icount) {
    if (why) *why = "icount needs TCG";
    return Accel::kTcg;
  }
  if (opts.accel != Accel::kAuto) {
    if (why) *why = "requested";
    return opts.accel;
  }
  auto probe = ProbeKvm(runner, opts.qemu, opts.kernel, cache_file);
  if (why) *why = probe.detail;
  return probe.usable ? Accel::kKvm : Accel::kTcg;
}

util::Result<GuestRun> RunGuest(const QemuOptions& opts, util::ProcessRunner& runner,
                                std::function<void(const std::string&)> on_line) {
  if (opts.accel == Accel::kAuto)
    return util::MakeError("internal error: resolve the accelerator before RunGuest");
  GuestRun run;
  run.accel = opts.icount ? Accel::kTcg : opts.accel;
  run.argv = QemuArgv(opts, run.accel);
  auto start = std::chrono::steady_clock::now();
  auto since_start = [&start] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  double begin_at = -1, end_at = -1;
  util::ProcessSpec spec;
  spec.argv = run.argv;
  spec.timeout = opts.deadline;
  spec.on_line = [&](std::string_view line) {
    std::string text(line);
    if (begin_at < 0 && text.find("LAB-BEGIN") != std::string::npos) begin_at = since_start();
    if (end_at < 0 && text.find("LAB-END") != std::string::npos) end_at = since_start();
    if (on_line) on_line(text);
  };
  auto r = runner.Run(spec);
  if (!r) return util::MakeError("qemu: " + r.error().message);
  run.console = std::move(r->output);
  run.timed_out = r->timed_out;
  run.exit_code = r->exit_code;
  run.seconds = r->seconds;
  run.boot_s = begin_at;
  if (begin_at >= 0 && end_at >= begin_at) run.tests_s = end_at - begin_at;
  return run;
}

}  // namespace lab
