// The QEMU runner: boots a kernel with the lab's initramfs, reads the serial
// console line by line, and never hangs (every run has a deadline).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "util/process.h"
#include "util/result.h"

namespace lab {

enum class Accel { kAuto, kKvm, kTcg };

// "auto" | "kvm" | "tcg".
util::Result<Accel> ParseAccel(const std::string& text);
const char* AccelName(Accel accel);

struct QemuOptions {
  std::string qemu = "qemu-system-x86_64";
  std::string kernel;  // vmlinuz
  std::string initrd;
  int memory_mb = 1024;
  int smp = 1;
  // kAuto is resolved by ResolveAccel before building argv.
  Accel accel = Accel::kAuto;
  // `-icount shift=0,sleep=off`: the guest clock counts instructions, so
  // in-guest benchmarks repeat on a noisy host. Forces TCG.
  bool icount = false;
  int loglevel = 4;  // console loglevel; the full log comes from the dmesg dump
  // An oops panics the guest so a wedged kernel ends the run at once instead
  // of at the deadline; the oops itself is on the console (emergency level).
  bool oops_panic = true;
  std::vector<std::string> extra_append;
  std::chrono::seconds deadline{300};
};

// The exact command line for `opts` with `accel` (kKvm or kTcg).
std::vector<std::string> QemuArgv(const QemuOptions& opts, Accel accel);

// Whether KVM guests run here. KVM on some hosts (this one) accepts a guest
// and then spins forever, so the probe boots `vmlinuz` with no initrd under
// KVM and waits, with a short timeout, for the kernel's own panic ("no root")
// to end the run. The answer is cached in `cache_file` (when non-empty) for
// this host kernel and also in-process.
struct KvmProbe {
  bool usable = false;
  std::string detail;
  double seconds = 0;
};
KvmProbe ProbeKvm(util::ProcessRunner& runner, const std::string& qemu, const std::string& vmlinuz,
                  const std::string& cache_file,
                  std::chrono::seconds timeout = std::chrono::seconds(10),
                  const std::string& kvm_device = "/dev/kvm");

// kAuto -> kKvm when the probe says so, else kTcg; icount always means kTcg.
Accel ResolveAccel(const QemuOptions& opts, util::ProcessRunner& runner,
                   const std::string& cache_file, std::string* why = nullptr);

struct GuestRun {
  std::string console;
  bool timed_out = false;
  int exit_code = -1;
  Accel accel = Accel::kTcg;
  double seconds = 0;    // QEMU wall time
  double boot_s = -1;    // QEMU start to LAB-BEGIN (-1: never seen)
  double tests_s = -1;   // LAB-BEGIN to LAB-END (-1: never seen)
  std::vector<std::string> argv;
};

// Boots the guest (opts.accel must be resolved), passing each console line to
// `on_line` as it arrives.
util::Result<GuestRun> RunGuest(const QemuOptions& opts, util::ProcessRunner& runner,
                                std::function<void(const std::string&)> on_line = nullptr);

}  // namespace lab
