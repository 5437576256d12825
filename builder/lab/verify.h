// Orchestration of the lab: one row is provision -> build -> initramfs ->
// boot -> parse; the matrix runs rows in parallel.
#pragma once

#include <string>
#include <vector>

#include "lab/console.h"
#include "lab/matrix.h"
#include "lab/modbuild.h"
#include "lab/qemu.h"
#include "lab/report.h"
#include "util/process.h"

namespace lab {

struct LabOptions {
  std::string cache_root;
  std::string module_src;   // the module tree to build (SourceDir()/module)
  std::string lbsim;        // static lbsim (BinaryDir()/lbsim)
  std::string busybox = "/bin/busybox";
  std::vector<std::string> source_dirs;  // --sources: where source rows' tarballs are
  // Every method listed is built (and must succeed); the guest boots the
  // modules of the first.
  std::vector<BuildMethod> methods{BuildMethod::kKbuild};
  // lbsim's cases (`run`), or its benchmarks (`bench`, best with qemu.icount).
  GuestMode mode = GuestMode::kRun;
  std::vector<std::string> lbsim_args;          // after `run --ko-dir /modules`
  // The cases of each boot (empty: the whole table), as --case arguments of
  // its init script; both scripts are in the row's one initramfs.
  std::vector<std::string> cases;
  bool main_boot = true;
  // A second, short boot of the row with ipv6.disable=1 (and
  // rdinit=/init-ipv6-disabled) running lbsim's --ipv6-disabled table (the
  // modules must load and serve IPv4 there); run mode only. It runs beside
  // the main boot.
  bool ipv6_disabled_boot = true;
  std::vector<std::string> ipv6_disabled_cases;
  // tun: the guest network; nf_tables: the UOA firewall case (lbsim programs
  // it), whose libcrc32c needs a crc32c algorithm before 6.14. Before 4.17
  // (CentOS 7's 3.10) the inet/ip/ip6 families and the meta expression the
  // rule uses are modules of their own that nothing depends on.
  std::vector<std::string> kernel_modules{"tun",           "?crc32c_generic", "nf_tables",
                                          "?nf_tables_inet", "?nf_tables_ipv4", "?nf_tables_ipv6",
                                          "?nft_meta"};
  QemuOptions qemu;                             // kernel/initrd filled per row
  bool gzip_initramfs = false;
};

// The defaults for this build: cache, source and binary dirs from paths.h.
LabOptions DefaultLabOptions();

// Makes the guest's copy of lbsim: stripped of debug info (`strip
// --strip-debug` through the runner) into `dir`, so the initramfs is a few MB
// instead of ~20 and unpacks faster. Returns `options` pointing at the copy,
// or unchanged when strip is not available. Done once per matrix.
LabOptions PrepareGuestTools(const LabOptions& options, util::ProcessRunner& runner,
                             const std::string& dir);

// Runs one row end to end. Never throws; failures are in the report.
RowReport VerifyRow(const KernelRow& row, const LabOptions& options, util::ProcessRunner& runner,
                    ProgressDisplay* progress);

// How many rows run at once by default: every row, as memory allows. A TCG
// guest is one host thread that spends much of a run waiting (grace periods
// while a module is removed, timers of the expiry cases), so running more
// guests than cores keeps the cores busy; each guest needs its memory plus
// QEMU's own. At least one.
int DefaultJobs(int rows, long mem_available_mb, int guest_memory_mb);
// The ipv6.disable=1 guest's memory: it loads two modules and runs two cases.
inline constexpr int kIpv6DisabledGuestMb = 384;
// What one row's guests need at once, for DefaultJobs: the main guest plus the
// short one and its QEMU (DefaultJobs adds the main QEMU's own).
inline int RowGuestMemoryMb(int main_guest_mb) { return main_guest_mb + kIpv6DisabledGuestMb + 256; }
// MemAvailable of /proc/meminfo in MiB, or -1 when unreadable.
long MemAvailableMb(const std::string& meminfo = "/proc/meminfo");

// Runs `rows` with up to `jobs` at a time; reports in the rows' order.
MatrixReport RunMatrix(const std::vector<KernelRow>& rows, const LabOptions& options, int jobs,
                       util::ProcessRunner& runner, ProgressDisplay* progress);

}  // namespace lab
