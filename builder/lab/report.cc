#include "lab/report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace lab {

namespace {

double Round2(double v) { return static_cast<double>(static_cast<long long>(v * 100 + 0.5)) / 100; }

std::string Seconds(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string FirstLine(const std::string& s, size_t max = 160) {
  std::string line = s.substr(0, s.find('\n'));
  if (line.size() > max) line = line.substr(0, max) + "...";
  return line;
}

int CountFailed(const RowReport& row) {
  int failed = 0;
  for (const auto& c : row.results)
    if (!c.passed) ++failed;
  return failed;
}

}  // namespace

bool MatrixReport::ok() const {
  if (rows.empty()) return false;
  for (const auto& r : rows)
    if (!r.ok) return false;
  return true;
}

nlohmann::json ToJson(const MatrixReport& report) {
  nlohmann::json results = nlohmann::json::array();
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : report.rows) {
    for (const auto& c : row.results) {
      results.push_back({{"row", row.row},
                         {"kernel", row.kernel},
                         {"module", c.module},
                         {"case", c.name},
                         {"result", c.not_applicable ? "not_applicable" : c.passed ? "pass" : "fail"},
                         {"detail", c.detail}});
    }
    nlohmann::json r = {{"row", row.row},
                        {"kernel", row.kernel},
                        {"provision_s", Round2(row.provision_s)},
                        {"build_s", Round2(row.build_s)},
                        {"boot_s", Round2(row.boot_s)},
                        {"ok", row.ok},
                        {"package_version", row.package_version},
                        {"method", row.method},
                        {"accel", row.accel},
                        {"initramfs_s", Round2(row.initramfs_s)},
                        {"tests_s", Round2(row.tests_s)},
                        {"qemu_s", Round2(row.qemu_s)},
                        {"ipv6_disabled_qemu_s", Round2(row.ipv6_disabled_qemu_s)},
                        {"total_s", Round2(row.total_s)},
                        {"kernel_faults", row.kernel_faults},
                        {"benches", row.benches}};
    if (!row.error.empty()) r["error"] = row.error;
    if (!row.compiler.empty()) r["compiler"] = row.compiler;
    if (!row.source.empty()) {
      r["source"] = row.source;
      r["kernel_build_s"] = Round2(row.kernel_build_s);
      r["kernel_built_now"] = row.kernel_built_now;
    }
    if (!row.console_log.empty()) r["console_log"] = row.console_log;
    if (!row.ipv6_disabled_console_log.empty())
      r["ipv6_disabled_console_log"] = row.ipv6_disabled_console_log;
    rows.push_back(std::move(r));
  }
  return {{"results", results}, {"rows", rows}, {"ok", report.ok()},
          {"seconds", Round2(report.seconds)}};
}

std::string XmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\n': out += "&#10;"; break;
      case '\t': out += "&#9;"; break;
      default:
        // Control characters are not allowed in XML 1.0 at all.
        if (c < 0x20) out += '?'; else out += static_cast<char>(c);
    }
  }
  return out;
}

std::string ToJunit(const MatrixReport& report) {
  int tests = 0, failures = 0;
  for (const auto& row : report.rows) {
    tests += static_cast<int>(row.results.size());
    failures += CountFailed(row);
  }
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << "<testsuites name=\"toa-build matrix\" tests=\"" << tests << "\" failures=\"" << failures
    << "\" time=\"" << Seconds(report.seconds) << "\">\n";
  for (const auto& row : report.rows) {
    x << "  <testsuite name=\"" << XmlEscape(row.row) << "\" tests=\"" << row.results.size()
      << "\" failures=\"" << CountFailed(row) << "\" errors=\"0\" time=\"" << Seconds(row.total_s)
      << "\">\n";
    x << "    <properties>\n";
    for (const auto& [k, v] :
         std::vector<std::pair<std::string, std::string>>{{"kernel", row.kernel},
                                                          {"package_version", row.package_version},
                                                          {"compiler", row.compiler},
                                                          {"source", row.source},
                                                          {"method", row.method},
                                                          {"accel", row.accel},
                                                          {"provision_s", Seconds(row.provision_s)},
                                                          {"build_s", Seconds(row.build_s)},
                                                          {"boot_s", Seconds(row.boot_s)},
                                                          {"tests_s", Seconds(row.tests_s)}})
      x << "      <property name=\"" << k << "\" value=\"" << XmlEscape(v) << "\"/>\n";
    x << "    </properties>\n";
    for (const auto& c : row.results) {
      x << "    <testcase classname=\"" << XmlEscape(row.row + "." + c.module) << "\" name=\""
        << XmlEscape(c.name) << "\" time=\"0\"";
      if (c.not_applicable) {
        x << ">\n      <skipped message=\"not applicable: " << XmlEscape(FirstLine(c.detail))
          << "\"/>\n    </testcase>\n";
      } else if (c.passed) {
        x << "/>\n";
      } else {
        x << ">\n      <failure message=\"" << XmlEscape(FirstLine(c.detail)) << "\">"
          << XmlEscape(c.detail) << "</failure>\n    </testcase>\n";
      }
    }
    if (!row.console_log.empty())
      x << "    <system-out>console: " << XmlEscape(row.console_log) << "</system-out>\n";
    x << "  </testsuite>\n";
  }
  x << "</testsuites>\n";
  return x.str();
}

std::string CaseListing(const MatrixReport& report) {
  std::ostringstream out;
  for (const auto& row : report.rows) {
    for (const auto& c : row.results) {
      if (c.module == "lab") continue;
      out << row.row << "  " << (c.not_applicable ? "n/a " : c.passed ? "pass" : "FAIL") << "  " << c.module << "/" << c.name
          << ": " << FirstLine(c.detail) << "\n";
    }
  }
  return out.str();
}

std::string SummaryTable(const MatrixReport& report) {
  std::vector<std::vector<std::string>> table;
  table.push_back({"row", "kernel", "method", "accel", "provision", "build", "initrd", "boot",
                   "tests", "v6off", "cases", "result"});
  for (const auto& row : report.rows) {
    int cases = 0, passed = 0, not_applicable = 0;
    for (const auto& c : row.results) {
      if (c.module == "lab") continue;
      ++cases;
      if (c.not_applicable) ++not_applicable;
      else if (c.passed) ++passed;
    }
    table.push_back({row.row, row.kernel.empty() ? "-" : row.kernel, row.method,
                     row.accel.empty() ? "-" : row.accel, Seconds(row.provision_s) + "s",
                     Seconds(row.build_s) + "s", Seconds(row.initramfs_s) + "s",
                     Seconds(row.boot_s) + "s", Seconds(row.tests_s) + "s",
                     row.ipv6_disabled_qemu_s > 0 ? Seconds(row.ipv6_disabled_qemu_s) + "s" : "-",
                     std::to_string(passed) + "/" + std::to_string(cases) +
                         (not_applicable ? " (" + std::to_string(not_applicable) + " n/a)" : ""),
                     row.ok ? "PASS" : "FAIL"});
  }
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& line : table)
    for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  std::ostringstream out;
  for (const auto& line : table) {
    for (size_t i = 0; i < line.size(); ++i) {
      out << (i + 1 < line.size() ? Pad(line[i], width[i] + 2) : line[i]);
    }
    out << "\n";
  }
  int ok_rows = 0;
  for (const auto& row : report.rows)
    if (row.ok) ++ok_rows;
  out << ok_rows << "/" << report.rows.size() << " row(s) passed in " << Seconds(report.seconds)
      << "s\n";
  // Never silently dropped: each case that cannot hold on a row, with why.
  for (const auto& row : report.rows) {
    bool header = false;
    for (const auto& c : row.results) {
      if (!c.not_applicable) continue;
      if (!header) out << "\n" << row.row << " not applicable:\n";
      header = true;
      out << "  " << c.module << "/" << c.name << ": " << FirstLine(c.detail) << "\n";
    }
  }
  for (const auto& row : report.rows) {
    if (row.ok) continue;
    out << "\n" << row.row << " failed:";
    if (!row.error.empty()) out << " " << row.error;
    out << "\n";
    for (const auto& c : row.results)
      if (!c.passed) out << "  " << c.module << "/" << c.name << ": " << FirstLine(c.detail) << "\n";
    for (const auto& line : row.kernel_faults) out << "  kernel: " << FirstLine(line) << "\n";
    if (!row.console_log.empty()) out << "  console: " << row.console_log << "\n";
    if (!row.ipv6_disabled_console_log.empty())
      out << "  console (ipv6.disable=1): " << row.ipv6_disabled_console_log << "\n";
  }
  return out.str();
}

ProgressDisplay::ProgressDisplay(std::ostream& out, bool terminal, std::vector<std::string> rows)
    : out_(out), terminal_(terminal), order_(std::move(rows)) {
  for (const auto& r : order_) phase_[r] = "waiting";
}

void ProgressDisplay::Phase(const std::string& row, const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  phase_[row] = text;
  activity_[row].clear();
  if (!started_.count(row)) started_[row] = std::chrono::steady_clock::now();
  if (terminal_) {
    RedrawLocked();
  } else {
    out_ << "[" << row << "] " << text << "\n" << std::flush;
  }
}

void ProgressDisplay::Activity(const std::string& row, const std::string& text) {
  if (!terminal_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  activity_[row] = text;
  // Serial consoles can print thousands of lines; redraw at most ~10/s.
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  RedrawLocked();
}

void ProgressDisplay::Done(const std::string& row, bool ok, const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  phase_[row] = std::string(ok ? "PASS" : "FAIL") + (text.empty() ? "" : " " + text);
  activity_[row].clear();
  if (terminal_) {
    RedrawLocked();
  } else {
    out_ << "[" << row << "] " << phase_[row] << "\n" << std::flush;
  }
}

void ProgressDisplay::RedrawLocked() {
  last_draw_ = std::chrono::steady_clock::now();
  if (drawn_lines_ > 0) out_ << "\x1b[" << drawn_lines_ << "A";
  size_t name_width = 0;
  for (const auto& r : order_) name_width = std::max(name_width, r.size());
  for (const auto& r : order_) {
    std::string line = Pad(r, name_width + 2) + phase_[r];
    if (auto it = started_.find(r); it != started_.end() && phase_[r].rfind("PASS", 0) != 0 &&
                                    phase_[r].rfind("FAIL", 0) != 0) {
      line += " (" + Seconds(std::chrono::duration<double>(last_draw_ - it->second).count()) + "s)";
    }
    if (!activity_[r].empty()) line += "  " + activity_[r];
    if (line.size() > 110) line = line.substr(0, 107) + "...";
    out_ << "\r\x1b[2K" << line << "\n";
  }
  drawn_lines_ = order_.size();
  out_ << std::flush;
}

}  // namespace lab
