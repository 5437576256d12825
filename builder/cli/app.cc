#include <iostream>

#include "cli/command.h"

namespace cli {

int RunApplication(int argc, char** argv, util::ProcessRunner& runner, std::ostream& out,
                   std::ostream& err) {
  CLI::App app{"toa-build: real client addresses (TOA for TCP, UOA for UDP) behind FullNAT "
               "load balancers, on any distro and kernel"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "toa-build 0.1.0");

  SubcommandList commands;
  commands.push_back(MakeVerifyCommand());
  commands.push_back(MakeMatrixCommand());
  commands.push_back(MakeDetectCommand());
  commands.push_back(MakeDepsCommand());
  commands.push_back(MakeInstallCommand());
  commands.push_back(MakeUninstallCommand());
  commands.push_back(MakeStatusCommand());
  commands.push_back(MakeSelftestCommand());

  std::vector<std::pair<CLI::App*, Subcommand*>> apps;
  for (auto& c : commands) apps.emplace_back(app.add_subcommand(c->name(), c->description()), c.get());
  for (auto& [sub, c] : apps) c->Configure(*sub);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    err << "toa-build: " << e.what() << " (see toa-build --help)\n";
    return 2;
  }
  Context ctx{&runner, &out, &err};
  for (auto& [sub, c] : apps) {
    if (sub->parsed()) return c->Run(ctx);
  }
  return 2;
}

}  // namespace cli
