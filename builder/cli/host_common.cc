#include "cli/host_common.h"

#include <unistd.h>

#include <filesystem>

#include "lab/paths.h"
#include "util/strings.h"

namespace cli {

void AddRootKernelOptions(CLI::App& app, HostArgs& args) {
  app.add_option("--root", args.root, "read and write the system under DIR instead of /")
      ->type_name("DIR");
  app.add_option("--kernel", args.kernel,
                 "plan for this kernel release (as `uname -r` prints it: letters, digits, . _ + ~ -) instead "
                 "of the running one")
      ->type_name("KVER");
}

util::Status CheckHostArgs(const HostArgs& args) {
  if (args.root.empty())
    return util::MakeError("--root is empty; pass the directory holding the system (leave --root out for /)");
  std::error_code ec;
  if (!std::filesystem::is_directory(args.root, ec))
    return util::MakeError("--root " + util::Printable(args.root, 200) +
                           " is not a directory; pass the directory holding the system's /etc and /lib");
  if (!args.kernel.empty())
    if (auto s = host::ValidateKernelRelease(args.kernel); !s) return util::MakeError("--kernel " + s.error().message);
  return util::Ok{};
}

int UsageError(Context& ctx, const std::string& message) {
  *ctx.err << "toa-build: " << message << "\n";
  return 2;
}

util::Result<host::Detection> DetectHost(const HostArgs& args) {
  if (auto s = CheckHostArgs(args); !s) return s.error();
  auto profiles = host::ProfileSet::Load(host::ProfilesDir(lab::SourceDir()));
  if (!profiles) return profiles.error();
  host::RootFs root(args.root);
  return host::Detect(profiles.value(), root, args.kernel);
}

int RunSystemChange(Context& ctx, const char* command, const HostArgs& args,
                    const std::function<util::Status(host::Executor&)>& plan, bool* changed) {
  if (auto s = CheckHostArgs(args); !s) return UsageError(ctx, s.error().message);
  if (args.root != "/" && !args.dry_run)
    return UsageError(ctx, std::string(command) + " --root " + util::Printable(args.root, 200) +
                               " changes files there but would run package and DKMS commands on this machine; add "
                               "--dry-run, or run `chroot " + util::Printable(args.root, 200) + " toa-build " +
                               command + "`");
  host::RootFs root(args.root);
  util::RecordingProcessRunner recorder;
  util::ProcessRunner& runner = args.dry_run ? recorder : *ctx.runner;
  host::Executor exec(root, runner, args.dry_run);
  exec.OnAction([&ctx](const std::string& line) { *ctx.out << "+ " << line << std::endl; });
  auto s = plan(exec);
  if (args.dry_run)
    for (const auto& line : exec.lines()) *ctx.out << line << "\n";
  if (!s) {
    *ctx.err << "toa-build " << command << ": " << s.error().message << "\n";
    return 1;
  }
  if (changed) *changed = exec.changed();
  return 0;
}

std::string ModuleSourceDir() { return lab::SourceDir() + "/module"; }

std::string FindLbsim() {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto beside = self.parent_path() / "lbsim";
    if (fs::exists(beside, ec)) return beside.string();
  }
  auto built = fs::path(lab::BinaryDir()) / "lbsim";
  if (fs::exists(built, ec)) return built.string();
  return "";
}

}  // namespace cli
