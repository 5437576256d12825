#include "e2e/report.h"

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "lab/console.h"

namespace e2e {

std::string FormatStep(const Step& step) {
  nlohmann::json j{{"stage", step.stage},
                   {"step", step.name},
                   {"pass", step.passed},
                   {"seconds", static_cast<double>(static_cast<long>(step.seconds * 1000)) / 1000},
                   {"detail", step.detail}};
  // Replace invalid UTF-8 (command output) instead of throwing.
  return kStepTag + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string FormatEnd(const std::string& stage, bool passed) {
  return kEndTag + nlohmann::json{{"stage", stage}, {"pass", passed}}.dump();
}

namespace {

std::string Clean(std::string line) {
  std::string out;
  for (char c : line)
    if (c != '\r' && c != '\0') out += c;
  return out;
}

}  // namespace

StageReport ParseStage(const std::string& console, const std::string& stage, bool timed_out) {
  StageReport r;
  std::set<std::string> seen_faults;
  bool in_dmesg = false, end_passed = false;
  std::istringstream in(console);
  for (std::string raw; std::getline(in, raw);) {
    std::string line = Clean(raw);
    if (line.empty()) continue;
    // Markers may follow other console output on the same line.
    if (size_t p = line.find(kStepTag); p != std::string::npos) {
      auto j = nlohmann::json::parse(line.substr(p + std::string(kStepTag).size()), nullptr, false);
      if (!j.is_object() || !j.contains("step") || !j["step"].is_string()) {
        r.failures.push_back("unreadable step line: " + line);
        continue;
      }
      Step s;
      s.stage = j.value("stage", "");
      s.name = j["step"].get<std::string>();
      s.passed = j.value("pass", false);
      s.seconds = j.value("seconds", 0.0);
      s.detail = j.value("detail", "");
      r.steps.push_back(s);
      continue;  // step details are command output, not kernel log
    }
    if (line.find(kLogTag) != std::string::npos) continue;  // command output, not kernel log
    if (size_t p = line.find(kEndTag); p != std::string::npos) {
      auto j = nlohmann::json::parse(line.substr(p + std::string(kEndTag).size()), nullptr, false);
      if (j.is_object()) {
        r.saw_end = true;
        end_passed = j.value("pass", false);
      }
      continue;
    }
    if (line.find(kDmesgBegin) != std::string::npos) {
      in_dmesg = true;
      continue;
    }
    if (line.find(kDmesgEnd) != std::string::npos) {
      in_dmesg = false;
      continue;
    }
    (void)in_dmesg;  // console and dumped kernel log are scanned alike
    if (lab::IsKernelFault(line)) {
      // The dump repeats what the console showed: report each fault once.
      std::string key = line;
      if (size_t close = key.find("] "); key.rfind("[", 0) == 0 && close != std::string::npos)
        key = key.substr(close + 2);
      if (seen_faults.insert(key).second) r.kernel_faults.push_back(line);
    }
  }

  if (!r.saw_end) {
    r.failures.push_back(timed_out ? "deadline hit: the guest did not finish stage " + stage + " in time" +
                                         (r.steps.empty() ? " (no step ran: did it boot?)"
                                                          : " (last step: " + r.steps.back().name + ")")
                                   : "console ends before the end of stage " + stage +
                                         " (the guest stopped or crashed)");
  } else if (r.steps.empty()) {
    r.failures.push_back("stage " + stage + " reported no step");
  }
  for (const auto& s : r.steps) {
    if (s.stage != stage)
      r.failures.push_back("the guest ran stage " + s.stage + " instead of " + stage);
    else if (!s.passed)
      r.failures.push_back("step " + s.name + " failed: " + s.detail);
  }
  if (r.saw_end && !end_passed && r.failures.empty())
    r.failures.push_back("the guest says stage " + stage + " failed");
  for (const auto& f : r.kernel_faults) r.failures.push_back("kernel log: " + f);
  return r;
}

std::map<std::string, std::string> ParseCmdline(const std::string& cmdline) {
  std::map<std::string, std::string> out;
  std::istringstream in(cmdline);
  const std::string prefix = "toa_e2e.";
  for (std::string word; in >> word;) {
    if (word.rfind(prefix, 0) != 0) continue;
    size_t eq = word.find('=');
    if (eq == std::string::npos) continue;
    out[word.substr(prefix.size(), eq - prefix.size())] = word.substr(eq + 1);
  }
  return out;
}

bool ModuleListed(const std::string& proc_modules, const std::string& module) {
  std::istringstream in(proc_modules);
  for (std::string line; std::getline(in, line);)
    if (line.substr(0, line.find(' ')) == module) return true;
  return false;
}

}  // namespace e2e
