#include "kernel/tree_edits.h"

#include <algorithm>
#include <regex>
#include <sstream>
#include <vector>

#include "util/strings.h"

namespace kernel {

namespace {


const std::regex kMakeVar(R"(^([A-Z_]+)[ \t]*=[ \t]*(.*?)[ \t]*$)");
const std::regex kTcpoptToa(R"(^([ \t]*#[ \t]*define[ \t]+TCPOPT_TOA[ \t]+)([0-9]+)(.*)$)");

}  // namespace

std::string TreeVersion::Text() const {
  return std::to_string(version) + "." + std::to_string(patchlevel) + "." + std::to_string(sublevel) + extraversion;
}

util::Result<TreeVersion> ParseTopMakefile(const std::string& makefile) {
  TreeVersion v;
  std::smatch m;
  // The variables sit at the top; stop at the first rule-ish line to keep it cheap.
  int read = 0;
  for (const auto& line : util::SplitLines(makefile)) {
    if (++read > 200) break;
    if (std::regex_match(line, m, kMakeVar) && !v.vars.count(m[1])) v.vars[m[1]] = m[2];
  }
  auto number = [&](const char* name, int& into) -> util::Status {
    auto it = v.vars.find(name);
    if (it == v.vars.end() || it->second.empty() || it->second.size() > 3 ||
        it->second.find_first_not_of("0123456789") != std::string::npos)
      return util::MakeError(std::string("its top Makefile has no numeric ") + name);
    into = std::stoi(it->second);
    return util::Ok{};
  };
  for (auto [name, into] : {std::pair<const char*, int*>{"VERSION", &v.version}, {"PATCHLEVEL", &v.patchlevel},
                            {"SUBLEVEL", &v.sublevel}})
    if (auto s = number(name, *into); !s) return s.error();
  if (v.vars.count("EXTRAVERSION")) v.extraversion = v.vars["EXTRAVERSION"];
  return v;
}

util::Result<std::string> AddExtraversionSuffix(const std::string& makefile, const std::string& suffix) {
  static const std::regex kSuffix(R"([A-Za-z0-9._+-]{1,32})");
  if (!std::regex_match(suffix, kSuffix))
    return util::MakeError("--suffix `" + util::Printable(suffix, 40) +
                           "` is not 1-32 of A-Z a-z 0-9 . _ + - (it becomes part of `uname -r`)");
  auto lines = util::SplitLines(makefile);
  std::smatch m;
  for (auto& line : lines) {
    if (!std::regex_match(line, m, kMakeVar) || m[1] != "EXTRAVERSION") continue;
    std::string value = m[2];
    if (util::EndsWith(value, suffix)) return makefile;
    line = "EXTRAVERSION = " + value + suffix;
    return util::JoinLines(lines);
  }
  return util::MakeError("its top Makefile has no `EXTRAVERSION =` line to add the suffix to");
}

util::Result<int> TcpoptToa(const std::string& toa_h) {
  std::smatch m;
  int found = 0, value = 0;
  for (const auto& line : util::SplitLines(toa_h))
    if (std::regex_match(line, m, kTcpoptToa)) {
      ++found;
      value = m[2].length() <= 3 ? std::stoi(m[2]) : -1;
    }
  if (found != 1)
    return util::MakeError("net/toa/toa.h has " + std::to_string(found) +
                           " `#define TCPOPT_TOA` lines, not one: not the LVS TOA this flow knows");
  if (value < 0 || value > 255) return util::MakeError("net/toa/toa.h's TCPOPT_TOA is not a TCP option kind (0-255)");
  return value;
}

util::Result<std::string> SetTcpoptToa(const std::string& toa_h, int kind) {
  if (auto now = TcpoptToa(toa_h); !now) return now.error();
  auto lines = util::SplitLines(toa_h);
  std::smatch m;
  for (auto& line : lines)
    if (std::regex_match(line, m, kTcpoptToa)) line = std::string(m[1]) + std::to_string(kind) + std::string(m[3]);
  return util::JoinLines(lines);
}

namespace {
const char* kSourceLine = "source \"net/toa/Kconfig\"";
const char* kObjLine = "obj-$(CONFIG_TOA) += toa/";
std::string Squash(std::string s) {
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t'; }), s.end());
  return s;
}
}  // namespace

bool HasKconfigSource(const std::string& net_kconfig) {
  for (const auto& l : util::SplitLines(net_kconfig))
    if (Squash(l) == Squash(kSourceLine)) return true;
  return false;
}

bool HasMakefileSubdir(const std::string& net_makefile) {
  for (const auto& l : util::SplitLines(net_makefile))
    if (Squash(l) == Squash(kObjLine)) return true;
  return false;
}

util::Result<std::string> AddKconfigSource(const std::string& net_kconfig) {
  if (HasKconfigSource(net_kconfig)) return net_kconfig;
  auto lines = util::SplitLines(net_kconfig);
  // The options of net/ sit inside `if NET ... endif   # if NET`.
  for (size_t i = lines.size(); i-- > 0;)
    if (Squash(lines[i]) == "endif#ifNET") {
      lines.insert(lines.begin() + static_cast<long>(i), {kSourceLine, ""});
      return util::JoinLines(lines);
    }
  return util::MakeError("net/Kconfig has no `endif   # if NET` line: not a layout this flow edits; add `" +
                         std::string(kSourceLine) + "` inside its `if NET` block by hand");
}

std::string AddMakefileSubdir(const std::string& net_makefile) {
  if (HasMakefileSubdir(net_makefile)) return net_makefile;
  std::string out = net_makefile;
  if (!out.empty() && out.back() != '\n') out += "\n";
  return out + kObjLine + "\n";
}

std::string ConfigValue(const std::string& config, const std::string& name) {
  std::string set = "CONFIG_" + name + "=";
  for (const auto& l : util::SplitLines(config))
    if (l.rfind(set, 0) == 0) return l.substr(set.size());
  return "n";
}

std::string SetConfigOptions(const std::string& config, const std::map<std::string, std::string>& options) {
  auto lines = util::SplitLines(config);
  for (const auto& [name, value] : options) {
    std::string set = "CONFIG_" + name + "=";
    std::string unset = "# CONFIG_" + name + " is not set";
    std::string want = value == "n" ? unset : set + value;
    bool done = false;
    for (auto it = lines.begin(); it != lines.end();) {
      if (it->rfind(set, 0) == 0 || *it == unset) {
        if (done) {
          it = lines.erase(it);
          continue;
        }
        *it = want;
        done = true;
      }
      ++it;
    }
    if (!done) lines.push_back(want);
  }
  return util::JoinLines(lines);
}

}  // namespace kernel
