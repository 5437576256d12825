#include "host/profile.h"

#include <fnmatch.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "util/fs.h"
#include "util/strings.h"

namespace host {

namespace {

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

using util::Trim;

std::vector<std::string> SplitWords(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

const std::set<std::string> kFamilies{"rhel", "suse", "debian", "coreos"};
const std::set<std::string> kPackageManagers{"yum", "dnf", "zypper", "apt", "none"};
const std::set<std::string> kAutoload{"sysconfig-modules", "modules-load.d", "suse-sysconfig",
                                      "coreos-container"};
const std::set<std::string> kBuild{"dkms", "kbuild", "container"};

// Values every profile string may refer to.
struct Vars {
  std::map<std::string, std::string> values;
  std::string Apply(std::string s) const {
    for (const auto& [k, v] : values) {
      std::string key = "{" + k + "}";
      for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + v.size()))
        s.replace(pos, key.size(), v);
    }
    return s;
  }
};

std::string Str(const YAML::Node& n, const Vars& vars) {
  if (!n || n.IsNull()) return "";
  return vars.Apply(n.as<std::string>());
}

std::vector<std::string> StrList(const YAML::Node& n, const Vars& vars) {
  std::vector<std::string> out;
  if (!n || !n.IsSequence()) return out;
  for (const auto& item : n) out.push_back(vars.Apply(item.as<std::string>()));
  return out;
}

std::optional<PackageSpec> Package(const YAML::Node& n, const Vars& vars) {
  if (!n || n.IsNull()) return std::nullopt;
  PackageSpec p;  // 
  p.name = Str(n["name"], vars);
  p.files = StrList(n["files"], vars);
  p.command = StrList(n["command"], vars);
  return p;
}

// defaults, overlaid by `over` key by key (a key replaces the whole value).
// A std::map of handles: assigning to a yaml-cpp node bound into a tree would
// overwrite the shared defaults themselves.
using Merged = std::map<std::string, YAML::Node>;

YAML::Node Get(const Merged& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? YAML::Node() : it->second;
}

bool Has(const YAML::Node& n) { return n && !n.IsNull(); }
void Overlay(Merged& into, const YAML::Node& over, const std::set<std::string>& skip) {
  if (!over || !over.IsMap()) return;
  for (const auto& kv : over) {
    auto key = kv.first.as<std::string>();
    if (skip.count(key)) continue;
    // erase + emplace: Node::operator= on a bound node rewrites its target.
    into.erase(key);
    into.emplace(key, kv.second);
  }
}

bool GlobMatch(const std::string& pattern, const std::string& text) {
  return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

}  // namespace

std::map<std::string, std::string> ParseOsRelease(const std::string& text) {
  std::map<std::string, std::string> kv;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), raw = line.substr(eq + 1), value;
    char quote = (!raw.empty() && (raw[0] == '"' || raw[0] == '\'')) ? raw[0] : 0;
    for (size_t i = quote ? 1 : 0; i < raw.size(); ++i) {
      if (quote && raw[i] == quote) break;
      if (raw[i] == '\\' && i + 1 < raw.size() && quote != '\'') {
        value += raw[++i];
        continue;
      }
      value += raw[i];
    }
    kv[key] = value;
  }
  return kv;
}

std::vector<std::string> Detection::AllPackages() const {
  std::vector<std::string> all;
  const auto& p = profile;
  if (p.package_manager == "none") return all;
  if (p.build == "dkms" && p.dkms_repo) all.push_back(p.dkms_repo->name);
  for (const auto& pkg : p.packages) all.push_back(pkg.name);
  if (!p.header_package.empty()) all.push_back(p.header_package);
  if (p.build == "dkms" && p.dkms) all.push_back(p.dkms->name);
  return all;
}

util::Result<ProfileSet> ProfileSet::Load(const std::string& dir) {
  namespace fs = std::filesystem;
  ProfileSet set;
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".yaml") files.push_back(it->path().string());
  if (files.empty())
    return util::MakeError("no distro profiles in " + dir +
                           ": set TOA_BUILD_PROFILES_DIR to the folder with distros/profiles/*.yaml");
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    YAML::Node doc;
    try {
      doc.reset(YAML::LoadFile(file));  // reset: operator= would rewrite the previous file's tree
    } catch (const YAML::Exception& e) {
      return util::MakeError(file + ": " + e.what());
    }
    try {
      if (doc["legacy"]) {
        for (const auto& r : doc["legacy"])
          set.legacy_.push_back({r["file"].as<std::string>(), r["regex"].as<std::string>(),
                                 r["id"].as<std::string>(), r["version"].as<std::string>()});
      }
      if (!doc["family"]) continue;
      auto family = doc["family"].as<std::string>();
      if (!kFamilies.count(family))
        return util::MakeError(file + ": family `" + family + "` is not one of rhel, suse, debian, coreos");
      for (YAML::Node d : doc["distros"]) {
        DistroEntry e;
        e.family = family;
        e.file = file;
        e.id = d["id"].as<std::string>();
        e.variant_id = d["variant_id"] ? d["variant_id"].as<std::string>() : "";
        e.name = d["name"] ? d["name"].as<std::string>() : e.id;
        e.default_release = d["default_release"] ? d["default_release"].as<std::string>() : "*";
        e.defaults.reset(doc["defaults"]);
        e.distro.reset(d);
        if (!d["releases"] || !d["releases"].IsSequence())
          return util::MakeError(file + ": distro " + e.id + " has no releases list");
        set.distros_.push_back(std::move(e));
      }
    } catch (const YAML::Exception& e) {
      return util::MakeError(file + ": " + e.what());
    }
  }
  return set;
}

util::Result<OsIdentity> ProfileSet::Identify(const RootFs& root) const {
  for (const char* file : {"/etc/os-release", "/usr/lib/os-release"}) {
    auto text = root.Read(file);
    if (!text) continue;
    auto kv = ParseOsRelease(*text);
    if (kv["ID"].empty()) continue;
    OsIdentity os;
    os.id = kv["ID"];
    os.version = kv["VERSION_ID"];
    os.name = !kv["PRETTY_NAME"].empty() ? kv["PRETTY_NAME"] : kv["NAME"];
    os.codename = kv["VERSION_CODENAME"];
    os.variant_id = kv["VARIANT_ID"];
    os.id_like = SplitWords(kv["ID_LIKE"]);
    os.source = file;
    return os;
  }
  for (const auto& rule : legacy_) {
    auto text = root.Read(rule.file);
    if (!text) continue;
    std::smatch m;
    std::regex re(rule.regex);
    if (!std::regex_search(*text, m, re)) continue;
    OsIdentity os;
    os.id = rule.id;
    os.version = rule.version;
    for (size_t i = 1; i < m.size() && i < 10; ++i) {
      std::string key = "{" + std::to_string(i) + "}";
      for (size_t pos = os.version.find(key); pos != std::string::npos; pos = os.version.find(key))
        os.version.replace(pos, key.size(), m[i].str());
    }
    auto first_line = text->substr(0, text->find('\n'));
    os.name = Trim(first_line);
    os.source = rule.file;
    return os;
  }
  return util::MakeError("cannot tell which distro " + root.root() +
                         " is: no /etc/os-release and no known legacy release file "
                         "(/etc/redhat-release, /etc/centos-release, /etc/SuSE-release, "
                         "/etc/lsb-release, /etc/debian_version)");
}

util::Result<Profile> ProfileSet::Resolve(const OsIdentity& os, const std::string& kernel) const {
  // Who to match: the ID itself, then each ID_LIKE entry in order.
  std::vector<std::pair<std::string, std::string>> tries{{os.id, "ID"}};
  for (const auto& like : os.id_like) tries.push_back({like, "ID_LIKE=" + like});
  const DistroEntry* entry = nullptr;
  std::string matched_by;
  for (const auto& [id, how] : tries) {
    // Entries with a VARIANT_ID first (Fedora CoreOS before Fedora). No
    // sorting of distros_: assigning yaml-cpp nodes would rewrite their trees.
    for (int pass = 0; pass < 2 && !entry; ++pass)
    for (const auto& e : distros_) {
      if (e.variant_id.empty() != (pass == 1)) continue;
      if (Lower(e.id) != Lower(id)) continue;
      if (!e.variant_id.empty() && Lower(e.variant_id) != Lower(os.variant_id)) continue;
      entry = &e;
      matched_by = e.variant_id.empty() ? how : how + "+VARIANT_ID=" + e.variant_id;
      break;
    }
    if (entry) break;
  }
  if (!entry) {
    std::string like;
    for (const auto& l : os.id_like) like += (like.empty() ? "" : " ") + l;
    return util::MakeError("no distro profile for ID=" + util::Printable(os.id, 60) +
                           (like.empty() ? "" : " (ID_LIKE=" + util::Printable(like, 100) + ")") +
                           ": add one under distros/profiles/ (see its README.md)");
  }
  // A derivative's VERSION_ID says nothing about its parent's releases.
  bool by_id = matched_by.rfind("ID_LIKE", 0) != 0;
  std::string version = (by_id && !os.version.empty()) ? os.version : entry->default_release;
  YAML::Node release;
  bool found = false;
  for (YAML::Node r : entry->distro["releases"]) {
    for (const auto& glob : r["versions"]) {
      if (GlobMatch(glob.as<std::string>(), version)) {
        release.reset(r);
        found = true;
        break;
      }
    }
    if (found) break;
  }
  if (!found)
    return util::MakeError("no release of " + entry->name + " in " + entry->file + " matches version " +
                           util::Printable(version, 60) + ": add one (or a '*' entry)");

  Merged merged;
  Overlay(merged, entry->defaults, {});
  Overlay(merged, entry->distro, {"id", "name", "variant_id", "default_release", "releases"});
  Overlay(merged, release, {"versions"});

  Vars vars;
  vars.values["kver"] = kernel;
  auto dash = kernel.rfind('-');
  vars.values["flavor"] = dash == std::string::npos ? "default" : kernel.substr(dash + 1);
  vars.values["version"] = os.version;
  vars.values["major"] = os.version.substr(0, os.version.find('.'));
  vars.values["codename"] = os.codename;

  Profile p;
  try {
    p.family = entry->family;
    p.distro_id = entry->id;
    p.distro_name = entry->name;
    p.matched_by = matched_by;
    p.package_manager = Str(Get(merged, "package_manager"), vars);
    p.header_package = Str(Get(merged, "header_package"), vars);
    p.header_package_reason = Str(Get(merged, "header_package_reason"), vars);
    // A kernel the distro does not ship (a custom build) has no headers package.
    auto shipped = StrList(Get(merged, "kernel_releases"), vars);
    if (!p.header_package.empty() && !shipped.empty() &&
        std::none_of(shipped.begin(), shipped.end(), [&](const std::string& g) { return GlobMatch(g, kernel); })) {
      std::string like;
      for (size_t i = 0; i < shipped.size() && i < 3; ++i) like += (i ? ", " : "") + shipped[i];
      p.header_package_reason = "kernel " + kernel + " is not a kernel " + entry->name + " ships (those match " + like +
                                (shipped.size() > 3 ? ", ..." : "") + "), so no package holds its headers: put them in "
                                "/lib/modules/" + kernel + "/build (`make modules_prepare` in its source tree), or "
                                "boot a distro kernel";
      p.header_package.clear();
    }
    if (!p.header_package.empty()) p.header_package_reason.clear();
    for (const auto& pkg : Get(merged, "packages")) p.packages.push_back(*Package(pkg, vars));
    if (Has(Get(merged, "dkms"))) {
      p.dkms = Package(Get(merged, "dkms"), vars);
      p.dkms_source = Str(Get(merged, "dkms")["source"], vars);
      p.dkms_repo = Package(Get(merged, "dkms")["repo"], vars);
    }
    p.autoload = Str(Get(merged, "autoload"), vars);
    p.build = Str(Get(merged, "build"), vars);
    p.kernel_hooks = StrList(Get(merged, "kernel_hooks"), vars);
    p.mok_key = Str(Get(merged, "mok_key"), vars);
    if (Has(Get(merged, "archive"))) {
      ArchiveSpec a;
      a.mirror = Str(Get(merged, "archive")["mirror"], vars);
      a.file = Str(Get(merged, "archive")["file"], vars);
      a.content = Str(Get(merged, "archive")["content"], vars);
      a.install_args = StrList(Get(merged, "archive")["install_args"], vars);
      p.archive = a;
    }
    if (Has(Get(merged, "container"))) {
      ContainerSpec c;
      c.runtime = Str(Get(merged, "container")["runtime"], vars);
      c.image = Str(Get(merged, "container")["image"], vars);
      c.setup = Str(Get(merged, "container")["setup"], vars);
      if (Has(Get(merged, "container")["mount_host_modules"]))
        c.mount_host_modules = Get(merged, "container")["mount_host_modules"].as<bool>();
      p.container = c;
    }
    if (Has(Get(merged, "module_supported"))) p.module_supported = Get(merged, "module_supported").as<bool>();
    p.unsupported_reason = Str(Get(merged, "unsupported_reason"), vars);
  } catch (const YAML::Exception& e) {
    return util::MakeError(entry->file + " (" + entry->id + "): " + e.what());
  }
  auto bad = [&](const std::string& key, const std::string& v) {
    return util::MakeError(entry->file + " (" + entry->id + " " + version + "): " + key + " `" + v +
                           "` is not a known value");
  };
  if (!kPackageManagers.count(p.package_manager)) return bad("package_manager", p.package_manager);
  if (!kAutoload.count(p.autoload)) return bad("autoload", p.autoload);
  if (!kBuild.count(p.build)) return bad("build", p.build);
  if (p.build == "dkms" && !p.dkms) return bad("build (dkms without a dkms package)", p.build);
  if (p.build == "container" && !p.container) return bad("build (container without container)", p.build);
  return p;
}

bool KernelVersionLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    bool da = std::isdigit(static_cast<unsigned char>(a[i])), db = std::isdigit(static_cast<unsigned char>(b[j]));
    if (da && db) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      auto na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      na.erase(0, std::min(na.find_first_not_of('0'), na.size()));
      nb.erase(0, std::min(nb.find_first_not_of('0'), nb.size()));
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

util::Status ValidateKernelRelease(const std::string& kver) {
  constexpr size_t kMax = 64;  // __NEW_UTS_LEN
  const char* fix = " (like 6.1.0-56-amd64): pass the kernel release as `uname -r` prints it";
  if (kver.empty()) return util::MakeError("an empty kernel release" + std::string(fix));
  std::string shown = "`" + util::Printable(kver, 64) + "`";
  if (kver.size() > kMax)
    return util::MakeError(shown + " is longer than " + std::to_string(kMax) + " characters, not a kernel release" + fix);
  for (unsigned char c : kver)
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '+' && c != '~' && c != '-')
      return util::MakeError(shown + " has a character a kernel release does not (only letters, digits and . _ + ~ -)" +
                             fix);
  if (kver[0] == '-' || kver[0] == '.')
    return util::MakeError(shown + " starts with `" + kver.substr(0, 1) + "`, not a kernel release" + fix);
  if (kver.find("..") != std::string::npos) return util::MakeError(shown + " holds `..`, not a kernel release" + fix);
  if (!std::isdigit(static_cast<unsigned char>(kver[0])))
    return util::MakeError(shown + " does not start with a version number, not a kernel release" + fix);
  return util::Ok{};
}

util::Result<std::string> ChooseKernel(const RootFs& root, const std::string& requested) {
  if (!requested.empty()) {
    if (auto s = ValidateKernelRelease(requested); !s) return util::MakeError("--kernel " + s.error().message);
    return requested;
  }
  if (root.is_host_root()) {
    struct utsname u {};
    if (::uname(&u) != 0) return util::MakeError("uname failed: pass --kernel KVER");
    return std::string(u.release);
  }
  std::vector<std::string> kernels;
  for (const char* dir : {"/lib/modules", "/usr/lib/modules"})
    for (const auto& name : root.List(dir))
      if (root.IsDir(std::string(dir) + "/" + name)) kernels.push_back(name);
  if (kernels.empty())
    return util::MakeError("no kernel under " + root.root() + "/lib/modules: pass --kernel KVER");
  return *std::max_element(kernels.begin(), kernels.end(), KernelVersionLess);
}

namespace {

// Kernel release suffixes that name the architecture (distro naming facts).
struct ArchSuffix {
  const char* suffix;
  const char* arch;
};
constexpr ArchSuffix kArchSuffixes[] = {
    {".x86_64", "x86_64"}, {"-amd64", "x86_64"}, {"-cloud-amd64", "x86_64"}, {"-rt-amd64", "x86_64"},
    {".aarch64", "aarch64"}, {"-arm64", "aarch64"}, {"-arm64-16k", "aarch64"}, {"-raspi", "aarch64"},
    {".ppc64le", "ppc64le"}, {"-powerpc64le", "ppc64le"}, {".s390x", "s390x"}, {"-s390x", "s390x"},
    {"-686", "i686"}, {"-686-pae", "i686"}, {".i686", "i686"}, {"-armmp", "armv7l"}, {"-riscv64", "riscv64"},
};
constexpr std::pair<const char*, const char*> kArchConfigs[] = {
    {"CONFIG_X86_64=y", "x86_64"}, {"CONFIG_ARM64=y", "aarch64"}, {"CONFIG_PPC64=y", "ppc64le"},
    {"CONFIG_S390=y", "s390x"}, {"CONFIG_RISCV=y", "riscv64"},
};

}  // namespace

std::pair<std::string, std::string> KernelArch(const RootFs& root, const std::string& kernel) {
  if (root.is_host_root()) {
    struct utsname u {};
    if (::uname(&u) == 0 && kernel == u.release) return {u.machine, "uname -m"};
  }
  for (const auto& s : kArchSuffixes)
    if (util::EndsWith(kernel, s.suffix)) return {s.arch, std::string("the release's suffix ") + s.suffix};
  for (const char* file : {"/build/.config", "/build/include/config/auto.conf"}) {
    auto text = root.Read("/lib/modules/" + kernel + file);
    if (!text) continue;
    for (const auto& [line, arch] : kArchConfigs)
      if (text->find(std::string("\n") + line + "\n") != std::string::npos || text->rfind(line, 0) == 0)
        return {arch, std::string("/lib/modules/") + kernel + file};
  }
  return {"", ""};
}

util::Result<Detection> Detect(const ProfileSet& profiles, const RootFs& root,
                               const std::string& requested_kernel) {
  auto os = profiles.Identify(root);
  if (!os) return os.error();
  auto kernel = ChooseKernel(root, requested_kernel);
  if (!kernel) return kernel.error();
  auto profile = profiles.Resolve(os.value(), kernel.value());
  if (!profile) return profile.error();
  Detection det{os.value(), kernel.value(), profile.value(), "", ""};
  std::tie(det.arch, det.arch_source) = KernelArch(root, det.kernel);
  if (!det.arch.empty() && det.arch != "x86_64" && det.profile.module_supported) {
    det.profile.module_supported = false;
    det.profile.unsupported_reason =
        det.arch == "aarch64"
            ? "kernel " + det.kernel + " is arm64 (aarch64, from " + det.arch_source +
                  "): TOA and UOA do not build there yet (ftrace with regs is missing on arm64 6.2+, "
                  "ftrace_set_filter_ip on a function's address fails on 5.10-5.17); nothing was installed; "
                  "use an x86_64 host"
            : "kernel " + det.kernel + " is " + det.arch + " (from " + det.arch_source +
                  "): TOA and UOA are built and tested on x86_64 only; nothing was installed; use an x86_64 host";
  }
  return det;
}

std::string ProfilesDir(const std::string& source_dir) {
  if (const char* v = std::getenv("TOA_BUILD_PROFILES_DIR"); v && *v) return v;
  return source_dir + "/distros/profiles";
}

}  // namespace host
