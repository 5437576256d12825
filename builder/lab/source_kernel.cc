#include "lab/source_kernel.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "lab/cache.h"
#include "util/fs.h"
#include "util/strings.h"

namespace lab {

namespace fs = std::filesystem;
using std::chrono::minutes;
using std::chrono::seconds;
using util::MakeError;

namespace {

// Bumped when the way source kernels are built changes.
const char* kSourceFormat = "1";
// A kernel tarball is tens of MB; anything far outside that is not one.
const uintmax_t kMinTarballBytes = 1u << 20;
const uintmax_t kMaxTarballBytes = uintmax_t{8} << 30;

const seconds kChecksumTimeout = minutes(2);
const seconds kFetchTimeout = minutes(30);
const seconds kUnpackTimeout = minutes(10);
const seconds kPatchTimeout = minutes(2);
const seconds kConfigTimeout = minutes(5);
const seconds kInstallTimeout = minutes(10);

using util::Join;

// Where the row's entry lives inside its build root (and so inside chroot).
std::string EntryInRoot(const KernelRow& row) {
  return "/usr/src/toa-build/" + row.name + "/" + row.source.Kver();
}

std::vector<std::string> PatchFiles(const KernelSource& source) {
  std::vector<std::string> out;
  if (source.patches_dir.empty()) return out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(source.patches_dir, ec))
    if (e.is_regular_file() && util::EndsWith(e.path().filename().string(), ".patch"))
      out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

util::Result<std::string> Sha256(util::ProcessRunner& runner, const std::string& path) {
  auto r = runner.RunChecked({"sha256sum", "--", path}, kChecksumTimeout, "checksum " + path);
  if (!r) return r.error();
  std::string sum = r->output.substr(0, r->output.find(' '));
  if (sum.size() != 64) return MakeError("sha256sum printed no checksum for " + path);
  return sum;
}

// What the entry is built from: changing any of these rebuilds the kernel.
util::Result<std::string> Recipe(const KernelRow& row, const std::string& tarball_sum,
                                 const std::string& gcc) {
  const KernelSource& s = row.source;
  std::string recipe = std::string("kind=source-kernel\nformat=") + kSourceFormat + "\nrow=" + row.name +
                       "\nkver=" + s.Kver() + "\ntarball=" + s.tarball + "\ntarball_sha256=" +
                       tarball_sum + "\nroot_release=" + row.root_release + "\ngcc=" + gcc +
                       "\nbase_config=" + s.base_config;
  auto config = util::ReadFile(s.config);
  if (!config) return config.error();
  recipe += "\nconfig_fnv=" + util::Fnv1a64Hex(*config);
  for (const auto& p : PatchFiles(s)) {
    auto text = util::ReadFile(p);
    if (!text) return text.error();
    recipe += "\npatch=" + fs::path(p).filename().string() + ":" + util::Fnv1a64Hex(*text);
  }
  return recipe;
}

util::Status CheckTarballFile(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return MakeError(path + " is not a regular file");
  auto size = static_cast<uintmax_t>(st.st_size);
  if (size < kMinTarballBytes || size > kMaxTarballBytes)
    return MakeError(path + " is " + std::to_string(size) +
                     " bytes, not the size of a kernel source tarball");
  return util::Ok{};
}

}  // namespace

std::vector<std::string> SourceSearchPath(const std::vector<std::string>& dirs,
                                          const std::string& cache_root) {
  std::vector<std::string> out;
  for (const auto& d : dirs)
    if (!d.empty()) out.push_back(d);
  if (const char* env = std::getenv(kSourcesEnv)) {
    std::istringstream ss(env);
    std::string d;
    while (std::getline(ss, d, ':'))
      if (!d.empty()) out.push_back(d);
  }
  out.push_back(cache_root + "/sources");
  return out;
}

util::Result<std::string> FindSourceTarball(const KernelRow& row,
                                            const std::vector<std::string>& search_path,
                                            const std::string& cache_root,
                                            util::ProcessRunner& runner, const ProgressFn& progress_fn) {
  const KernelSource& s = row.source;
  auto progress = [&](const std::string& text) {
    if (progress_fn) progress_fn(text);
  };
  std::error_code ec;
  for (const auto& dir : search_path) {
    fs::path candidate = fs::path(dir) / s.tarball;
    if (!fs::exists(candidate, ec)) continue;
    if (auto st = CheckTarballFile(candidate.string()); !st)
      return MakeError("row " + row.name + ": " + st.error().message + "; put CentOS's " + s.tarball +
                       " there or remove it");
    return candidate.string();
  }
  std::string where = Join(search_path, ", ");
  std::string cache_sources = cache_root + "/sources";
  if (s.archive_url.empty())
    return MakeError("row " + row.name + ": " + s.tarball + " is in none of " + where + "; put it in " +
                     cache_sources + " or pass --sources DIR (or set " + kSourcesEnv + ")");
  // Fetch the archive (an SRPM) and take the tarball out of it, in a
  // scratch folder: only a complete file is renamed into the sources folder.
  std::string scratch = cache_sources + "/.fetch-" + row.name + "-" + std::to_string(::getpid());
  util::ScratchPath registered(scratch);
  fs::remove_all(scratch, ec);
  fs::create_directories(scratch, ec);
  if (ec) return MakeError("cannot create " + scratch + ": " + ec.message());
  std::string archive = scratch + "/" + fs::path(s.archive_url).filename().string();
  if (fs::path(archive).filename().empty() || fs::path(archive).filename() == ".")
    archive = scratch + "/archive";
  auto fail = [&](const std::string& what) -> util::Error {
    fs::remove_all(scratch, ec);
    return util::Error{"row " + row.name + ": " + s.tarball + " is in none of " + where +
                       ", and " + what + "; get " + s.archive_url + " yourself and put the " +
                       s.archive_member + " inside it in " + cache_sources +
                       " as " + s.tarball + " (or pass --sources DIR)"};
  };
  progress("fetching " + s.archive_url);
  util::ProcessSpec fetch;
  fetch.argv = {"curl", "-fsSL", "--retry", "2", "--connect-timeout", "30", "-o", archive, "--",
                s.archive_url};
  fetch.timeout = kFetchTimeout;
  auto got = runner.Run(fetch);
  if (!got || !got->ok())
    return fail("fetching it failed (" +
                (got ? (got->timed_out ? std::string("deadline") : util::OutputTail(got->output, 1))
                     : got.error().message) +
                ")");
  progress("unpacking " + s.archive_member + " from " + fs::path(archive).filename().string());
  util::ProcessSpec unpack;
  unpack.argv = {"bsdtar", "-x", "-f", archive, "-C", scratch, "--", s.archive_member};
  unpack.timeout = kUnpackTimeout;
  auto out = runner.Run(unpack);
  std::string member = scratch + "/" + s.archive_member;
  if (!out || !out->ok() || !fs::is_regular_file(member, ec))
    return fail("the fetched archive holds no " + s.archive_member + " (" +
                (out ? util::OutputTail(out->output, 1) : out.error().message) + ")");
  if (auto st = CheckTarballFile(member); !st) return fail(st.error().message);
  fs::rename(member, cache_sources + "/" + s.tarball, ec);
  if (ec) return fail("moving it into place failed: " + ec.message());
  fs::remove_all(scratch, ec);
  return cache_sources + "/" + s.tarball;
}

std::vector<std::pair<std::string, std::string>> MakefileVariables(const std::string& makefile) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream ss(makefile);
  std::string line;
  auto trim = [](std::string v) {
    size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
  };
  while (std::getline(ss, line)) {
    size_t eq = line.find('=');
    if (eq == std::string::npos || line.empty() || line[0] == '#' || line[0] == '\t') continue;
    std::string name = trim(line.substr(0, eq));
    if (name.empty() || name.find_first_of(" :+?$()") != std::string::npos) continue;
    bool seen = false;
    for (const auto& kv : out) seen = seen || kv.first == name;
    if (!seen) out.push_back({name, trim(line.substr(eq + 1))});
  }
  return out;
}

std::string MakefileMismatch(const KernelSource& source, const std::string& makefile) {
  auto vars = MakefileVariables(makefile);
  std::vector<std::string> wrong;
  for (const auto& [name, want] : source.makefile) {
    std::string have = "(none)";
    for (const auto& [n, v] : vars)
      if (n == name) have = v.empty() ? "(empty)" : v;
    if (have != want) wrong.push_back(name + " is " + util::Printable(have, 40) + ", not " + want);
  }
  return Join(wrong, ", ");
}

std::vector<std::pair<std::string, std::string>> ConfigSymbols(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string unset_prefix = "# CONFIG_", unset_suffix = " is not set";
    if (line.rfind(unset_prefix, 0) == 0 && util::EndsWith(line, unset_suffix)) {
      out.push_back({line.substr(2, line.size() - 2 - unset_suffix.size()), "n"});
    } else if (line.rfind("CONFIG_", 0) == 0 && line.find('=') != std::string::npos) {
      size_t eq = line.find('=');
      out.push_back({line.substr(0, eq), line.substr(eq + 1)});
    }
  }
  return out;
}

std::string MergeConfig(const std::string& config, const std::string& fragment) {
  std::map<std::string, bool> replaced;
  for (const auto& [sym, value] : ConfigSymbols(fragment)) replaced[sym] = true;
  std::string out;
  std::istringstream ss(config);
  std::string line;
  while (std::getline(ss, line)) {
    auto syms = ConfigSymbols(line);
    if (!syms.empty() && replaced.count(syms.front().first)) continue;
    out += line + "\n";
  }
  out += "# --- toa-build: the row's config fragment ---\n";
  for (const auto& [sym, value] : ConfigSymbols(fragment))
    out += value == "n" ? "# " + sym + " is not set\n" : sym + "=" + value + "\n";
  return out;
}

std::vector<std::string> LostConfigLines(const std::string& fragment, const std::string& config) {
  std::map<std::string, std::string> have;
  for (const auto& [sym, value] : ConfigSymbols(config)) have[sym] = value;
  std::vector<std::string> lost;
  for (const auto& [sym, want] : ConfigSymbols(fragment)) {
    auto it = have.find(sym);
    std::string got = it == have.end() ? "n" : it->second;
    if (got != want) lost.push_back(sym + "=" + want + " (got: " + got + ")");
  }
  return lost;
}

util::Result<ProvisionedKernel> ProvisionSourceRow(const KernelRow& row, util::ProcessRunner& runner,
                                                   const std::string& cache_root,
                                                   const ProgressFn& progress,
                                                   const ProvisionOptions& options) {
  auto start = std::chrono::steady_clock::now();
  const KernelSource& s = row.source;
  const std::string kver = s.Kver();
  std::string root = RootDir(cache_root, row.root_release);
  auto root_stamp = ReadStamp(root);
  if (!root_stamp) return MakeError("the " + row.root_release + " build root is not ready: " + root_stamp.error().message);
  std::string gcc = StampValue(*root_stamp, "gcc");

  auto tarball = FindSourceTarball(row, SourceSearchPath(options.source_dirs, cache_root), cache_root,
                                   runner, progress);
  if (!tarball) return tarball.error();
  auto sum = Sha256(runner, *tarball);
  if (!sum) return sum.error();
  auto recipe = Recipe(row, *sum, gcc);
  if (!recipe) return recipe.error();

  CacheEntrySpec spec;
  spec.dir = root + EntryInRoot(row);
  spec.lock = cache_root + "/locks/source-kernel-" + row.name + ".lock";
  spec.recipe = *recipe;
  spec.key_files = {"boot/vmlinuz-" + kver, "lib/modules/" + kver + "/modules.dep", "linux/Makefile",
                    "linux/Module.symvers", "linux/include/config/kernel.release"};
  spec.lock_timeout_s = 60 * (s.build_minutes + 30);
  std::error_code ec;
  fs::create_directories(fs::path(spec.dir).parent_path(), ec);
  std::string log_path = cache_root + "/logs/" + row.name + ".kernel-build.log";

  auto entry = EnsureEntry(spec, runner, [&](const std::string& tmp) -> util::Result<std::string> {
    auto build_start = std::chrono::steady_clock::now();
    std::string tmp_in_root = tmp.substr(root.size());
    std::string tree = tmp + "/linux";
    progress("unpacking " + fs::path(*tarball).filename().string());
    util::ProcessSpec untar;
    untar.argv = {"tar", "-x", "-f", *tarball, "-C", tmp, "--no-same-owner"};
    untar.timeout = kUnpackTimeout;
    auto x = runner.Run(untar);
    if (!x) return x.error();
    if (!x->ok() || !fs::is_regular_file(tmp + "/" + s.top_dir + "/Makefile", ec)) {
      std::string why = x->timed_out ? "unpacking hit its deadline" : util::OutputTail(x->output, 2);
      return MakeError("row " + row.name + ": " + *tarball + " is truncated, corrupt or not a tree under " +
                       s.top_dir + "/ (" + why + "); get it again (" +
                       (s.archive_url.empty() ? "from your distro's vault" : s.archive_url) + ")");
    }
    fs::rename(tmp + "/" + s.top_dir, tree, ec);
    if (ec) return MakeError("cannot rename the unpacked tree: " + ec.message());
    auto makefile = util::ReadFile(tree + "/Makefile");
    if (!makefile) return makefile.error();
    if (std::string why = MakefileMismatch(s, *makefile); !why.empty())
      return MakeError("row " + row.name + ": " + *tarball + " is not the tree the row names: its Makefile's " +
                       why + "; put the right " + s.tarball + " there");

    for (const auto& p : PatchFiles(s)) {
      progress("patch " + fs::path(p).filename().string());
      util::ProcessSpec patch;
      patch.argv = {"patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-d", tree, "-i", p};
      patch.timeout = kPatchTimeout;
      auto r = runner.Run(patch);
      if (!r || !r->ok())
        return MakeError("row " + row.name + ": patch " + p + " does not apply to " + s.tarball + " (" +
                         (r ? util::OutputTail(r->output, 2) : r.error().message) + ")");
    }

    auto session = RootSession::Enter(root, cache_root, runner);
    if (!session) return session.error();
    std::string tree_in_root = tmp_in_root + "/linux";
    progress("configure: " + s.base_config + " + " + fs::path(s.config).filename().string());
    auto base = session->Run({"make", "-s", s.base_config}, kConfigTimeout,
                             "make " + s.base_config + " for " + row.name, tree_in_root);
    if (!base) return base.error();
    auto fragment = util::ReadFile(s.config);
    if (!fragment) return fragment.error();
    auto dot_config = util::ReadFile(tree + "/.config");
    if (!dot_config) return dot_config.error();
    if (auto st = util::WriteFileAtomic(tree + "/.config", MergeConfig(*dot_config, *fragment)); !st)
      return st.error();
    auto old = session->Run({"make", "-s", "olddefconfig"}, kConfigTimeout,
                            "make olddefconfig for " + row.name, tree_in_root);
    if (!old) return old.error();
    auto final_config = util::ReadFile(tree + "/.config");
    if (!final_config) return final_config.error();
    auto lost = LostConfigLines(*fragment, *final_config);
    if (!lost.empty())
      return MakeError("row " + row.name + ": " + std::to_string(lost.size()) + " line(s) of " + s.config +
                       " did not survive olddefconfig (their dependencies are off): " +
                       Join(std::vector<std::string>(lost.begin(), lost.begin() + std::min<size_t>(lost.size(), 5)),
                            ", ") +
                       "; fix the fragment");

    unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
    std::string extraversion = "EXTRAVERSION=" + s.extraversion;
    progress("building " + kver + " with gcc " + gcc + " (-j" + std::to_string(jobs) +
             "; a cold build takes minutes)");
    auto make = session->RunUnchecked({"make", "-s", "-j" + std::to_string(jobs), extraversion, "bzImage", "modules"},
                                      minutes(s.build_minutes), tree_in_root);
    if (!make) return make.error();
    util::WriteFileAtomic(log_path, make->output);
    if (!make->ok())
      return MakeError("row " + row.name + ": the kernel build failed" +
                       (make->timed_out ? " (deadline of " + std::to_string(s.build_minutes) + " min)" : "") +
                       ": " + util::OutputTail(make->output, 3) + " (full log: " + log_path + ")");
    auto release = util::ReadFile(tree + "/include/config/kernel.release");
    std::string built_release = release ? release->substr(0, release->find('\n')) : "";
    if (built_release != kver)
      return MakeError("row " + row.name + ": the tree built release `" + util::Printable(built_release, 60) +
                       "`, not " + kver + "; check `source.extraversion` and the top Makefile");

    progress("installing the modules of " + kver);
    auto install = session->Run({"make", "-s", extraversion, "INSTALL_MOD_PATH=" + tmp_in_root, "modules_install"},
                                kInstallTimeout, "make modules_install for " + row.name, tree_in_root);
    if (!install) return install.error();
    // Those links point at the temporary tree; the lab reads the modules
    // from the host and DKMS finds the tree through the root's own link.
    for (const char* link : {"build", "source"}) fs::remove(tmp + "/lib/modules/" + kver + "/" + link, ec);
    fs::create_directories(tmp + "/boot", ec);
    fs::copy_file(tree + "/arch/x86/boot/bzImage", tmp + "/boot/vmlinuz-" + kver,
                  fs::copy_options::overwrite_existing, ec);
    if (ec) return MakeError("cannot copy the bzImage: " + ec.message());
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - build_start).count();
    progress("built " + kver + " in " + std::to_string(static_cast<int>(took)) + " s");
    return "build_seconds=" + std::to_string(took) + "\njobs=" + std::to_string(jobs) + "\n";
  });
  if (!entry) return entry.error();

  // DKMS and `make -C /lib/modules/KVER/build` find the tree through this
  // link in the root, as a kernel-devel package would provide it.
  std::string link_dir = root + "/lib/modules/" + kver;
  fs::create_directories(link_dir, ec);
  std::string target = EntryInRoot(row) + "/linux";
  if (fs::read_symlink(link_dir + "/build", ec) != target) {
    fs::remove(link_dir + "/build", ec);
    fs::create_symlink(target, link_dir + "/build", ec);
    if (ec) return MakeError("cannot link " + link_dir + "/build: " + ec.message());
  }

  ProvisionedKernel k;
  k.row = row.name;
  k.kver = kver;
  k.package_version = "built from " + s.tarball;
  k.source = s.tarball + ", sha256 " + *sum;
  k.vmlinuz = spec.dir + "/boot/vmlinuz-" + kver;
  k.modules_dir = spec.dir + "/lib/modules/" + kver;
  k.build_root = root;
  k.headers_dir = target;
  k.gcc_version = gcc;
  k.kernel_build_s = std::atof(StampValue(entry->stamp, "build_seconds").c_str());
  k.kernel_built_now = entry->built;
  k.warm = !entry->built;
  k.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!entry->built) progress("cached " + row.name + ": " + kver + " (built from " + s.tarball + ")");
  return k;
}

}  // namespace lab
