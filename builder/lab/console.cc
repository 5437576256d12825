#include "lab/console.h"

#include <cctype>
#include <set>
#include <sstream>

namespace lab {

namespace {

// What the kernel prints when something went wrong (ARCHITECTURE.md). Words
// match on word boundaries so "DEBUG" or "CONFIG_BUG" in a boot line do not
// count; the phrases are specific enough as substrings.
struct FaultPattern {
  const char* text;
  bool whole_word;
};
constexpr FaultPattern kFaultPatterns[] = {
    {"BUG", true},
    {"WARNING", true},
    {"Oops", true},
    {"general protection", false},
    {"KASAN", true},
    {"UBSAN", true},
    {"refcount_t", false},
    {"list_add corruption", false},
    {"list_del corruption", false},
};

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool ContainsWord(const std::string& line, const std::string& word) {
  for (size_t pos = line.find(word); pos != std::string::npos; pos = line.find(word, pos + 1)) {
    bool left = pos == 0 || !IsWordChar(line[pos - 1]);
    size_t after = pos + word.size();
    bool right = after >= line.size() || !IsWordChar(line[after]);
    if (left && right) return true;
  }
  return false;
}

// Serial consoles carry terminal control sequences (SeaBIOS clears the
// screen); drop them and carriage returns so markers are found.
std::string CleanLine(const std::string& raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\x1b') {
      // ESC [ params final-byte, or ESC + one char.
      if (i + 1 < raw.size() && raw[i + 1] == '[') {
        i += 2;
        while (i < raw.size() && !(raw[i] >= '@' && raw[i] <= '~')) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (c == '\r' || c == '\0') continue;
    out += c;
  }
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  return out;
}

// "[   12.345678] msg" -> "msg", so a fault seen on the console and again in
// the dmesg dump is reported once.
std::string WithoutTimestamp(const std::string& line) {
  size_t open = line.find('[');
  if (open == std::string::npos) return line;
  size_t close = line.find(']', open);
  if (close == std::string::npos) return line;
  for (size_t i = open + 1; i < close; ++i) {
    char c = line[i];
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == ' ')) return line;
  }
  size_t from = close + 1;
  while (from < line.size() && line[from] == ' ') ++from;
  return line.substr(from);
}

bool ParseInt(const std::string& text, int* out) {
  if (text.empty()) return false;
  size_t i = 0;
  bool negative = text[0] == '-';
  if (negative) i = 1;
  if (i >= text.size()) return false;
  long v = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    v = v * 10 + (text[i] - '0');
    if (v > 1000000000) return false;
  }
  *out = static_cast<int>(negative ? -v : v);
  return true;
}

// The value of `key=` in a marker line ("LBSIM-DONE passed=3 failed=0").
bool FieldInt(const std::string& line, const std::string& key, int* out) {
  size_t pos = line.find(key + "=");
  if (pos == std::string::npos) return false;
  size_t from = pos + key.size() + 1;
  size_t to = from;
  while (to < line.size() && !std::isspace(static_cast<unsigned char>(line[to]))) ++to;
  return ParseInt(line.substr(from, to - from), out);
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

std::string Truncate(const std::string& text, size_t max) {
  return text.size() <= max ? text : text.substr(0, max) + "...";
}

}  // namespace

bool IsKernelFault(const std::string& line) {
  for (const auto& p : kFaultPatterns) {
    if (p.whole_word ? ContainsWord(line, p.text) : line.find(p.text) != std::string::npos)
      return true;
  }
  return false;
}

ConsoleReport ParseConsole(const std::string& console, bool timed_out, GuestMode mode) {
  ConsoleReport r;
  std::set<std::string> seen_faults;
  std::istringstream in(console);
  std::string raw;
  int result_lines = 0;
  while (std::getline(in, raw)) {
    std::string line = CleanLine(raw);
    if (line.empty()) continue;
    // Markers may follow other output on the same line when the kernel and
    // userspace share the serial port, so they are found anywhere in a line.
    if (size_t p = line.find("LBSIM-RESULT "); p != std::string::npos) {
      ++result_lines;
      std::string payload = line.substr(p + 13);
      auto j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
      CaseResult c;
      if (j.is_object() && j.contains("case") && j["case"].is_string() && j.contains("result") &&
          j["result"].is_string()) {
        c.module = j.value("module", std::string("?"));
        c.name = j["case"].get<std::string>();
        std::string result = j["result"].get<std::string>();
        c.not_applicable = result == "not_applicable";
        c.passed = result == "pass" || c.not_applicable;
        c.detail = j.contains("detail") && j["detail"].is_string() ? j["detail"].get<std::string>()
                                                                    : std::string();
        if (c.not_applicable && c.detail.empty()) {
          // A reason is the whole point of not applicable.
          c.passed = c.not_applicable = false;
          c.detail = "not_applicable without a reason";
        }
        if (result != "pass" && result != "fail" && !c.not_applicable && c.detail.empty())
          c.detail = "unknown result \"" + result + "\"";
      } else {
        c.module = "lab";
        c.name = "result_line_" + std::to_string(result_lines);
        c.passed = false;
        c.detail = "malformed LBSIM-RESULT line: " + Truncate(payload, 200);
      }
      r.cases.push_back(std::move(c));
      continue;
    }
    if (size_t p = line.find("LBSIM-BENCH "); p != std::string::npos) {
      auto j = nlohmann::json::parse(line.substr(p + 12), nullptr, false);
      if (!j.is_object()) {
        r.failures.push_back("malformed LBSIM-BENCH line: " + Truncate(line.substr(p), 200));
        continue;
      }
      if (mode == GuestMode::kBench) {
        CaseResult c;
        c.module = j.value("module", std::string("?"));
        c.name = "bench:" + j.value("bench", std::string("?"));
        c.passed = !j.contains("error");
        c.detail = c.passed ? j.dump() : j["error"].dump();
        r.cases.push_back(std::move(c));
      }
      r.benches.push_back(std::move(j));
      continue;
    }
    if (size_t p = line.find("LBSIM-DONE"); p != std::string::npos) {
      std::string rest = line.substr(p);
      r.saw_done = FieldInt(rest, "passed", &r.done_passed) &&
                   FieldInt(rest, "failed", &r.done_failed);
      if (!r.saw_done) r.failures.push_back("malformed LBSIM-DONE line: " + Truncate(rest, 200));
      continue;
    }
    if (size_t p = line.find("LAB-KMOD-FAIL"); p != std::string::npos) {
      r.failures.push_back("the guest could not load kernel module " +
                           Trim(line.substr(p + 13)) + " (see the kernel log)");
      continue;
    }
    if (line.find("LAB-BEGIN") != std::string::npos) {
      r.saw_begin = true;
      continue;
    }
    if (size_t p = line.find("LAB-END"); p != std::string::npos) {
      r.saw_end = true;
      if (!FieldInt(line.substr(p), "rc", &r.rc)) r.rc = -1;
      continue;
    }
    if (line.find("LAB-DMESG-BEGIN") != std::string::npos ||
        line.find("LAB-DMESG-END") != std::string::npos)
      continue;
    if (IsKernelFault(line)) {
      std::string key = WithoutTimestamp(line);
      if (seen_faults.insert(key).second) r.kernel_faults.push_back(line);
    }
  }

  // The verdict, most basic cause first.
  if (!r.saw_end) {
    if (timed_out)
      r.failures.push_back("deadline hit: the guest did not print LAB-END in time" +
                           std::string(r.saw_begin ? " (tests had started)" : " (no LAB-BEGIN: the guest never got to run the tests)"));
    else
      r.failures.push_back("console output truncated: no LAB-END" +
                           std::string(r.saw_begin ? " (tests had started; guest crashed or rebooted?)"
                                                   : " (no LAB-BEGIN: the guest never got to run the tests)"));
  }
  if (!r.kernel_faults.empty())
    r.failures.push_back("kernel log has " + std::to_string(r.kernel_faults.size()) +
                         " fault line(s), first: " + Truncate(r.kernel_faults.front(), 200));
  if (r.saw_end && r.cases.empty())
    r.failures.push_back(mode == GuestMode::kBench ? "zero benchmarks ran" : "zero test cases ran");
  int failed = 0;
  for (const auto& c : r.cases)
    if (!c.passed) ++failed;
  if (failed > 0)
    r.failures.push_back(std::to_string(failed) + " of " + std::to_string(r.cases.size()) +
                         " case(s) failed");
  if (r.saw_end && mode == GuestMode::kBench) {
    if (r.rc != 0) r.failures.push_back("lbsim exited with rc=" + std::to_string(r.rc));
  } else if (r.saw_end) {
    if (!r.saw_done) {
      r.failures.push_back("lbsim did not print LBSIM-DONE (crashed?)");
    } else if (r.done_passed + r.done_failed != static_cast<int>(r.cases.size()) ||
               r.done_failed != failed) {
      r.failures.push_back("LBSIM-DONE counts passed=" + std::to_string(r.done_passed) +
                           " failed=" + std::to_string(r.done_failed) + " but the console has " +
                           std::to_string(r.cases.size()) + " result line(s), " +
                           std::to_string(failed) + " failed (lines lost?)");
    }
    if (r.rc != 0) r.failures.push_back("lbsim exited with rc=" + std::to_string(r.rc));
  }
  return r;
}

std::vector<CaseResult> LabCases(const ConsoleReport& report) {
  std::vector<CaseResult> out;
  CaseResult boot{"lab", "boot", report.saw_end, ""};
  if (!report.saw_end) {
    boot.detail = report.failures.empty() ? "no LAB-END" : report.failures.front();
  } else {
    boot.detail = "LAB-END rc=" + std::to_string(report.rc);
  }
  for (const auto& f : report.failures) {
    if (f.rfind("the guest could not load", 0) == 0) {
      boot.passed = false;
      boot.detail += "; " + f;
    }
  }
  out.push_back(boot);
  CaseResult log{"lab", "kernel_log", report.kernel_faults.empty(), ""};
  for (const auto& line : report.kernel_faults) {
    if (!log.detail.empty()) log.detail += "\n";
    log.detail += line;
  }
  if (log.detail.empty()) log.detail = "no fault lines";
  out.push_back(log);
  if (report.saw_end) {
    CaseResult cases{"lab", "cases", true, ""};
    int failed = 0;
    for (const auto& c : report.cases)
      if (!c.passed) ++failed;
    if (report.cases.empty()) {
      cases.passed = false;
      cases.detail = "zero test cases ran";
    } else {
      cases.detail = std::to_string(report.cases.size()) + " case(s), " + std::to_string(failed) +
                     " failed";
    }
    // Count mismatches, a missing LBSIM-DONE and a bad rc land here too.
    for (const auto& f : report.failures) {
      if (f.rfind("LBSIM-DONE", 0) == 0 || f.rfind("lbsim ", 0) == 0 ||
          f.rfind("malformed", 0) == 0) {
        cases.passed = false;
        cases.detail += "; " + f;
      }
    }
    out.push_back(cases);
  }
  return out;
}

}  // namespace lab
