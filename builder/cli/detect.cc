// toa-build detect: what the host is and what the plan would be.
#include <nlohmann/json.hpp>

#include "cli/host_common.h"

namespace cli {
namespace {

class DetectCommand : public Subcommand {
 public:
  const char* name() const override { return "detect"; }
  const char* description() const override {
    return "Print the distro, kernel, packages, autoload method and build strategy for this host (or --root). "
           "header_package is null when no package holds the kernel's headers (CoreOS ships its build tree; a "
           "custom kernel has none): header_package_reason says why. Kernels on architectures other than x86_64 "
           "(arm64) are reported with module_supported false";
  }
  void Configure(CLI::App& app) override {
    AddRootKernelOptions(app, args_);
    app.add_flag("--json", args_.json, "print JSON");
  }
  int Run(Context& ctx) override {
    if (auto u = CheckHostArgs(args_); !u) return UsageError(ctx, u.error().message);
    auto det = DetectHost(args_);
    if (!det) {
      *ctx.err << "toa-build detect: " << det.error().message << "\n";
      return 1;
    }
    const auto& d = det.value();
    const auto& p = d.profile;
    auto packages = d.AllPackages();
    if (args_.json) {
      nlohmann::json j;
      j["distro"] = {{"id", d.os.id}, {"version", d.os.version}, {"name", d.os.name}, {"family", p.family}};
      j["kernel"] = d.kernel;
      j["package_manager"] = p.package_manager;
      // null when no package holds the headers (CoreOS ships the build tree;
      // a custom kernel has none): header_package_reason says why.
      j["header_package"] = p.header_package.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.header_package);
      if (p.header_package.empty()) j["header_package_reason"] = p.header_package_reason;
      j["arch"] = d.arch.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.arch);
      j["packages"] = packages;
      j["autoload"] = p.autoload;
      j["build"] = p.build;
      // More than the contract's keys, for people reading it.
      j["profile"] = {{"distro", p.distro_id}, {"matched_by", p.matched_by}, {"source", d.os.source}};
      j["dkms_source"] = p.build == "dkms" ? p.dkms_source : "";
      j["archive_mirror"] = p.archive ? p.archive->mirror : "";
      j["module_supported"] = p.module_supported;
      if (!p.module_supported) j["unsupported_reason"] = p.unsupported_reason;
      *ctx.out << j.dump(2) << "\n";
      return 0;
    }
    std::string pkgs;
    for (const auto& s : packages) pkgs += (pkgs.empty() ? "" : " ") + s;
    auto& o = *ctx.out;
    o << "distro:          " << d.os.name << " (id " << d.os.id << ", version "
      << (d.os.version.empty() ? "-" : d.os.version) << ", family " << p.family << ", profile "
      << p.distro_id << " by " << p.matched_by << ")\n";
    o << "kernel:          " << d.kernel << "\n";
    o << "package manager: " << p.package_manager << "\n";
    o << "header package:  " << (p.header_package.empty() ? "none: " + p.header_package_reason : p.header_package)
      << "\n";
    o << "arch:            " << (d.arch.empty() ? "unknown" : d.arch + " (" + d.arch_source + ")") << "\n";
    o << "packages:        " << (pkgs.empty() ? "-" : pkgs) << "\n";
    if (p.build == "dkms") o << "dkms from:       " << p.dkms_source << "\n";
    o << "build:           " << p.build << "\n";
    o << "autoload:        " << p.autoload << "\n";
    if (p.archive) o << "archive mirror:  " << p.archive->mirror << "\n";
    if (!p.module_supported) o << "note:            " << p.unsupported_reason << "\n";
    return 0;
  }

 private:
  HostArgs args_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeDetectCommand() { return std::make_unique<DetectCommand>(); }

}  // namespace cli
