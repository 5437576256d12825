// Reports of lab runs: the JSON object of `--json`, JUnit XML for CI, the
// summary table, and the live progress display.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/console.h"

namespace lab {

struct RowReport {
  std::string row;
  std::string kernel;           // resolved kernel release (KVER)
  std::string package_version;  // Debian version of the image package ("built from X" for source rows)
  std::string compiler;         // the build root's compiler: "gcc 12.2.0 (bookworm)"
  std::string source;           // source rows: "TARBALL, sha256 ..."
  double kernel_build_s = 0;    // source rows: how long the cached kernel took to build
  bool kernel_built_now = false;
  std::string method;           // kbuild | dkms
  std::string accel;            // kvm | tcg
  double provision_s = 0, build_s = 0, initramfs_s = 0;
  double boot_s = 0;   // QEMU start to LAB-BEGIN
  double tests_s = 0;  // LAB-BEGIN to LAB-END
  double qemu_s = 0;   // QEMU wall time
  double ipv6_disabled_qemu_s = 0;  // the short ipv6.disable=1 boot's QEMU wall time (beside qemu_s)
  double total_s = 0;
  bool ok = false;
  // One line when the row stopped before its cases ran (provision, build...).
  std::string error;
  std::vector<CaseResult> results;  // lbsim's cases, then the lab's own
  std::vector<std::string> kernel_faults;
  std::vector<nlohmann::json> benches;
  std::string console_log;  // where the full console was saved
  std::string ipv6_disabled_console_log;  // and the ipv6.disable=1 boot's
};

struct MatrixReport {
  std::vector<RowReport> rows;
  double seconds = 0;
  bool ok() const;
};

// {"results": [{row, kernel, module, case, result, detail}],
//  "rows": [{row, kernel, provision_s, build_s, boot_s, ok, ...}], "ok": bool}
nlohmann::json ToJson(const MatrixReport& report);

// One <testsuite> per row, one <testcase> per case (classname ROW.MODULE).
std::string ToJunit(const MatrixReport& report);

// The human summary: one line per row with the time breakdown, then what
// failed and why.
std::string SummaryTable(const MatrixReport& report);

// Every case of every row with its detail: for one row (verify), this is what
// the modules recovered (accept()/getpeername()/getsockopt addresses).
std::string CaseListing(const MatrixReport& report);

// Escapes text for XML attribute and element content.
std::string XmlEscape(const std::string& text);

// Live progress, thread-safe. On a terminal it keeps one status line per row
// and redraws them in place; otherwise it prints a line per phase change.
class ProgressDisplay {
 public:
  ProgressDisplay(std::ostream& out, bool terminal, std::vector<std::string> rows);
  // A new phase of a row ("provisioning", "building", "booting"...).
  void Phase(const std::string& row, const std::string& text);
  // Fine-grained activity (a console line): shown only on a terminal.
  void Activity(const std::string& row, const std::string& text);
  // Final state of a row.
  void Done(const std::string& row, bool ok, const std::string& text);

 private:
  void RedrawLocked();
  std::ostream& out_;
  bool terminal_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> phase_, activity_;
  std::map<std::string, std::chrono::steady_clock::time_point> started_;
  std::chrono::steady_clock::time_point last_draw_{};
  size_t drawn_lines_ = 0;
  std::mutex mutex_;
};

}  // namespace lab
