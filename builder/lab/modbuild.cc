#include "lab/modbuild.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <sstream>

#include "lab/cache.h"
#include "util/fs.h"
#include "util/strings.h"

namespace lab {

namespace fs = std::filesystem;
using std::chrono::minutes;
using std::chrono::seconds;
using util::EndsWith;
using util::MakeError;

namespace {

const seconds kMakeTimeout = minutes(20);
const seconds kDkmsTimeout = minutes(20);
const seconds kDecompressTimeout = minutes(2);

// Build products a source tree may carry from someone's manual build; they
// must not leak into a fresh copy.
bool IsBuildProduct(const std::string& name) {
  for (const char* s : {".o", ".ko", ".mod", ".mod.c", ".cmd", ".a"})
    if (EndsWith(name, s)) return true;
  return name == "modules.order" || name == "Module.symvers" || name == ".tmp_versions";
}

util::Status CopySources(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!fs::is_directory(from, ec))
    return MakeError("module source " + from + " is not a directory");
  fs::remove_all(to, ec);
  fs::create_directories(to, ec);
  if (ec) return MakeError("cannot create " + to + ": " + ec.message());
  for (auto it = fs::recursive_directory_iterator(from, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) return MakeError("cannot read " + from + ": " + ec.message());
    std::string name = it->path().filename().string();
    if (IsBuildProduct(name)) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    fs::path dest = fs::path(to) / fs::relative(it->path(), from);
    if (it->is_directory()) {
      fs::create_directories(dest, ec);
    } else if (it->is_regular_file() || it->is_symlink()) {
      fs::copy(it->path(), dest, fs::copy_options::overwrite_existing | fs::copy_options::copy_symlinks, ec);
    }
    if (ec) return MakeError("cannot copy " + it->path().string() + ": " + ec.message());
  }
  return util::Ok{};
}

std::vector<fs::path> FindModules(const std::string& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    std::string n = it->path().filename().string();
    if (it->is_regular_file() &&
        (EndsWith(n, ".ko") || EndsWith(n, ".ko.xz") || EndsWith(n, ".ko.zst") || EndsWith(n, ".ko.gz")))
      out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Copies the modules to a fresh <cache>/builds/<row>/<kver>/<method>/,
// decompressing what DKMS compressed (the guest loads plain .ko files).
util::Result<std::vector<std::string>> Collect(const std::vector<fs::path>& modules,
                                               const std::string& out_dir,
                                               util::ProcessRunner& runner) {
  if (modules.empty()) return MakeError("the build produced no .ko files");
  std::string tmp = out_dir + ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return MakeError("cannot create " + tmp + ": " + ec.message());
  std::vector<std::string> names;
  for (const auto& m : modules) {
    std::string name = m.filename().string();
    fs::path dest = fs::path(tmp) / name;
    if (fs::exists(dest, ec)) {
      fs::remove_all(tmp, ec);
      return MakeError("two modules named " + name + " in the build");
    }
    fs::copy_file(m, dest, ec);
    if (ec) return MakeError("cannot copy " + m.string() + ": " + ec.message());
    std::vector<std::string> unpack;
    if (EndsWith(name, ".ko.xz")) unpack = {"xz", "-d", "-f", dest.string()};
    if (EndsWith(name, ".ko.zst")) unpack = {"zstd", "-q", "-d", "-f", "--rm", dest.string()};
    if (EndsWith(name, ".ko.gz")) unpack = {"gzip", "-d", "-f", dest.string()};
    if (!unpack.empty()) {
      util::ProcessSpec spec;
      spec.argv = unpack;
      spec.timeout = kDecompressTimeout;
      auto r = runner.RunChecked(spec, "decompress " + name);
      if (!r) return r.error();
      name = name.substr(0, name.rfind(".ko") + 3);
    }
    names.push_back(name);
  }
  if (auto st = RemoveTree(out_dir, runner); !st) return st.error();
  fs::rename(tmp, out_dir, ec);
  if (ec) return MakeError("cannot move " + tmp + " to " + out_dir + ": " + ec.message());
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(out_dir + "/" + n);
  return out;
}

// KEY="value" / KEY=value from dkms.conf (a shell fragment; we read only
// plain assignments).
std::string ConfValue(const std::string& conf, const std::string& key) {
  std::istringstream ss(conf);
  std::string line;
  while (std::getline(ss, line)) {
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line.compare(b, key.size() + 1, key + "=") != 0) continue;
    std::string v = line.substr(b + key.size() + 1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.pop_back();
    if (v.size() >= 2 && (v[0] == '"' || v[0] == '\'') && v.back() == v[0]) v = v.substr(1, v.size() - 2);
    return v;
  }
  return "";
}

std::string OutDir(const ProvisionedKernel& k, const std::string& cache_root, BuildMethod m) {
  return cache_root + "/builds/" + k.row + "/" + k.kver + "/" + BuildMethodName(m);
}

util::Result<BuiltModules> BuildKbuild(const ProvisionedKernel& k, const std::string& src,
                                       util::ProcessRunner& runner, const std::string& cache_root) {
  auto lock = util::FileLock::Acquire(cache_root + "/locks/build-" + k.row + "-kbuild.lock", 3600);
  if (!lock) return lock.error();
  std::string in_root = "/build/" + k.row + "/kbuild";
  if (auto st = CopySources(src, k.build_root + in_root); !st) return st.error();
  auto session = RootSession::Enter(k.build_root, cache_root, runner);
  if (!session) return session.error();
  BuiltModules built;
  auto make = session->Run({"make", "-C", k.headers_dir, "M=" + in_root, "modules"}, kMakeTimeout,
                           "Kbuild for " + k.row + " (" + k.kver + ")");
  if (!make) return make.error();
  built.log = make->output;
  // Debug info is most of a module (~850 of ~900 KB) and the guest never
  // reads it: stripped by the release's own binutils (as DKMS and
  // INSTALL_MOD_STRIP do), the initramfs unpacks and insmod copies less.
  auto modules = FindModules(k.build_root + in_root);
  std::vector<std::string> strip = {"strip", "--strip-debug"};
  for (const auto& m : modules) strip.push_back(m.string().substr(k.build_root.size()));
  if (!modules.empty()) {
    auto stripped = session->Run(strip, kMakeTimeout, "strip the " + k.row + " modules");
    if (!stripped) return stripped.error();
  }
  auto ko = Collect(modules, OutDir(k, cache_root, BuildMethod::kKbuild), runner);
  if (!ko) return MakeError("Kbuild for " + k.row + ": " + ko.error().message);
  built.ko_files = *ko;
  return built;
}

util::Result<BuiltModules> BuildDkms(const ProvisionedKernel& k, const std::string& src,
                                     util::ProcessRunner& runner, const std::string& cache_root) {
  auto conf = util::ReadFile(src + "/dkms.conf");
  if (!conf) return MakeError("DKMS build needs " + src + "/dkms.conf: " + conf.error().message);
  std::string name = ConfValue(*conf, "PACKAGE_NAME"), version = ConfValue(*conf, "PACKAGE_VERSION");
  if (name.empty() || version.empty() || name.find('/') != std::string::npos ||
      version.find('/') != std::string::npos)
    return MakeError(src + "/dkms.conf must set PACKAGE_NAME and PACKAGE_VERSION plainly");
  // DKMS state (/var/lib/dkms, /usr/src/NAME-VERSION) is per root, shared by
  // the rows of a release: one DKMS build per root at a time.
  fs::path root_name = fs::path(k.build_root).filename();
  auto lock = util::FileLock::Acquire(cache_root + "/locks/dkms-" + root_name.string() + ".lock", 3600);
  if (!lock) return lock.error();
  auto session = RootSession::Enter(k.build_root, cache_root, runner);
  if (!session) return session.error();

  std::string nv = name + "/" + version;
  std::string state = k.build_root + "/var/lib/dkms/" + name;
  std::string src_in_root = "/usr/src/" + name + "-" + version;
  std::error_code ec;
  auto forget = [&]() {
    // Leaves no DKMS state behind, whatever a previous run left.
    if (fs::exists(state, ec)) session->RunUnchecked({"dkms", "remove", nv, "--all"}, kDkmsTimeout);
    fs::remove_all(state, ec);
    fs::remove_all(k.build_root + src_in_root, ec);
  };
  forget();
  if (auto st = CopySources(src, k.build_root + src_in_root); !st) return st.error();

  BuiltModules built;
  auto add = session->Run({"dkms", "add", nv}, kDkmsTimeout, "dkms add " + nv);
  if (!add) {
    forget();
    return add.error();
  }
  auto build = session->RunUnchecked({"dkms", "build", nv, "-k", k.kver}, kDkmsTimeout);
  if (!build || !build->ok()) {
    std::string detail = build ? util::OutputTail(build->output, 3) : build.error().message;
    auto make_log = util::ReadFile(state + "/" + version + "/build/make.log");
    if (make_log) detail += " | make.log: " + util::OutputTail(*make_log, 5);
    forget();
    return MakeError("dkms build " + nv + " -k " + k.kver + " failed" +
                     (build && build->timed_out ? " (deadline)" : "") + ": " + detail);
  }
  built.log = add->output + build->output;
  auto ko = Collect(FindModules(state + "/" + version + "/" + k.kver), OutDir(k, cache_root, BuildMethod::kDkms),
                    runner);
  forget();
  if (!ko) return MakeError("dkms build " + nv + ": " + ko.error().message);
  built.ko_files = *ko;
  return built;
}

}  // namespace

std::string BuildMethodName(BuildMethod method) {
  return method == BuildMethod::kDkms ? "dkms" : "kbuild";
}

util::Result<BuildMethod> ParseBuildMethod(const std::string& name) {
  if (name == "kbuild") return BuildMethod::kKbuild;
  if (name == "dkms") return BuildMethod::kDkms;
  return MakeError("unknown build method `" + name + "` (use kbuild or dkms)");
}

util::Result<BuiltModules> BuildModules(const ProvisionedKernel& kernel,
                                        const std::string& module_src, BuildMethod method,
                                        util::ProcessRunner& runner, const std::string& cache_root) {
  auto start = std::chrono::steady_clock::now();
  auto built = method == BuildMethod::kDkms ? BuildDkms(kernel, module_src, runner, cache_root)
                                            : BuildKbuild(kernel, module_src, runner, cache_root);
  if (built)
    built->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return built;
}

}  // namespace lab
