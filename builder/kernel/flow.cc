#include "kernel/flow.h"

#include <functional>

#include "host/artifacts.h"
#include "host/profile.h"
#include "kernel/grub_conf.h"
#include "kernel/tree_edits.h"
#include "util/fs.h"
#include "util/strings.h"

namespace kernel {

namespace {

constexpr size_t kMaxConfig = 2u << 20;
constexpr const char* kGrubConf = "/boot/grub/grub.conf";
constexpr const char* kGrubBackup = "/boot/grub/grub.conf.toa-build.orig";

util::Error StepError(const std::string& step, const std::string& what) {
  return util::MakeError("step " + step + ": " + what);
}

util::Status Checked(const util::Result<util::ProcessResult>& r, const std::string& step,
                     const std::vector<std::string>& argv) {
  if (!r) return StepError(step, r.error().message);
  if (r->ok()) return util::Ok{};
  std::string why = r->timed_out ? "did not finish in time" : "failed (exit " + std::to_string(r->exit_code) + ")";
  return StepError(step, "`" + util::FormatCommand(argv) + "` " + why + ": " + util::OutputTail(r->output) +
                             "; fix what it says and run again (the steps before it are kept)");
}

// Reads PATH in the executor's root, applies EDIT and writes the result
// (Write skips an unchanged file); returns the new text.
util::Result<std::string> EditFile(host::Executor& exec, const std::string& step, const std::string& path,
                                   const std::function<util::Result<std::string>(const std::string&)>& edit) {
  auto text = exec.root().ReadChecked(path, kMaxConfig);
  if (!text) return StepError(step, path.substr(1) + ": " + text.error().message);
  auto edited = edit(*text);
  if (!edited) return StepError(step, edited.error().message);
  if (auto w = exec.Write(path, *edited); !w) return StepError(step, w.error().message);
  return edited;
}

util::Status PutToa(const TreeInfo& tree, const KernelFlowOptions& opts, host::Executor& exec) {
  if (!tree.lvs_kind)
    return StepError("toa", tree.dir + " has no net/toa/, and this version cannot put the project's TOA into a "
                            "tree yet; use the LVS rs tree the vendor guide downloads "
                            "(linux-2.6.32-220.23.1.el6.x86_64.rs), which carries its own");
  auto toa_h = EditFile(exec, "toa", "/net/toa/toa.h",
                        [&](const std::string& text) { return SetTcpoptToa(text, opts.kind); });
  if (!toa_h) return toa_h.error();
  if (!tree.kconfig_sources_toa)
    if (auto k = EditFile(exec, "toa", "/net/Kconfig", AddKconfigSource); !k) return k.error();
  if (!tree.makefile_builds_toa) {
    auto m = EditFile(exec, "toa", "/net/Makefile",
                      [](const std::string& text) -> util::Result<std::string> { return AddMakefileSubdir(text); });
    if (!m) return m.error();
  }
  return util::Ok{};
}

util::Result<std::string> BaseConfig(const KernelFlowOptions& opts, host::Executor& root_exec) {
  if (!opts.config.empty()) {
    host::RootFs here("/");
    auto text = here.ReadChecked(opts.config, kMaxConfig);
    if (!text) return StepError("config", "--config " + util::Printable(opts.config, 200) + ": " + text.error().message);
    return *text;
  }
  std::string path = "/boot/config-" + opts.running_kernel;
  auto text = root_exec.root().ReadChecked(path, kMaxConfig);
  if (!text)
    return StepError("config", path + " (the running kernel's configuration): " + text.error().message +
                                   "; give one with --config FILE");
  return *text;
}

util::Result<std::string> Configure(const TreeInfo& tree, const KernelFlowOptions& opts, host::Executor& tree_exec,
                                    host::Executor& root_exec) {
  auto base = BaseConfig(opts, root_exec);
  if (!base) return base.error();
  if (base->find("CONFIG_") == std::string::npos)
    return StepError("config", "the configuration given holds no CONFIG_ line: not a kernel .config");
  std::string config = SetConfigOptions(*base, {{"IPV6", "y"}, {"TOA", "m"}});
  if (auto w = tree_exec.Write("/.config", config); !w) return StepError("config", w.error().message);
  auto suffixed = EditFile(tree_exec, "config", "/Makefile",
                           [&](const std::string& text) { return AddExtraversionSuffix(text, opts.suffix); });
  if (!suffixed) return suffixed.error();
  // oldconfig asks about options the given config does not mention: each
  // question gets its default (an empty answer), as `yes "" | make oldconfig`.
  util::ProcessSpec spec;
  spec.argv = {"make", "-C", tree.dir, "oldconfig"};
  spec.stdin_data = std::string(20000, '\n');
  spec.timeout = std::chrono::minutes(10);
  if (auto s = Checked(tree_exec.Run(spec, "every question answered with its default"), "config", spec.argv); !s)
    return s.error();
  if (!tree_exec.dry_run()) {
    auto after = tree_exec.root().ReadChecked("/.config", kMaxConfig);
    if (!after) return StepError("config", ".config after oldconfig: " + after.error().message);
    for (auto [name, want] : {std::pair<const char*, const char*>{"IPV6", "y"}, {"TOA", "m"}})
      if (ConfigValue(*after, name) != want)
        return StepError("config", std::string("oldconfig left CONFIG_") + name + "=" + ConfigValue(*after, name) +
                                       ", not " + want + ": something it depends on is off in the given config");
  }
  if (tree_exec.dry_run()) {
    // Nothing is built: the release as the edited Makefile gives it.
    auto version = ParseTopMakefile(*suffixed);
    if (!version) return StepError("config", version.error().message);
    return version->Text();
  }
  // The release the build will have (CONFIG_LOCALVERSION and localversion*
  // files count too): the tree says it.
  std::vector<std::string> release{"make", "-s", "-C", tree.dir, "kernelrelease"};
  auto r = tree_exec.Run(release, std::chrono::seconds(120));
  if (auto s = Checked(r, "config", release); !s) return s.error();
  std::string kver;
  for (const auto& line : util::SplitLines(r->output))
    if (!util::Trim(line).empty()) kver = util::Trim(line);
  if (auto v = host::ValidateKernelRelease(kver); !v)
    return StepError("config", "`make kernelrelease` printed `" + util::Printable(kver, 80) + "`: " + v.error().message);
  return kver;
}

util::Status InstallKernel(const TreeInfo& tree, const std::string& kver, host::Executor& root_exec) {
  const host::RootFs& root = root_exec.root();
  std::vector<std::string> modules{"make", "-C", tree.dir, "modules_install"};
  if (!root.is_host_root()) modules.push_back("INSTALL_MOD_PATH=" + root.root());
  if (auto s = Checked(root_exec.Run(modules, std::chrono::seconds(1800)), "install", modules); !s) return s;
  if (root.is_host_root()) {
    // make install: /sbin/installkernel -> new-kernel-pkg (initramfs, grub.conf entry).
    std::vector<std::string> install{"make", "-C", tree.dir, "install"};
    return Checked(root_exec.Run(install, std::chrono::seconds(1800)), "install", install);
  }
  root_exec.OnUndo([&root, kver] { (void)root.RemoveTree("/lib/modules/" + kver); });
  // Under another root, /sbin/installkernel would act on this machine: the
  // files go into ROOT/boot here, and the grub.conf step adds the entry.
  for (auto [from, to] : {std::pair<std::string, std::string>{"/arch/x86/boot/bzImage", "/boot/vmlinuz-" + kver},
                          {"/System.map", "/boot/System.map-" + kver},
                          {"/.config", "/boot/config-" + kver}}) {
    if (root_exec.dry_run()) {
      root_exec.Run({"cp", tree.dir + from, root.root() + to});
      continue;
    }
    auto data = util::ReadFile(tree.dir + from);
    if (!data) return StepError("install", data.error().message);
    if (auto w = root_exec.Write(to, *data); !w) return StepError("install", to + ": " + w.error().message);
  }
  return util::Ok{};
}

util::Result<GrubEdit> BootLoader(const std::string& kver, host::Executor& root_exec) {
  const host::RootFs& root = root_exec.root();
  if (!root.Exists(kGrubConf))
    return StepError("grub", std::string(kGrubConf) + " is missing: only GRUB legacy (CentOS/RHEL 6) is set up here; "
                             "make /boot/vmlinuz-" + kver + " the default in your boot loader and add nohz=off "
                             "to its kernel command line by hand");
  auto text = root.ReadChecked(kGrubConf, 1u << 20);
  if (!text) return StepError("grub", std::string(kGrubConf) + ": " + text.error().message);
  std::string initrd = root.Exists("/boot/initramfs-" + kver + ".img") ? "/initramfs-" + kver + ".img" : "";
  auto edit = MakeDefaultKernel(*text, kver, "nohz=off", initrd);
  if (!edit) return StepError("grub", edit.error().message);
  if (edit->text == *text) return edit;
  if (!root.Exists(kGrubBackup))
    if (auto w = root_exec.Write(kGrubBackup, *text, 0600); !w) return StepError("grub", w.error().message);
  if (auto w = root_exec.Write(kGrubConf, edit->text, 0600); !w) return StepError("grub", w.error().message);
  return edit;
}

}  // namespace

util::Result<KernelFlowResult> RunKernelFlow(const TreeInfo& tree, const KernelFlowOptions& opts,
                                             host::Executor& tree_exec, host::Executor& root_exec) {
  if (opts.jobs < 1 || opts.jobs > 512) return util::MakeError("--jobs must be 1-512");
  if (auto s = PutToa(tree, opts, tree_exec); !s) return s.error();
  auto kver = Configure(tree, opts, tree_exec, root_exec);
  if (!kver) return kver.error();
  KernelFlowResult result;
  result.kernel_release = *kver;
  std::vector<std::string> build{"make", "-C", tree.dir, "-j" + std::to_string(opts.jobs)};
  util::ProcessSpec spec;
  spec.argv = build;
  spec.timeout = opts.build_timeout;
  if (auto s = Checked(tree_exec.Run(spec, ""), "build", build); !s) return s.error();
  if (!opts.install) return result;
  if (auto s = InstallKernel(tree, *kver, root_exec); !s) return s.error();
  auto grub = BootLoader(*kver, root_exec);
  if (!grub) return grub.error();
  result.grub_entry_added = grub->added_entry;
  result.grub_default = grub->default_index;
  if (auto w = root_exec.Write(host::kSysconfigModulesPath, host::RenderSysconfigModules({"toa"}), 0755); !w)
    return StepError("autoload", w.error().message);
  return result;
}

}  // namespace kernel
