#include "e2e/flow.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <sstream>

#include "e2e/image.h"
#include "host/profile.h"
#include "lab/cache.h"
#include "lab/matrix.h"
#include "lab/paths.h"
#include "lab/provision.h"
#include "util/fs.h"

namespace e2e {

namespace fs = std::filesystem;
using std::chrono::minutes;
using std::chrono::seconds;

bool ReleaseResult::ok() const {
  if (steps.empty()) return false;
  for (const auto& s : steps)
    if (!s.passed) return false;
  return true;
}

namespace {

// Releases run in parallel threads: whole lines only.
std::mutex g_out_mutex;
void Emit(std::ostream& out, const std::string& line) {
  std::lock_guard<std::mutex> lock(g_out_mutex);
  out << line << std::endl;
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string Fixed(double v, int decimals = 1) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

util::Result<util::ProcessResult> Host(util::ProcessRunner& runner, std::vector<std::string> argv, seconds timeout,
                                       const std::string& step) {
  util::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = timeout;
  return runner.RunChecked(spec, step);
}

// Tracked files of `sub` in the source tree (git ls-files), so build outputs
// lying in module/ do not travel into the VM; every file when not a checkout.
util::Result<std::vector<std::string>> SourceFiles(util::ProcessRunner& runner, const std::string& source_dir,
                                                   const std::vector<std::string>& subs) {
  util::ProcessSpec spec;
  spec.argv = {"git", "-C", source_dir, "ls-files", "--"};
  spec.argv.insert(spec.argv.end(), subs.begin(), subs.end());
  spec.timeout = seconds(60);
  auto r = runner.Run(spec);
  std::vector<std::string> files;
  if (r && r->ok()) {
    std::istringstream in(r->output);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && fs::is_regular_file(source_dir + "/" + line)) files.push_back(line);
    if (!files.empty()) return files;
  }
  std::error_code ec;
  for (const auto& sub : subs)
    for (fs::recursive_directory_iterator it(source_dir + "/" + sub, ec), end; !ec && it != end; it.increment(ec)) {
      auto name = it->path().filename().string();
      auto ext = it->path().extension().string();
      if (!it->is_regular_file() || name[0] == '.' || ext == ".o" || ext == ".ko" || ext == ".mod" ||
          name.find(".mod.") != std::string::npos || name == "Module.symvers" || name == "modules.order")
        continue;
      files.push_back(fs::relative(it->path(), source_dir).string());
    }
  if (files.empty()) return util::MakeError("no module sources under " + source_dir + "/module");
  return files;
}

util::Status CopyFile(const std::string& from, const std::string& to, fs::perms perms) {
  std::error_code ec;
  fs::create_directories(fs::path(to).parent_path(), ec);
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return util::MakeError("cannot copy " + from + " to " + to + ": " + ec.message());
  fs::permissions(to, perms, ec);
  return util::Ok{};
}

// The read-only second disk: bin/{toa-build,lbsim,toa-e2e}, share/toa-build/{module,distros}.
util::Status MakePayload(const FlowOptions& opts, util::ProcessRunner& runner, const std::string& run_dir,
                         const std::string& image) {
  const std::string stage = run_dir + "/payload";
  std::error_code ec;
  fs::remove_all(stage, ec);
  const auto exe = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                   fs::perms::others_exec;
  for (auto [from, name] : {std::pair<std::string, std::string>{opts.toa_build, "toa-build"},
                            {opts.lbsim, "lbsim"},
                            {opts.driver, "toa-e2e"}})
    if (auto st = CopyFile(from, stage + "/bin/" + name, exe); !st) return st;
  auto files = SourceFiles(runner, opts.source_dir, {"module", "distros"});
  if (!files) return files.error();
  const auto data = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;
  for (const auto& f : files.value())
    if (auto st = CopyFile(opts.source_dir + "/" + f, stage + "/share/toa-build/" + f, data); !st) return st;
  if (auto st = util::WriteFileAtomic(image, ""); !st) return st;
  if (::truncate(image.c_str(), 256L << 20) != 0) return util::MakeError("cannot size " + image);
  auto r = Host(runner, {"mkfs.ext4", "-q", "-F", "-L", "toa-e2e-payload", "-d", stage, image}, minutes(2),
                "make the payload disk");
  if (!r) return r.error();
  fs::remove_all(stage, ec);
  return util::Ok{};
}

// Copies a file out of an ext4 image without mounting it.
util::Status Extract(util::ProcessRunner& runner, const std::string& disk, const std::string& path,
                     const std::string& to) {
  std::error_code ec;
  fs::remove(to, ec);
  auto r = Host(runner, {"debugfs", "-R", "dump -p " + path + " " + to, disk}, minutes(2), "read " + path);
  if (!r) return r.error();
  if (fs::file_size(to, ec) == 0 || ec)
    return util::MakeError("the VM's disk has no " + path + " (debugfs: " + util::OutputTail(r->output, 2) + ")");
  return util::Ok{};
}

}  // namespace

void RemoveDeadRuns(const std::string& runs_dir, const std::function<bool(long)>& alive) {
  std::error_code ec;
  std::vector<fs::path> dead;
  for (const auto& e : fs::directory_iterator(runs_dir, ec)) {
    std::string name = e.path().filename().string();
    size_t dash = name.rfind('-');
    if (name.rfind("e2e-", 0) != 0 || dash == std::string::npos) continue;
    char* rest = nullptr;
    long pid = std::strtol(name.c_str() + dash + 1, &rest, 10);
    if (pid > 0 && rest && *rest == '\0' && !alive(pid)) dead.push_back(e.path());
  }
  for (const auto& d : dead) fs::remove_all(d, ec);
}

std::vector<std::string> BootArgv(const FlowOptions& opts, lab::Accel accel, const BootSpec& boot) {
  std::string append = "root=/dev/vda rw console=ttyS0 panic=-1 loglevel=4 toa_e2e.stage=" + boot.stage +
                       " toa_e2e.kernel=" + boot.kernel + " toa_e2e.upgrade_kernel=" + boot.upgrade_kernel +
                       " toa_e2e.upgrade=" + Join(boot.upgrade_packages, ",");
  return {opts.qemu,
          "-machine", std::string("accel=") + (accel == lab::Accel::kKvm ? "kvm" : "tcg"),
          "-nographic", "-no-reboot",
          "-nic", "none",  // no network in the VM
          "-m", std::to_string(opts.memory_mb),
          "-smp", std::to_string(opts.smp),
          "-kernel", boot.vmlinuz,
          "-initrd", boot.initrd,
          "-append", append,
          // A throwaway copy: guest flushes need not reach the host disk (dpkg fsyncs a lot).
          "-drive", "file=" + boot.disk + ",format=raw,if=virtio,cache=unsafe",
          "-drive", "file=" + boot.payload + ",format=raw,if=virtio,readonly=on"};
}

ReleaseResult RunRelease(const ReleaseSpec& spec, const Config& config, const FlowOptions& opts,
                         util::ProcessRunner& runner, std::ostream& out) {
  ReleaseResult res;
  res.release = spec.name;
  auto t0 = std::chrono::steady_clock::now();
  auto add = [&](const std::string& stage, const std::string& step, bool passed, double secs,
                 const std::string& detail) {
    res.steps.push_back({spec.name, stage, step, passed, secs, detail});
    Emit(out, "[" + spec.name + "] " + (passed ? "PASS " : "FAIL ") + stage + "/" + step + " (" + Fixed(secs) +
                  " s)" + (detail.empty() ? "" : ": " + detail));
    return passed;
  };
  auto progress = [&](const std::string& m) { Emit(out, "[" + spec.name + "] " + m); };
  auto finish = [&] {
    res.seconds = Since(t0);
    return res;
  };

  // Kernels: the lab's rows, resolved and cached by its provisioning.
  auto tp = std::chrono::steady_clock::now();
  auto matrix = lab::LoadMatrix(lab::DefaultMatrixPath());
  if (!matrix) return add("host", "provision", false, 0, matrix.error().message), finish();
  auto row = lab::FindRow(matrix.value(), spec.kernel_row);
  auto up_row = lab::FindRow(matrix.value(), spec.upgrade_row);
  if (!row || !up_row)
    return add("host", "provision", false, 0, (!row ? row : up_row).error().message + " (in " + config.file + ")"),
           finish();
  auto kernel = lab::ProvisionRow(row.value(), runner, opts.cache_root, progress);
  if (!kernel) return add("host", "provision", false, Since(tp), kernel.error().message), finish();
  auto upgrade = lab::ProvisionRow(up_row.value(), runner, opts.cache_root, progress);
  if (!upgrade) return add("host", "provision", false, Since(tp), upgrade.error().message), finish();
  add("host", "provision", true, Since(tp),
      kernel->kver + " (" + kernel->package_version + ") -> " + upgrade->kver + " (" + upgrade->package_version + ")");

  ImageSpec is;
  is.release = spec;
  is.row = row.value();
  is.upgrade_row = up_row.value();
  is.kver = kernel->kver;
  is.version = kernel->package_version;
  is.upgrade_kver = upgrade->kver;
  is.upgrade_version = upgrade->package_version;
  is.packages = config.image_packages;
  is.profiles_stamp = ProfilesStamp(host::ProfilesDir(lab::SourceDir()));
  is.headroom_mb = config.image_headroom_mb;
  auto image = EnsureImage(is, runner, opts.cache_root, progress);
  if (!image) return add("host", "image", false, 0, image.error().message), finish();
  add("host", "image", true, image->seconds, (image->built ? "built " : "cached ") + image->disk);

  // This run's copies: the cached image stays pristine.
  auto tc = std::chrono::steady_clock::now();
  const std::string run_dir = opts.cache_root + "/runs/e2e-" + spec.name + "-" + std::to_string(::getpid());
  std::error_code ec;
  // Disks (3 GB each) of runs that died or were kept: not worth keeping past the next run.
  RemoveDeadRuns(opts.cache_root + "/runs", [](long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH; });
  fs::remove_all(run_dir, ec);
  fs::create_directories(run_dir, ec);
  fs::create_directories(opts.log_dir, ec);
  const std::string disk = run_dir + "/disk.img", payload = run_dir + "/payload.img";
  if (auto r = Host(runner, {"cp", "--sparse=always", image->disk, disk}, minutes(10), "copy the image"); !r)
    return add("host", "prepare", false, Since(tc), r.error().message), finish();
  if (auto st = MakePayload(opts, runner, run_dir, payload); !st)
    return add("host", "prepare", false, Since(tc), st.error().message), finish();
  add("host", "prepare", true, Since(tc), "disk copy and payload in " + run_dir);

  lab::QemuOptions probe;
  probe.qemu = opts.qemu;
  probe.kernel = image->vmlinuz;
  probe.accel = opts.accel;
  std::string why;
  lab::Accel accel = lab::ResolveAccel(probe, runner, opts.cache_root + "/kvm-probe", &why);
  progress(std::string("accelerator: ") + lab::AccelName(accel) + (why.empty() ? "" : " (" + why + ")"));

  BootSpec boot;
  boot.vmlinuz = image->vmlinuz;
  boot.initrd = image->initrd;
  boot.disk = disk;
  boot.payload = payload;
  boot.kernel = kernel->kver;
  boot.upgrade_kernel = upgrade->kver;
  boot.upgrade_packages = image->upgrade_packages;

  bool all = true;
  for (const auto& stage : {"install", "reboot", "upgraded", "removed"}) {
    boot.stage = stage;
    if (boot.stage == "upgraded") {
      // Power-off + a new boot of the same disk, into the kernel apt installed
      // there, with the initrd the VM made for it.
      auto te = std::chrono::steady_clock::now();
      boot.vmlinuz = run_dir + "/vmlinuz-" + upgrade->kver;
      boot.initrd = run_dir + "/initrd.img-" + upgrade->kver;
      auto a = Extract(runner, disk, "/boot/vmlinuz-" + upgrade->kver, boot.vmlinuz);
      auto b = a ? Extract(runner, disk, "/boot/initrd.img-" + upgrade->kver, boot.initrd) : a;
      if (!b) {
        add("host", "upgrade_boot_files", false, Since(te), b.error().message);
        all = false;
        break;
      }
    }
    const bool long_stage = boot.stage == "install" || boot.stage == "reboot";
    util::ProcessSpec qemu;
    qemu.argv = BootArgv(opts, accel, boot);
    qemu.timeout = long_stage ? opts.long_deadline : opts.short_deadline;
    const std::string log = opts.log_dir + "/e2e-" + spec.name + "-" + boot.stage + ".console.log";
    std::ofstream console(log, std::ios::trunc);
    auto tb = std::chrono::steady_clock::now();
    double first_step = -1;
    qemu.on_line = [&](std::string_view line) {
      console << line << (line.empty() || line.back() != '\n' ? "\n" : "") << std::flush;
      if (line.find(kStepTag) != std::string_view::npos && first_step < 0) first_step = Since(tb);
    };
    progress("boot " + boot.stage + " (" + (boot.stage == "upgraded" || boot.stage == "removed" ? upgrade->kver : kernel->kver) +
             ", deadline " + std::to_string(qemu.timeout.count() / 1000) + " s, console " + log + ")");
    auto run = runner.Run(qemu);
    double secs = Since(tb);
    if (!run) {
      add(boot.stage, "boot", false, secs, run.error().message);
      all = false;
      break;
    }
    auto report = ParseStage(run->output, boot.stage, run->timed_out);
    add(boot.stage, "boot", report.saw_end || !report.steps.empty(), first_step < 0 ? secs : first_step,
        "QEMU " + Fixed(secs) + " s in all" + (run->timed_out ? " (deadline hit)" : ""));
    for (const auto& s : report.steps) add(s.stage, s.name, s.passed, s.seconds, s.detail);
    if (!report.ok()) {
      for (const auto& f : report.failures)
        if (f.rfind("step ", 0) != 0) add(boot.stage, "verdict", false, 0, f);
      all = false;
      break;
    }
  }
  if (all && !opts.keep) lab::RemoveTree(run_dir, runner);
  else progress("kept " + run_dir + " (disk of the failed run)");
  return finish();
}

std::string Summary(const std::vector<ReleaseResult>& results) {
  std::ostringstream s;
  s << "\n== toa-build end-to-end (host install in QEMU) ==\n";
  for (const auto& r : results) {
    for (const auto& st : r.steps)
      s << (st.passed ? "PASS " : "FAIL ") << std::left << std::setw(10) << r.release << " " << std::setw(28)
        << (st.stage + "/" + st.step) << std::right << std::setw(8) << Fixed(st.seconds) << " s"
        << (st.passed ? "" : "  " + st.detail) << "\n";
    s << (r.ok() ? "PASS " : "FAIL ") << r.release << " in " << Fixed(r.seconds) << " s\n";
  }
  return s.str();
}

}  // namespace e2e
