// The guest's initramfs (ARCHITECTURE.md, "Guest run"): busybox, lbsim, the
// modules under test in /modules, the kernel's own modules the tests need in
// /kmod (+ /kmod/order, dependencies first), and a generated /init.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/process.h"
#include "util/result.h"

namespace lab {

// Writes a cpio archive in the "newc" format the kernel unpacks. Entries are
// written in the order added; parents must be added before children.
class CpioWriter {
 public:
  void AddDirectory(const std::string& path, uint32_t perm = 0755);
  void AddFile(const std::string& path, const std::string& data, uint32_t perm = 0644);
  void AddSymlink(const std::string& path, const std::string& target);
  void AddCharDevice(const std::string& path, uint32_t perm, uint32_t major, uint32_t minor);
  // Appends the trailer and returns the archive; the writer is then empty.
  std::string Finish();

 private:
  void AddEntry(const std::string& path, uint32_t mode, const std::string& data,
                uint32_t rdev_major = 0, uint32_t rdev_minor = 0);
  std::string out_;
  uint32_t next_ino_ = 1;
};

struct CpioEntry {
  std::string path;
  uint32_t mode = 0;  // type and permission bits, as in stat(2)
  std::string data;   // file content, or a symlink's target
  uint32_t rdev_major = 0, rdev_minor = 0;
};

// Reads a newc archive back (tests, and checking what was built).
util::Result<std::vector<CpioEntry>> ParseCpio(const std::string& archive);

// "kernel/drivers/net/tun.ko.xz" -> "tun"; '-' and '_' are the same to
// modprobe, so names are normalised to '_'.
std::string KernelModuleName(const std::string& path);

// The modules `names` need from a modules.dep text, as paths relative to the
// modules dir, dependencies before dependents, each once. Names listed in
// `builtin` (modules.builtin text) are satisfied by the kernel and skipped.
util::Result<std::vector<std::string>> ResolveKernelModules(const std::string& modules_dep,
                                                            const std::string& builtin,
                                                            const std::vector<std::string>& names);

// The modules a .ko names in its .modinfo `depends=` field (the kernel's own
// record of what it needs; used when the image ships no modules.dep, as
// Debian packages do: depmod only runs when a package is installed).
std::vector<std::string> ModinfoDepends(const std::string& ko);

// The /init script: mounts, lo up, /kmod/order, LAB-BEGIN, lbsim with
// `lbsim_args` appended to `run --ko-dir /modules`, the dmesg dump, LAB-END rc=N,
// power off.
// `subcommand` is lbsim's: "run" (the cases) or "bench" (the benchmarks).
std::string GenerateInit(const std::vector<std::string>& lbsim_args,
                         const std::string& subcommand = "run");

// An /init that only powers off: the floor a bare boot is measured against.
std::string GenerateBareInit();

inline constexpr char kOptionalModule[] = "?";

struct InitramfsSpec {
  std::string output;                  // where the archive goes
  std::string work_dir;                // scratch (decompressing kernel modules)
  std::string busybox = "/bin/busybox";
  std::string lbsim;                   // static lbsim; empty only with init_script
  std::vector<std::string> test_modules;  // .ko files for /modules
  std::string kernel_modules_dir;      // the image's /lib/modules/KVER
  // A name starting with kOptionalModule is loaded where the kernel ships it
  // and skipped where not (e.g. "?crc32c_generic": libcrc32c's crc32c
  // algorithm, a soft dependency modinfo does not list; 6.14+ has neither).
  std::vector<std::string> kernel_modules{"tun"};
  std::vector<std::string> lbsim_args;
  std::string lbsim_subcommand = "run";
  std::string init_script;             // overrides the generated /init
  // More generated init scripts in the archive's root, as {name, lbsim_args}:
  // a boot picks one with `rdinit=/NAME` (the row's ipv6.disable=1 boot runs
  // /init-ipv6-disabled from the same initramfs).
  std::vector<std::pair<std::string, std::vector<std::string>>> other_inits;
  bool gzip = false;                   // compress with `gzip -1` (see BuildInitramfs)
};

struct InitramfsInfo {
  std::string path;
  uint64_t bytes = 0;
  std::vector<std::string> kmod_order;  // file names in /kmod, load order
  double seconds = 0;
};

util::Result<InitramfsInfo> BuildInitramfs(const InitramfsSpec& spec, util::ProcessRunner& runner);

}  // namespace lab
