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
