#include "lab/initramfs.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <boost/filesystem.hpp>

#include "util/fs.h"
#include "util/strings.h"

namespace lab {

namespace fs = boost::filesystem;

namespace {

constexpr char kNewcMagic[] = "070701";
constexpr size_t kNewcHeaderSize = 110;

void Pad4(std::string& out) {
  while (out.size() % 4 != 0) out += '\0';
}

std::string Hex8(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08X", v);
  return buf;
}

bool ReadHex8(const std::string& s, size_t at, uint32_t* out) {
  uint32_t v = 0;
  for (size_t i = 0; i < 8; ++i) {
    char c = s[at + i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return false;
  }
  *out = v;
  return true;
}

size_t Align4(size_t n) { return (n + 3) & ~size_t(3); }

std::string StripSlash(const std::string& path) {
  size_t i = 0;
  while (i < path.size() && path[i] == '/') ++i;
  return path.substr(i);
}

// Single-quotes an argument for the /init shell script.
std::string ShellQuote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') out += "'\\''"; else out += c;
  }
  return out + "'";
}

using util::Trim;

const char* const kCompressedSuffixes[] = {".xz", ".zst", ".gz"};

// Reads a kernel module from the image, decompressed: a copy goes to the
// scratch dir and xz/zstd/gzip (through the runner) turn it into a plain .ko.
util::Result<std::pair<std::string, std::string>> ReadKernelModule(const std::string& src_path,
                                                                   const std::string& work_dir,
                                                                   util::ProcessRunner& runner) {
  fs::path src(src_path);
  std::string file = src.filename().string();
  std::string plain = file;
  std::vector<std::string> argv;
  auto ends = [&](const std::string& suffix) {
    return file.size() > suffix.size() &&
           file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends(".xz")) {
    plain = file.substr(0, file.size() - 3);
    argv = {"xz", "-d", "-f", "-q"};
  } else if (ends(".zst")) {
    plain = file.substr(0, file.size() - 4);
    argv = {"zstd", "-d", "-f", "-q", "--rm"};
  } else if (ends(".gz")) {
    plain = file.substr(0, file.size() - 3);
    argv = {"gzip", "-d", "-f", "-q"};
  }
  if (argv.empty()) {
    auto r = util::ReadFile(src.string());
    if (!r) return util::MakeError("cannot read " + src.string());
    return std::make_pair(plain, std::move(*r));
  }
  boost::system::error_code ec;
  fs::create_directories(work_dir, ec);
  fs::path copy = fs::path(work_dir) / file;
  fs::copy_file(src, copy, fs::copy_option::overwrite_if_exists, ec);
  if (ec) return util::MakeError("cannot copy " + src.string() + ": " + ec.message());
  argv.push_back(copy.string());
  util::ProcessSpec decompress;
  decompress.argv = argv;
  decompress.timeout = std::chrono::seconds(60);
  auto r = runner.RunChecked(decompress, "decompress " + file);
  if (!r) return util::MakeError(r.error().message);
  auto out = util::ReadFile((fs::path(work_dir) / plain).string());
  if (!out) return util::MakeError("decompressing " + file + " left no " + plain);
  fs::remove(copy, ec);
  fs::remove(fs::path(work_dir) / plain, ec);
  return std::make_pair(plain, std::move(*out));
}

// The kernel modules the spec asks for plus their dependencies, in load
// order, as (file name in /kmod, content). Uses modules.dep when the image
// has one, else finds modules by name in the tree and follows .modinfo.
util::Result<std::vector<std::pair<std::string, std::string>>> CollectKernelModules(
    const InitramfsSpec& spec, util::ProcessRunner& runner) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string& dir = spec.kernel_modules_dir;
  auto builtin = util::ReadFile(dir + "/modules.builtin");
  std::string builtin_text = builtin ? *builtin : "";
  if (auto dep = util::ReadFile(dir + "/modules.dep"); dep) {
    auto order = ResolveKernelModules(*dep, builtin_text, spec.kernel_modules);
    if (!order) return util::MakeError(order.error().message);
    for (const auto& rel : *order) {
      auto m = ReadKernelModule(dir + "/" + rel, spec.work_dir, runner);
      if (!m) return util::MakeError(m.error().message);
      out.push_back(std::move(*m));
    }
    return out;
  }
  boost::system::error_code ec;
  if (!fs::is_directory(dir, ec))
    return util::MakeError("no kernel modules dir " + dir + " (is the kernel image unpacked?)");
  std::map<std::string, std::string> path_of;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.find(".ko") == std::string::npos || !fs::is_regular_file(it->path(), ec)) continue;
    path_of.emplace(KernelModuleName(name), it->path().string());
  }
  std::set<std::string> builtin_names, placed, visiting;
  std::istringstream bin(builtin_text);
  std::string line;
  while (std::getline(bin, line))
    if (!Trim(line).empty()) builtin_names.insert(KernelModuleName(Trim(line)));
  std::function<util::Status(const std::string&)> place =
      [&](const std::string& asked) -> util::Status {
    // "?name": wanted where the kernel has it (see kOptionalModule).
    bool optional = asked.rfind(kOptionalModule, 0) == 0;
    std::string raw = optional ? asked.substr(1) : asked;
    std::string name = KernelModuleName(raw);
    if (placed.count(name)) return util::Ok{};
    if (!visiting.insert(name).second)
      return util::MakeError("kernel modules depend on each other in a cycle through " + name);
    auto it = path_of.find(name);
    if (it == path_of.end()) {
      visiting.erase(name);
      if (builtin_names.count(name) || optional) return util::Ok{};
      return util::MakeError("kernel module `" + raw + "` is not in " + dir +
                             " nor built in; check the row's image package ships it");
    }
    auto m = ReadKernelModule(it->second, spec.work_dir, runner);
    if (!m) return util::MakeError(m.error().message);
    for (const auto& dep : ModinfoDepends(m->second)) {
      auto st = place(dep);
      if (!st) return st;
    }
    visiting.erase(name);
    placed.insert(name);
    out.push_back(std::move(*m));
    return util::Ok{};
  };
  for (const auto& name : spec.kernel_modules) {
    auto st = place(name);
    if (!st) return util::MakeError(st.error().message);
  }
  return out;
}

}  // namespace

std::vector<std::string> ModinfoDepends(const std::string& ko) {
  std::vector<std::string> deps;
  const std::string key = std::string("\0depends=", 9);
  size_t pos = ko.find(key);
  if (pos == std::string::npos) return deps;
  size_t from = pos + key.size();
  size_t to = ko.find('\0', from);
  std::string value = ko.substr(from, to == std::string::npos ? std::string::npos : to - from);
  std::istringstream in(value);
  std::string dep;
  while (std::getline(in, dep, ','))
    if (!dep.empty()) deps.push_back(dep);
  return deps;
}

void CpioWriter::AddEntry(const std::string& path, uint32_t mode, const std::string& data,
                          uint32_t rdev_major, uint32_t rdev_minor) {
  std::string name = StripSlash(path);
  bool is_dir = (mode & S_IFMT) == S_IFDIR;
  out_ += kNewcMagic;
  out_ += Hex8(next_ino_++);                          // ino
  out_ += Hex8(mode);                                 // mode
  out_ += Hex8(0);                                    // uid
  out_ += Hex8(0);                                    // gid
  out_ += Hex8(is_dir ? 2 : 1);                       // nlink
  out_ += Hex8(0);                                    // mtime: reproducible archives
  out_ += Hex8(static_cast<uint32_t>(data.size()));  // filesize
  out_ += Hex8(0);                                    // devmajor
  out_ += Hex8(0);                                    // devminor
  out_ += Hex8(rdev_major);
  out_ += Hex8(rdev_minor);
  out_ += Hex8(static_cast<uint32_t>(name.size() + 1));  // namesize, with the NUL
  out_ += Hex8(0);                                        // check (unused by newc)
  out_ += name;
  out_ += '\0';
  Pad4(out_);
  out_ += data;
  Pad4(out_);
}

void CpioWriter::AddDirectory(const std::string& path, uint32_t perm) {
  AddEntry(path, S_IFDIR | perm, "");
}

void CpioWriter::AddFile(const std::string& path, const std::string& data, uint32_t perm) {
  AddEntry(path, S_IFREG | perm, data);
}

void CpioWriter::AddSymlink(const std::string& path, const std::string& target) {
  AddEntry(path, S_IFLNK | 0777, target);
}

void CpioWriter::AddCharDevice(const std::string& path, uint32_t perm, uint32_t major,
                               uint32_t minor) {
  AddEntry(path, S_IFCHR | perm, "", major, minor);
}

std::string CpioWriter::Finish() {
  AddEntry("TRAILER!!!", 0, "");
  std::string out;
  out.swap(out_);
  next_ino_ = 1;
  return out;
}

util::Result<std::vector<CpioEntry>> ParseCpio(const std::string& a) {
  std::vector<CpioEntry> entries;
  size_t at = 0;
  while (true) {
    if (at + kNewcHeaderSize > a.size())
      return util::MakeError("cpio: archive ends inside a header at byte " + std::to_string(at));
    if (a.compare(at, 6, kNewcMagic) != 0)
      return util::MakeError("cpio: bad magic at byte " + std::to_string(at) + " (not newc)");
    uint32_t f[13];
    for (int i = 0; i < 13; ++i) {
      if (!ReadHex8(a, at + 6 + 8 * i, &f[i]))
        return util::MakeError("cpio: bad header field at byte " + std::to_string(at));
    }
    uint32_t mode = f[1], filesize = f[6], namesize = f[11];
    size_t name_at = at + kNewcHeaderSize;
    if (namesize == 0 || name_at + namesize > a.size())
      return util::MakeError("cpio: bad name size at byte " + std::to_string(at));
    std::string name = a.substr(name_at, namesize - 1);
    size_t data_at = Align4(name_at + namesize);
    if (data_at + filesize > a.size())
      return util::MakeError("cpio: entry " + name + " runs past the end of the archive");
    if (name == "TRAILER!!!") break;
    CpioEntry e;
    e.path = name;
    e.mode = mode;
    e.data = a.substr(data_at, filesize);
    e.rdev_major = f[9];
    e.rdev_minor = f[10];
    entries.push_back(std::move(e));
    at = Align4(data_at + filesize);
  }
  return entries;
}

std::string KernelModuleName(const std::string& path) {
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  for (const char* suffix : kCompressedSuffixes) {
    std::string s = suffix;
    if (base.size() > s.size() && base.compare(base.size() - s.size(), s.size(), s) == 0) {
      base.resize(base.size() - s.size());
      break;
    }
  }
  if (base.size() > 3 && base.compare(base.size() - 3, 3, ".ko") == 0) base.resize(base.size() - 3);
  for (char& c : base)
    if (c == '-') c = '_';
  return base;
}

util::Result<std::vector<std::string>> ResolveKernelModules(
    const std::string& modules_dep, const std::string& builtin,
    const std::vector<std::string>& names) {
  std::map<std::string, std::string> path_of;               // name -> path
  std::map<std::string, std::vector<std::string>> deps_of;  // path -> dep paths
  std::istringstream in(modules_dep);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string path = Trim(line.substr(0, colon));
    if (path.empty()) continue;
    path_of[KernelModuleName(path)] = path;
    std::istringstream deps(line.substr(colon + 1));
    std::string dep;
    auto& list = deps_of[path];
    while (deps >> dep) list.push_back(dep);
  }
  std::set<std::string> builtin_names;
  std::istringstream bin(builtin);
  while (std::getline(bin, line)) {
    line = Trim(line);
    if (!line.empty()) builtin_names.insert(KernelModuleName(line));
  }

  std::vector<std::string> order;
  std::set<std::string> placed, visiting;
  std::string error;
  std::function<void(const std::string&)> place = [&](const std::string& path) {
    if (placed.count(path) || !error.empty()) return;
    if (!visiting.insert(path).second) {
      error = "modules.dep has a dependency cycle through " + path;
      return;
    }
    auto it = deps_of.find(path);
    if (it != deps_of.end())
      for (const auto& dep : it->second) place(dep);
    visiting.erase(path);
    if (placed.insert(path).second) order.push_back(path);
  };
  for (const auto& asked : names) {
    bool optional = asked.rfind(kOptionalModule, 0) == 0;
    std::string raw = optional ? asked.substr(1) : asked;
    std::string name = KernelModuleName(raw);
    auto it = path_of.find(name);
    if (it == path_of.end()) {
      if (builtin_names.count(name) || optional) continue;
      return util::MakeError("kernel module `" + raw +
                             "` is neither in modules.dep nor built in; check the row's image "
                             "package ships it");
    }
    place(it->second);
    if (!error.empty()) return util::MakeError(error);
  }
  return order;
}

const char* const kInitApplets[] = {"sh", "mount", "insmod", "dmesg", "poweroff"};

std::string GenerateInit(const std::vector<std::string>& lbsim_args,
                         const std::string& subcommand) {
  std::string args;
  for (const auto& a : lbsim_args) args += " " + ShellQuote(a);
  // Written for busybox ash. Kernel modules failing to load are reported by
  // name so a missing dependency is not mistaken for a module bug. Every
  // command is an exec of busybox under TCG: lbsim brings up lo itself,
  // makes /dev/net/tun when missing and needs no /sys; the archive holds the
  // other device nodes (no devtmpfs).
  return "#!/bin/busybox sh\n"
         "# Generated by toa-build's lab (ARCHITECTURE.md, \"Guest run\").\n"
         "export PATH=/bin\n"
         "mount -t proc proc /proc\n"
         "while read -r m; do\n"
         "  [ -n \"$m\" ] || continue\n"
         "  insmod \"/kmod/$m\" || echo \"LAB-KMOD-FAIL $m\"\n"
         "done < /kmod/order\n"
         "echo LAB-BEGIN\n"
         "/bin/lbsim " + subcommand + " --ko-dir /modules" +
         args +
         "\n"
         "rc=$?\n"
         "echo LAB-DMESG-BEGIN\n"
         "dmesg\n"
         "echo LAB-DMESG-END\n"
         "echo \"LAB-END rc=$rc\"\n"
         "poweroff -f\n";
}

std::string GenerateBareInit() {
  return "#!/bin/busybox sh\n"
         "echo LAB-END rc=0\n"
         "/bin/busybox poweroff -f\n";
}

util::Result<InitramfsInfo> BuildInitramfs(const InitramfsSpec& spec, util::ProcessRunner& runner) {
  auto start = std::chrono::steady_clock::now();
  InitramfsInfo info;
  CpioWriter cpio;
  for (const char* dir : {"bin", "dev", "proc", "sys", "tmp", "run", "modules", "kmod", "etc"})
    cpio.AddDirectory(dir, std::string(dir) == "tmp" ? 01777 : 0755);
  // /init needs a console before devtmpfs is mounted.
  cpio.AddCharDevice("dev/console", 0600, 5, 1);
  cpio.AddCharDevice("dev/null", 0666, 1, 3);
  cpio.AddCharDevice("dev/kmsg", 0644, 1, 11);  // lbsim writes case markers to the kernel log

  auto busybox = util::ReadFile(spec.busybox);
  if (!busybox)
    return util::MakeError("initramfs: cannot read busybox at " + spec.busybox +
                           " (install busybox-static)");
  cpio.AddFile("bin/busybox", *busybox, 0755);
  // The applets /init uses, linked here rather than by `busybox --install`
  // in the guest (hundreds of links made under TCG on every boot).
  for (const char* applet : kInitApplets) cpio.AddSymlink(std::string("bin/") + applet, "busybox");

  if (!spec.lbsim.empty()) {
    auto lbsim = util::ReadFile(spec.lbsim);
    if (!lbsim)
      return util::MakeError("initramfs: cannot read lbsim at " + spec.lbsim +
                             " (build the `lbsim` target)");
    cpio.AddFile("bin/lbsim", *lbsim, 0755);
  } else if (spec.init_script.empty()) {
    return util::MakeError("initramfs: no lbsim given for the generated /init");
  }

  for (const auto& ko : spec.test_modules) {
    auto data = util::ReadFile(ko);
    if (!data) return util::MakeError("initramfs: cannot read module " + ko + ": " + data.error().message);
    cpio.AddFile("modules/" + fs::path(ko).filename().string(), *data, 0644);
  }

  std::string order_text;
  if (!spec.kernel_modules.empty()) {
    auto kmods = CollectKernelModules(spec, runner);
    if (!kmods) return util::MakeError("initramfs: " + kmods.error().message);
    for (const auto& [plain, data] : *kmods) {
      cpio.AddFile("kmod/" + plain, data, 0644);
      info.kmod_order.push_back(plain);
      order_text += plain + "\n";
    }
  }
  cpio.AddFile("kmod/order", order_text, 0644);
  if (spec.lbsim_subcommand != "run" && spec.lbsim_subcommand != "bench")
    return util::MakeError("initramfs: lbsim subcommand must be run or bench, not `" +
                           spec.lbsim_subcommand + "`");
  cpio.AddFile("init",
               spec.init_script.empty() ? GenerateInit(spec.lbsim_args, spec.lbsim_subcommand)
                                        : spec.init_script,
               0755);
  for (const auto& [name, args] : spec.other_inits) {
    if (name.empty() || name.find('/') != std::string::npos || name == "init")
      return util::MakeError("initramfs: bad name `" + name + "` for another /init");
    cpio.AddFile(name, GenerateInit(args, spec.lbsim_subcommand), 0755);
  }

  std::string archive = cpio.Finish();
  info.path = spec.output;
  if (spec.gzip) {
    // gzip writes OUTPUT.gz next to OUTPUT; build there, then move in place.
    std::string raw = spec.output + ".cpio";
    if (auto w = util::WriteFileAtomic(raw, archive); !w) return util::MakeError(w.error().message);
    util::ProcessSpec gzip;
    gzip.argv = {"gzip", "-1", "-n", "-f", raw};
    gzip.timeout = std::chrono::seconds(60);
    auto r = runner.RunChecked(gzip, "compress initramfs");
    if (!r) return util::MakeError("initramfs: " + r.error().message);
    boost::system::error_code ec;
    fs::rename(raw + ".gz", spec.output, ec);
    if (ec) return util::MakeError("initramfs: cannot move " + raw + ".gz: " + ec.message());
  } else {
    if (auto w = util::WriteFileAtomic(spec.output, archive); !w)
      return util::MakeError(w.error().message);
  }
  boost::system::error_code ec;
  info.bytes = fs::file_size(spec.output, ec);
  info.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return info;
}

}  // namespace lab
