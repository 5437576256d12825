// toa-build status: installed for the running kernel, loaded, loaded at boot.
#include <nlohmann/json.hpp>

#include "cli/host_common.h"
#include "host/installer.h"

namespace cli {
namespace {

class StatusCommand : public Subcommand {
 public:
  const char* name() const override { return "status"; }
  const char* description() const override {
    return "Say whether the modules are installed for the kernel, loaded, and loaded at boot";
  }
  void Configure(CLI::App& app) override {
    AddRootKernelOptions(app, args_);
    app.add_flag("--json", args_.json, "print JSON");
  }
  int Run(Context& ctx) override {
    if (auto u = CheckHostArgs(args_); !u) return UsageError(ctx, u.error().message);
    auto det = DetectHost(args_);
    if (!det) {
      *ctx.err << "toa-build status: " << det.error().message << "\n";
      return 1;
    }
    host::RootFs root(args_.root);
    auto collected = host::CollectStatus(root, det.value());
    if (!collected) {
      *ctx.err << "toa-build status: " << collected.error().message << "\n";
      return 1;
    }
    const auto& st = collected.value();
    if (args_.json) {
      nlohmann::json j;
      j["kernel"] = st.kernel;
      j["build"] = st.build;
      j["autoload"] = st.autoload;
      j["dkms_registered"] = st.dkms_registered;
      j["module_support"] = st.module_support;
      j["ok"] = st.ok();
      j["problem"] = st.Problem();
      j["modules"] = nlohmann::json::object();
      for (const auto& m : st.modules)
        j["modules"][m.name] = {{"installed", !m.module_file.empty()}, {"module_file", m.module_file},
                                {"loaded", m.loaded}, {"autoload", m.autoload},
                                {"trusted_sources", m.trusted_sources}};
      *ctx.out << j.dump(2) << "\n";
    } else {
      *ctx.out << "kernel " << st.kernel << ", build " << st.build << ", autoload " << st.autoload << "\n";
      for (const auto& m : st.modules)
        *ctx.out << m.name << ": " << (m.module_file.empty() ? "not installed" : "installed " + m.module_file)
                 << ", " << (m.loaded ? "loaded" : "not loaded") << ", "
                 << (m.autoload ? "loaded at boot" : "not loaded at boot")
                 << (m.trusted_sources.empty() ? "" : ", trusted_sources=" + m.trusted_sources) << "\n";
    }
    if (!st.ok()) {
      *ctx.err << "toa-build status: " << st.Problem() << "\n";
      return 1;
    }
    return 0;
  }

 private:
  HostArgs args_;
};

}  // namespace

std::unique_ptr<Subcommand> MakeStatusCommand() { return std::make_unique<StatusCommand>(); }

}  // namespace cli
