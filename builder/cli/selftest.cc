// toa-build selftest: runs the simulator (lbsim) in a throwaway network
// namespace against the loaded modules and reports per module and case.
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/host_common.h"
#include "host/installer.h"

namespace cli {
namespace {

class SelftestCommand : public Subcommand {
 public:
  const char* name() const override { return "selftest"; }
  const char* description() const override {
    return "Prove the loaded modules recover client addresses (private netns + TUN + simulator)";
  }
  void Configure(CLI::App& app) override {
    app.add_option("--module", module_, "toa, uoa or all")->type_name("toa|uoa|all");
    app.add_flag("--json", json_, "print JSON");
  }
  int Run(Context& ctx) override {
    auto modules = host::ParseModules(module_);
    if (!modules) return UsageError(ctx, modules.error().message);
    std::string lbsim = FindLbsim();
    if (lbsim.empty()) {
      *ctx.err << "toa-build selftest: lbsim not found next to toa-build or in the build tree: build it "
                  "(ninja lbsim) or set TOA_BUILD_BINARY_DIR\n";
      return 1;
    }
    int failed = 0, passed = 0;
    nlohmann::json cases = nlohmann::json::array();
    std::string problem;
    for (const auto& m : modules.value()) {
      util::ProcessSpec spec;
      spec.argv = host::SelftestCommand(lbsim, m);
      spec.timeout = std::chrono::seconds(300);
      auto r = ctx.runner->Run(spec);
      if (!r) {
        *ctx.err << "toa-build selftest: " << r.error().message << "\n";
        return 1;
      }
      int seen = 0;
      std::istringstream in(r->output);
      for (std::string line; std::getline(in, line);) {
        const std::string tag = "LBSIM-RESULT ";
        auto at = line.find(tag);
        if (at == std::string::npos) continue;
        auto j = nlohmann::json::parse(line.substr(at + tag.size()), nullptr, false);
        if (!j.is_object()) continue;
        ++seen;
        bool pass = j.value("result", "") == "pass";
        pass ? ++passed : ++failed;
        cases.push_back(j);
        if (!json_)
          *ctx.out << j.value("module", m) << " " << j.value("case", "?") << ": " << j.value("result", "?")
                   << (j.value("detail", "").empty() ? "" : " (" + j.value("detail", "") + ")") << "\n";
      }
      if (!r->ok() && problem.empty())
        problem = m + ": lbsim exited " + std::to_string(r->exit_code) + ": " + util::OutputTail(r->output, 2);
      if (seen == 0 && problem.empty()) problem = m + ": lbsim reported no case: " + util::OutputTail(r->output, 2);
    }
    if (json_) *ctx.out << nlohmann::json{{"passed", passed}, {"failed", failed}, {"cases", cases}}.dump(2) << "\n";
    else *ctx.out << "passed " << passed << ", failed " << failed << "\n";
    if (failed > 0 || !problem.empty()) {
      *ctx.err << "toa-build selftest: " << (problem.empty() ? std::to_string(failed) + " case(s) failed" : problem)
               << "\n";
      return 1;
    }
    return 0;
  }

 private:
  std::string module_ = "all";
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Subcommand> MakeSelftestCommand() { return std::make_unique<SelftestCommand>(); }

}  // namespace cli
