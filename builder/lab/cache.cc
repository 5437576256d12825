#include "lab/cache.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lab {

namespace fs = std::filesystem;
using util::MakeError;

namespace {

// Decodes the octal escapes (\040 for space) of /proc/self/mountinfo paths.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        if (i + j >= s.size() || s[i + j] < '0' || s[i + j] > '7') octal = false;
        else v = v * 8 + (s[i + j] - '0');
      }
      if (octal) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

std::vector<std::string> MountsBelow(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path base = fs::weakly_canonical(dir, ec);
  if (ec) return out;
  std::string prefix = base.string();
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string id, parent, devno, root, mount_point;
    if (!(ss >> id >> parent >> devno >> root >> mount_point)) continue;
    mount_point = Unescape(mount_point);
    if (mount_point == prefix || mount_point.rfind(prefix + "/", 0) == 0)
      out.push_back(mount_point);
  }
  // Deepest first, so nested mounts go before their parents.
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

util::Status RemoveTree(const std::string& dir, util::ProcessRunner& runner) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return util::Ok{};
  for (const auto& mount_point : MountsBelow(dir)) {
    util::ProcessSpec spec;
    // Lazy: a process that died inside the root may still hold it busy.
    spec.argv = {"umount", "-l", mount_point};
    spec.timeout = std::chrono::seconds(60);
    auto r = runner.RunChecked(spec, "unmount " + mount_point + " before deleting " + dir);
    if (!r) return r.error();
  }
  if (!MountsBelow(dir).empty())
    return MakeError("cannot delete " + dir + ": something is still mounted below it");
  fs::remove_all(dir, ec);
  if (ec) return MakeError("cannot delete " + dir + ": " + ec.message());
  return util::Ok{};
}

std::string StampValue(const std::string& stamp, const std::string& key) {
  std::istringstream ss(stamp);
  std::string line;
  while (std::getline(ss, line))
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  return "";
}

util::Result<std::string> ReadStamp(const std::string& dir) {
  return util::ReadFile(dir + "/" + kStampName);
}

std::string EntryProblem(const CacheEntrySpec& spec) {
  std::error_code ec;
  if (!fs::is_directory(spec.dir, ec)) return "absent";
  auto stamp = ReadStamp(spec.dir);
  if (!stamp) return "no stamp (" + std::string(kStampName) + "): partial or interrupted build";
  // The recipe opens the stamp; anything after it is what the build recorded.
  if (stamp->compare(0, spec.recipe.size(), spec.recipe) != 0 ||
      (stamp->size() > spec.recipe.size() && (*stamp)[spec.recipe.size()] != '\n'))
    return "stamp records a different recipe";
  if (stamp->find("\nend\n") == std::string::npos && stamp->rfind("end\n", 0) != 0)
    return "stamp is truncated";
  for (const auto& key : spec.key_files) {
    if (!fs::exists(fs::path(spec.dir) / key, ec)) return "key file " + key + " is missing";
  }
  return "";
}

util::Result<EnsureResult> EnsureEntry(
    const CacheEntrySpec& spec, util::ProcessRunner& runner,
    const std::function<util::Result<std::string>(const std::string& tmp_dir)>& build) {
  auto lock = util::FileLock::Acquire(spec.lock, spec.lock_timeout_s);
  if (!lock) return lock.error();

  EnsureResult result;
  std::string problem = EntryProblem(spec);
  if (problem.empty()) {
    auto stamp = ReadStamp(spec.dir);
    if (!stamp) return stamp.error();
    result.stamp = *stamp;
    return result;
  }
  result.rebuilt_because = problem == "absent" ? "" : problem;
  if (auto st = RemoveTree(spec.dir, runner); !st) return st.error();

  fs::path final_dir(spec.dir);
  std::string tmp = (final_dir.parent_path() /
                     ("." + final_dir.filename().string() + ".tmp." + std::to_string(::getpid())))
                        .string();
  std::error_code ec;
  // Temp dirs of this entry are left by runs that died (we hold the entry's
  // lock, so no live run is filling one); they may even have /proc mounted.
  std::string tmp_prefix = "." + final_dir.filename().string() + ".tmp.";
  for (const auto& e : fs::directory_iterator(final_dir.parent_path(), ec)) {
    if (e.path().filename().string().rfind(tmp_prefix, 0) != 0) continue;
    if (auto st = RemoveTree(e.path().string(), runner); !st) return st.error();
  }
  ec.clear();
  fs::create_directories(tmp, ec);
  if (ec) return MakeError("cannot create " + tmp + ": " + ec.message());

  auto extra = build(tmp);
  if (!extra) {
    RemoveTree(tmp, runner);
    return extra.error();
  }
  std::string stamp = spec.recipe + "\n" + *extra;
  if (!stamp.empty() && stamp.back() != '\n') stamp += '\n';
  stamp += "end\n";
  for (const auto& key : spec.key_files) {
    if (!fs::exists(fs::path(tmp) / key, ec)) {
      RemoveTree(tmp, runner);
      return MakeError("building " + spec.dir + " did not produce " + key);
    }
  }
  if (!MountsBelow(tmp).empty()) {
    RemoveTree(tmp, runner);
    return MakeError("building " + spec.dir + " left something mounted inside it");
  }
  if (auto st = util::WriteFileAtomic(tmp + "/" + kStampName, stamp); !st) {
    RemoveTree(tmp, runner);
    return st.error();
  }
  fs::rename(tmp, spec.dir, ec);
  if (ec) {
    RemoveTree(tmp, runner);
    return MakeError("cannot move " + tmp + " to " + spec.dir + ": " + ec.message());
  }
  result.stamp = stamp;
  result.built = true;
  return result;
}

}  // namespace lab
