#include "cli/host_common.h"

#include <unistd.h>

#include <filesystem>

#include "lab/paths.h"

namespace cli {

void AddRootKernelOptions(CLI::App& app, HostArgs& args) {
  app.add_option("--root", args.root, "read and write the system under DIR instead of /")
      ->type_name("DIR");
  app.add_option("--kernel", args.kernel, "plan for this kernel release instead of the running one")
      ->type_name("KVER");
}

util::Result<host::Detection> DetectHost(const HostArgs& args) {
  std::error_code ec;
  if (!std::filesystem::is_directory(args.root, ec))
    return util::MakeError("--root " + args.root + " is not a directory");
  auto profiles = host::ProfileSet::Load(host::ProfilesDir(lab::SourceDir()));
  if (!profiles) return profiles.error();
  host::RootFs root(args.root);
  return host::Detect(profiles.value(), root, args.kernel);
}

bool RunSystemChange(Context& ctx, const char* command, const HostArgs& args,
                     const std::function<util::Status(host::Executor&)>& plan, bool* changed) {
  auto fail = [&](const std::string& msg) {
    *ctx.err << "toa-build " << command << ": " << msg << "\n";
    return false;
  };
  if (args.root != "/" && !args.dry_run)
    return fail("--root " + args.root +
                " changes files there but would run package and DKMS commands on this machine: add "
                "--dry-run, or run `chroot " + args.root + " toa-build " + command + "`");
  host::RootFs root(args.root);
  if (!root.IsDir("/")) return fail("--root " + args.root + " is not a directory");
  util::RecordingProcessRunner recorder;
  util::ProcessRunner& runner = args.dry_run ? recorder : *ctx.runner;
  host::Executor exec(root, runner, args.dry_run);
  exec.OnAction([&ctx](const std::string& line) { *ctx.out << "+ " << line << std::endl; });
  auto s = plan(exec);
  if (args.dry_run)
    for (const auto& line : exec.lines()) *ctx.out << line << "\n";
  if (!s) return fail(s.error().message);
  if (changed) *changed = exec.changed();
  return true;
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
