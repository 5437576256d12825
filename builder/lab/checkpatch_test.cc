#include "lab/checkpatch.h"

#include <catch2/catch.hpp>

#include <algorithm>

#include "util/testing.h"

using namespace lab;
using util::testing::TempDir;
using util::testing::Touch;

TEST_CASE("checkpatch's terse lines become findings; the totals do not", "[checkpatch]") {
  auto f = ParseCheckpatch(
      "module/toa/toa_main.c:12: WARNING:LONG_LINE: line length of 101 exceeds 100 columns\n"
      "module/common/compat.h:7: ERROR:SPACING: space required after that ';' (ctx:VxV)\n"
      "total: 1 errors, 1 warnings, 307 lines checked\n");
  REQUIRE(f.size() == 2);
  CHECK(f[0].file == "module/toa/toa_main.c");
  CHECK(f[0].line == 12);
  CHECK(f[0].level == "WARNING");
  CHECK(f[0].type == "LONG_LINE");
  CHECK(f[1].ToString() ==
        "module/common/compat.h:7: ERROR:SPACING: space required after that ';' (ctx:VxV)");
  CHECK(ParseCheckpatch("").empty());
}

TEST_CASE("the module's kernel sources are checked, not its user-space tests", "[checkpatch]") {
  TempDir d;
  Touch(d / "common/compat.h");
  Touch(d / "common/toa_opt_test.cc");
  Touch(d / "toa/toa_main.c");
  Touch(d / "toa/toa.mod.c");
  Touch(d / "toa/Kbuild");
  CHECK(ModuleSourceFiles(d.path) ==
        std::vector<std::string>{d / "common/compat.h", d / "toa/toa_main.c"});
}

TEST_CASE("compat.h alone may test versions; a checkpatch crash is an error", "[checkpatch]") {
  util::FakeProcessRunner runner;
  runner.On({"perl", "cp.pl"}, 1, "a.c:3: WARNING:LINUX_VERSION_CODE: avoid\n");
  auto r = RunCheckpatch("cp.pl", {"m/common/compat.h", "m/a.c"}, runner);
  REQUIRE(r);
  CHECK(r->size() == 2);
  const auto& cmds = runner.commands();
  REQUIRE(cmds.size() == 2);
  auto has_ignore = [](const std::vector<std::string>& argv) {
    return std::any_of(argv.begin(), argv.end(),
                       [](const std::string& a) { return a.rfind("--ignore=", 0) == 0; });
  };
  CHECK(has_ignore(cmds[0]));
  CHECK_FALSE(has_ignore(cmds[1]));
  CHECK(cmds[1].back() == "m/a.c");

  util::FakeProcessRunner broken;
  broken.On({"perl"}, 2, "Can't locate Term/ANSIColor.pm in @INC\n");
  auto e = RunCheckpatch("cp.pl", {"m/a.c"}, broken);
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("checkpatch failed on m/a.c") != std::string::npos);
  CHECK(e.error().message.find("ANSIColor") != std::string::npos);
}
