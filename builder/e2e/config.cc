#include "e2e/config.h"

#include <yaml-cpp/yaml.h>

#include <sstream>

#include "lab/paths.h"
#include "util/fs.h"

namespace e2e {

namespace {

std::string Where(const std::string& file, const YAML::Node& node) {
  return file + ":" + std::to_string(node.Mark().line + 1) + ": ";
}

util::Result<std::string> Text(const YAML::Node& map, const char* key, const std::string& file) {
  YAML::Node v = map[key];
  if (!v || !v.IsScalar() || v.as<std::string>().empty())
    return util::MakeError(Where(file, map) + "missing `" + key + "` (a non-empty string)");
  return v.as<std::string>();
}

}  // namespace

util::Result<Config> ParseConfig(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return util::MakeError(file + ":" + std::to_string(e.mark.line + 1) + ": not YAML: " + e.msg);
  }
  if (!root.IsMap()) return util::MakeError(file + ": expected a mapping with `releases`");
  Config c;
  c.file = file;
  try {
    if (auto p = root["image_packages"]; p && p.IsSequence())
      for (const auto& n : p) c.image_packages.push_back(n.as<std::string>());
    if (auto h = root["image_headroom_mb"]) c.image_headroom_mb = h.as<int>();
    auto rels = root["releases"];
    if (!rels || !rels.IsSequence() || rels.size() == 0)
      return util::MakeError(file + ": `releases` must be a non-empty list");
    for (const auto& r : rels) {
      ReleaseSpec s;
      for (auto [key, out] : {std::pair<const char*, std::string*>{"name", &s.name},
                              {"release", &s.release},
                              {"kernel_row", &s.kernel_row},
                              {"upgrade_row", &s.upgrade_row}}) {
        auto v = Text(r, key, file);
        if (!v) return v.error();
        *out = v.value();
      }
      c.releases.push_back(s);
    }
    if (auto d = root["default"]; d && d.IsSequence())
      for (const auto& n : d) c.defaults.push_back(n.as<std::string>());
  } catch (const YAML::Exception& e) {
    return util::MakeError(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (c.image_headroom_mb < 256)
    return util::MakeError(file + ": image_headroom_mb must be at least 256 (the VM installs compilers and headers)");
  if (c.defaults.empty())
    for (const auto& r : c.releases) c.defaults.push_back(r.name);
  return c;
}

util::Result<Config> LoadConfig(const std::string& path) {
  auto text = util::ReadFile(path);
  if (!text) return util::MakeError("cannot read " + path + ": " + text.error().message);
  return ParseConfig(text.value(), path);
}

std::string DefaultConfigPath() { return lab::SourceDir() + "/distros/e2e.yaml"; }

util::Result<std::vector<ReleaseSpec>> SelectReleases(const Config& config, const std::string& list) {
  std::vector<std::string> names;
  if (list.empty()) {
    names = config.defaults;
  } else {
    std::istringstream in(list);
    for (std::string n; std::getline(in, n, ',');)
      if (!n.empty()) names.push_back(n);
  }
  std::vector<ReleaseSpec> out;
  for (const auto& n : names) {
    bool found = false;
    for (const auto& r : config.releases)
      if (r.name == n) {
        out.push_back(r);
        found = true;
      }
    if (!found) {
      std::string known;
      for (const auto& r : config.releases) known += (known.empty() ? "" : ", ") + r.name;
      return util::MakeError("--releases: no release `" + n + "` in " + config.file + " (there are: " + known + ")");
    }
  }
  if (out.empty()) return util::MakeError("--releases: empty list");
  return out;
}

}  // namespace e2e
