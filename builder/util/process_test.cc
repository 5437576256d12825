#include "util/process.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "util/fs.h"
#include "util/testing.h"

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

namespace {

// State and start time (clock ticks after boot) of a process, from
// /proc/PID/stat, so a pid the kernel reused is not taken for ours.
struct ProcInfo {
  bool exists = false;
  char state = '?';
  unsigned long long start = 0;
};

ProcInfo ReadProc(int pid) {
  ProcInfo info;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return info;
  std::istringstream rest(text.substr(paren + 2));
  std::string field;
  rest >> info.state;
  for (int i = 4; i < 22 && rest >> field; ++i) {
  }
  rest >> info.start;
  info.exists = true;
  return info;
}

// Gone: no such process, another one under its pid, or dead and waiting to be
// reaped by whoever adopted it (a zombie runs nothing).
bool Gone(int pid, unsigned long long start) {
  ProcInfo p = ReadProc(pid);
  return !p.exists || p.start != start || p.state == 'Z' || p.state == 'X';
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

}  // namespace

// The process the next test starts and kills (this test binary again, with
// TOA_TEST_INTERRUPT_DIR set): a tool that installed the interrupt handler,
// registered a scratch folder and runs a long child from a worker thread, as
// a matrix row runs QEMU. Hidden: does nothing on its own.
TEST_CASE("interrupt helper (started by the next test)", "[.interrupt_helper]") {
  const char* dir = std::getenv("TOA_TEST_INTERRUPT_DIR");
  if (!dir) return;
  InstallInterruptHandler("interrupt-helper");
  std::string scratch = std::string(dir) + "/scratch";
  util::testing::Touch(scratch + "/sub/file");
  ScratchPath registered(scratch);
  SystemProcessRunner runner;
  std::thread worker([&runner] {
    ProcessSpec sleep;
    sleep.argv = {"sleep", "120"};
    sleep.timeout = std::chrono::seconds(120);
    runner.Run(sleep);
  });
  for (int i = 0; i < 200 && RunningChildren().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto children = RunningChildren();
  if (!children.empty())
    util::WriteFileAtomic(std::string(dir) + "/ready",
                          std::to_string(::getpid()) + " " + std::to_string(children[0]) + "\n");
  worker.join();  // the test kills this process long before
}

TEST_CASE("children die with a killed or interrupted tool; SIGINT/SIGTERM also remove scratch "
          "folders and exit 128+signal") {
  std::string self = SelfExe();
  REQUIRE(!self.empty());
  for (int sig : {SIGKILL, SIGTERM, SIGINT}) {
    INFO("signal " << sig);
    util::testing::TempDir tmp;
    SystemProcessRunner runner;
    ProcessSpec helper;
    helper.argv = {self, "[interrupt_helper]"};
    helper.env = {{"TOA_TEST_INTERRUPT_DIR", tmp.path}};
    helper.timeout = std::chrono::seconds(60);
    Result<ProcessResult> result = MakeError("not run");
    std::thread run([&] { result = runner.Run(helper); });
    std::string ready;
    for (int i = 0; i < 600 && ready.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (auto r = util::ReadFile(tmp / "ready"); r) ready = *r;
    }
    int helper_pid = 0, child_pid = 0;
    std::istringstream(ready) >> helper_pid >> child_pid;
    if (helper_pid <= 0 || child_pid <= 0) {
      for (int pid : RunningChildren()) ::kill(-pid, SIGKILL);
      run.join();
      FAIL("the helper did not start its child: " << (result ? result->output : ""));
    }
    unsigned long long child_start = ReadProc(child_pid).start;
    REQUIRE_FALSE(Gone(child_pid, child_start));
    REQUIRE(std::filesystem::exists(tmp / "scratch/sub/file"));

    ::kill(helper_pid, sig);
    run.join();
    bool gone = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!(gone = Gone(child_pid, child_start)) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(gone);
    if (!gone) ::kill(child_pid, SIGKILL);  // our grandchild: leave nothing running
    REQUIRE(result.ok());
    if (sig != SIGKILL) {
      CHECK(result->exit_code == 128 + sig);
      CHECK(result->output.find("interrupt-helper: interrupted by SIG") != std::string::npos);
      CHECK_FALSE(std::filesystem::exists(tmp / "scratch"));
    }
  }
}

TEST_CASE("OutputTail: the last lines, escaped and cut for a one-line message") {
  CHECK(util::OutputTail("a\nb\n\nc\nd  \r\n") == "b | c | d");
  // A terminal escape and a bell from a command are not passed to the user's terminal.
  CHECK(util::OutputTail("E: \x1b[31mfailed\x07\n", 1) == "E: \\x1b[31mfailed\\x07");
  // UTF-8 quotes (gcc's) stay readable.
  CHECK(util::OutputTail("error: \xe2\x80\x98x\xe2\x80\x99 undeclared\n", 1) ==
        "error: \xe2\x80\x98x\xe2\x80\x99 undeclared");
  std::string huge(1 << 20, 'x');
  std::string tail = util::OutputTail(huge + "\n", 1);
  CHECK(tail.size() < 500);
  CHECK(tail.find("(1048576 bytes)") != std::string::npos);
}
