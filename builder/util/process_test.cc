#include "util/process.h"

#include <catch2/catch.hpp>

#include <set>

using namespace util;

TEST_CASE("SystemProcessRunner captures output and exit code") {
  SystemProcessRunner runner;
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "echo hello; echo err >&2; exit 3"};
  auto r = runner.Run(spec);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 3);
  CHECK(r->output.find("hello") != std::string::npos);
  CHECK(r->output.find("err") != std::string::npos);
}

TEST_CASE("SystemProcessRunner kills a command at its deadline") {
  SystemProcessRunner runner;
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "echo started; sleep 30"};
  spec.timeout = std::chrono::milliseconds(500);
  std::vector<std::string> lines;
  spec.on_line = [&](std::string_view l) { lines.emplace_back(l); };
  auto r = runner.Run(spec);
  REQUIRE(r.ok());
  CHECK(r->timed_out);
  CHECK(r->seconds < 5);
  REQUIRE(!lines.empty());
  CHECK(lines[0] == "started");
}

TEST_CASE("SystemProcessRunner feeds stdin") {
  SystemProcessRunner runner;
  ProcessSpec spec;
  spec.argv = {"cat"};
  spec.stdin_data = "abc\n";
  auto r = runner.Run(spec);
  REQUIRE(r.ok());
  CHECK(r->output == "abc\n");
}

TEST_CASE("missing program is a clear error") {
  SystemProcessRunner runner;
  ProcessSpec spec;
  spec.argv = {"no-such-program-xyz"};
  auto r = runner.Run(spec);
  REQUIRE(!r.ok());
  CHECK(r.error().message.find("not found") != std::string::npos);
}

TEST_CASE("FormatCommand quotes what a shell would split") {
  CHECK(FormatCommand({"echo", "a b", "it's"}) == "echo 'a b' 'it'\\''s'");
}

TEST_CASE("FakeProcessRunner answers by prefix, later rules win") {
  FakeProcessRunner fake;
  fake.On({"apt-get"}, 0, "fine\n");
  fake.On({"apt-get", "install"}, 100, "E: broken\n");
  ProcessSpec spec;
  spec.argv = {"apt-get", "install", "x"};
  auto r = fake.Run(spec);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 100);
  spec.argv = {"apt-get", "update"};
  CHECK(fake.Run(spec)->exit_code == 0);
  CHECK(fake.commands().size() == 2);
}

namespace {

// "fd -> pipe:[inode]" entries above stderr in `ls -l /proc/self/fd/` output.
std::set<std::string> PipesAboveStderr(const std::string& listing) {
  std::set<std::string> out;
  size_t pos = 0;
  while ((pos = listing.find(" -> pipe:", pos)) != std::string::npos) {
    size_t start = listing.rfind(' ', pos - 1) + 1;
    if (std::stoi(listing.substr(start, pos - start)) > 2)
      out.insert(listing.substr(start, listing.find('\n', pos) - start));
    pos += 1;
  }
  return out;
}

}  // namespace

TEST_CASE("a child inherits no other command's pipes (their EOF would wait for it)") {
  // While `echo` runs, its output pipe is open here; a child started then
  // (as by another thread) must not get it: it lists its open fds. Pipes this
  // test process inherited itself are the baseline.
  SystemProcessRunner runner;
  ProcessSpec list;
  list.argv = {"ls", "-l", "/proc/self/fd/"};
  auto baseline = runner.Run(list);
  REQUIRE(baseline.ok());
  std::string fds;
  ProcessSpec outer;
  outer.argv = {"echo", "outer"};
  outer.on_line = [&](std::string_view) {
    auto r = runner.Run(list);
    if (r) fds = r->output;
  };
  auto r = runner.Run(outer);
  REQUIRE(r.ok());
  REQUIRE(fds.find(" 1 -> pipe:") != std::string::npos);  // its own stdout
  std::string leaked;
  auto before = PipesAboveStderr(baseline->output);
  for (const auto& p : PipesAboveStderr(fds))
    if (!before.count(p)) leaked += p + "; ";
  CHECK(leaked == "");
}
