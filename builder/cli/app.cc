#include <iostream>

#include "cli/command.h"
#include "util/strings.h"

namespace cli {

namespace {

// Commands SPEC names that this version does not have yet.
struct Unavailable {
  const char* name;
  const char* what;
};
constexpr Unavailable kUnavailable[] = {
    {"package", "deb/rpm packages (SPEC user 2); install on each host with `toa-build install` for now"},
    {"fleet", "Ansible/KMM output; run `toa-build install` through your fleet tool for now"},
};

// Usage errors: exit 2, one line `toa-build: <what is wrong>; <how to fix>`.
int Usage(std::ostream& err, const std::string& message) {
  err << "toa-build: " << message << "\n";
  return 2;
}

}  // namespace

int RunApplication(int argc, char** argv, util::ProcessRunner& runner, std::ostream& out,
                   std::ostream& err) {
  CLI::App app{"toa-build: real client addresses (TOA for TCP, UOA for UDP) behind FullNAT "
               "load balancers, on any distro and kernel"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "toa-build 0.1.0");
  std::string unavailable;
  for (const auto& u : kUnavailable) unavailable += (unavailable.empty() ? "" : ", ") + std::string(u.name);
  app.footer("Not available in this version: " + unavailable + ".");
  SubcommandList commands;
  commands.push_back(MakeVerifyCommand());
  commands.push_back(MakeMatrixCommand());
  commands.push_back(MakeDetectCommand());
  commands.push_back(MakeDepsCommand());
  commands.push_back(MakeInstallCommand());
  commands.push_back(MakeUninstallCommand());
  commands.push_back(MakeStatusCommand());
  commands.push_back(MakeSelftestCommand());
  commands.push_back(MakeKernelCommand());
  std::string names;
  for (const auto& c : commands) names += (names.empty() ? "" : ", ") + std::string(c->name());
  std::vector<std::pair<CLI::App*, Subcommand*>> apps;
  for (auto& c : commands) apps.emplace_back(app.add_subcommand(c->name(), c->description()), c.get());
  for (auto& [sub, c] : apps) c->Configure(*sub);

  // The command word: the first argument (the top level takes only --help
  // and --version). Unknown and not-yet-available commands are named here;
  // CLI11 would say "A subcommand is required" or print the top-level help.
  std::string command;
  if (argc > 1 && argv[1][0] != '-') {
    command = argv[1];
    for (const auto& u : kUnavailable)
      if (command == u.name)
        return Usage(err, "`" + command + "` is not available in this version: " + u.what);
    bool known = false;
    for (const auto& c : commands) known = known || command == c->name();
    if (!known)
      return Usage(err, "unknown command '" + util::Printable(command, 40) + "'; commands: " + names +
                            " (toa-build --help)");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    if (command.empty()) return Usage(err, "a command is required; commands: " + names + " (toa-build --help)");
    return Usage(err, command + ": " + util::Printable(e.what(), 300) + "; see `toa-build " + command + " --help`");
  }
  Context ctx{&runner, &out, &err};
  for (auto& [sub, c] : apps) {
    if (sub->parsed()) return c->Run(ctx);
  }
  return Usage(err, "a command is required; commands: " + names + " (toa-build --help)");
}

}  // namespace cli
