#include "kernel/grub_conf.h"

#include <sstream>

#include "util/strings.h"

namespace kernel {

namespace {

// The first word of a line and the rest; GRUB accepts `key=value` and `key value`.
std::pair<std::string, std::string> KeyValue(const std::string& line) {
  std::string t = util::Trim(line);
  size_t cut = t.find_first_of(" \t=");
  if (cut == std::string::npos) return {t, ""};
  return {t.substr(0, cut), util::Trim(t.substr(cut + 1))};
}

std::vector<std::string> Words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

const char* kFix = "; edit /boot/grub/grub.conf by hand (make the new kernel's entry the default, add nohz=off to "
                   "its kernel line), or fix the file and run again";

}  // namespace

util::Result<GrubConf> ParseGrubConf(const std::string& text) {
  GrubConf conf;
  conf.lines = util::SplitLines(text);
  std::string default_value;
  for (size_t i = 0; i < conf.lines.size(); ++i) {
    std::string t = util::Trim(conf.lines[i]);
    if (t.empty() || t[0] == '#') continue;
    auto [key, value] = KeyValue(t);
    if (key == "title") {
      if (!conf.entries.empty()) conf.entries.back().end_line = i;
      GrubEntry e;
      e.title = value;
      e.first_line = i;
      conf.entries.push_back(e);
    } else if (conf.entries.empty()) {
      if (key == "default") {
        default_value = value;
        conf.default_line = i;
      }
    } else if (key == "kernel") {
      auto& e = conf.entries.back();
      e.kernel_lines.push_back(i);
      auto words = Words(value);
      // `kernel --type=... /vmlinuz-...`: the image is the first non-option word.
      for (const auto& w : words)
        if (w.rfind("--", 0) != 0) {
          e.kernel_path = w;
          break;
        }
    }
  }
  if (!conf.entries.empty()) conf.entries.back().end_line = conf.lines.size();
  if (conf.entries.empty()) return util::MakeError("grub.conf has no `title` entry" + std::string(kFix));
  for (const auto& e : conf.entries) {
    if (e.kernel_lines.size() > 1)
      return util::MakeError("grub.conf entry `" + util::Printable(e.title, 80) + "` has " +
                             std::to_string(e.kernel_lines.size()) + " `kernel` lines" + kFix);
  }
  if (conf.default_line != std::string::npos) {
    bool digits = !default_value.empty() && default_value.find_first_not_of("0123456789") == std::string::npos &&
                  default_value.size() <= 4;
    if (!digits)
      return util::MakeError("grub.conf has `default=" + util::Printable(default_value, 40) +
                             "`, not an entry number" + kFix);
    conf.default_index = std::stoi(default_value);
    if (conf.default_index >= static_cast<int>(conf.entries.size()))
      return util::MakeError("grub.conf's default=" + default_value + " is past its " +
                             std::to_string(conf.entries.size()) + " entries" + kFix);
  }
  return conf;
}

int FindKernelEntry(const GrubConf& conf, const std::string& kver) {
  for (size_t i = 0; i < conf.entries.size(); ++i)
    if (Basename(conf.entries[i].kernel_path) == "vmlinuz-" + kver) return static_cast<int>(i);
  return -1;
}

namespace {

// The kernel line with `arg` (key=value) set: an existing key=... replaced.
std::string WithKernelArg(const std::string& line, const std::string& arg) {
  std::string key = arg.substr(0, arg.find('=') + 1);
  auto words = Words(line);
  std::string indent = line.substr(0, line.find_first_not_of(" \t"));
  std::string out = indent;
  bool set = false;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i];
    if (i > 1 && !key.empty() && w.rfind(key, 0) == 0) {
      if (set) continue;
      w = arg;
      set = true;
    }
    out += (i ? " " : "") + w;
  }
  if (!set) out += " " + arg;
  return out;
}

// The old entry's kernel release, from its image name.
std::string ReleaseOf(const GrubEntry& e) {
  std::string base = Basename(e.kernel_path);
  return base.rfind("vmlinuz-", 0) == 0 ? base.substr(8) : "";
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

util::Result<GrubEdit> MakeDefaultKernel(const std::string& text, const std::string& kver, const std::string& arg,
                                         const std::string& initrd_path) {
  auto conf = ParseGrubConf(text);
  if (!conf) return conf.error();
  GrubEdit edit;
  std::vector<std::string> lines = conf->lines;
  int index = FindKernelEntry(*conf, kver);
  if (index < 0) {
    const GrubEntry& from = conf->entries[conf->default_index];
    std::string old = ReleaseOf(from);
    if (old.empty() || from.kernel_lines.empty())
      return util::MakeError("grub.conf has no entry for " + kver + " and its default entry `" +
                             util::Printable(from.title, 80) + "` boots no /vmlinuz-VERSION to copy" + kFix);
    std::vector<std::string> entry;
    std::string title_prefix = from.title.substr(0, from.title.find(" ("));
    entry.push_back(conf->lines[from.first_line].substr(0, conf->lines[from.first_line].find("title")) +
                    "title " + title_prefix + " (" + kver + ")");
    for (size_t i = from.first_line + 1; i < from.end_line; ++i) {
      auto [key, value] = KeyValue(conf->lines[i]);
      if (key == "initrd") continue;
      entry.push_back(key == "kernel" ? ReplaceAll(conf->lines[i], "vmlinuz-" + old, "vmlinuz-" + kver)
                                      : conf->lines[i]);
    }
    if (!initrd_path.empty()) {
      std::string indent = conf->lines[from.kernel_lines[0]];
      indent = indent.substr(0, indent.find_first_not_of(" \t"));
      entry.push_back(indent + "initrd " + initrd_path);
    }
    // Blank lines and comments ending the entry stay where they were.
    lines.insert(lines.begin() + static_cast<long>(conf->entries[0].first_line), entry.begin(), entry.end());
    edit.added_entry = true;
    auto again = ParseGrubConf(util::JoinLines(lines));
    if (!again) return again.error();
    conf = again;
    index = FindKernelEntry(*conf, kver);
    if (index < 0) return util::MakeError("internal: the entry added for " + kver + " was not found again");
  }
  const GrubEntry& target = conf->entries[index];
  if (target.kernel_lines.empty())
    return util::MakeError("grub.conf entry `" + util::Printable(target.title, 80) + "` has no kernel line" + kFix);
  lines[target.kernel_lines[0]] = WithKernelArg(lines[target.kernel_lines[0]], arg);
  std::string def = "default=" + std::to_string(index);
  if (conf->default_line != std::string::npos)
    lines[conf->default_line] = def;
  else
    lines.insert(lines.begin(), def);
  edit.text = util::JoinLines(lines);
  edit.default_index = index;
  // Read back what will be written: the default is KVER's entry, with the argument.
  auto check = ParseGrubConf(edit.text);
  if (!check) return util::MakeError("the edited grub.conf does not parse (" + check.error().message + ")");
  int found = FindKernelEntry(*check, kver);
  if (found < 0 || check->default_index != found ||
      (" " + check->lines[check->entries[found].kernel_lines[0]] + " ").find(" " + arg + " ") == std::string::npos)
    return util::MakeError("internal: the edited grub.conf does not boot " + kver + " with " + arg + " by default");
  return edit;
}

}  // namespace kernel
