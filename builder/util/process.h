// The one process layer: every external command runs through a ProcessRunner,
// as an argv vector (never a shell string), with a deadline and captured output.
// Tests substitute FakeProcessRunner to script the world.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace util {

struct ProcessSpec {
  std::vector<std::string> argv;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  std::string cwd;                          // empty: inherit
  std::map<std::string, std::string> env;   // added to / overriding the inherited environment
  std::string stdin_data;                   // written to the child's stdin, then closed
  std::function<void(std::string_view)> on_line;  // called per output line as it arrives
};

struct ProcessResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string output;  // stdout and stderr interleaved
  double seconds = 0;
  bool ok() const { return !timed_out && exit_code == 0; }
};

// Quote argv for display (dry-run listings, error messages). Never executed.
std::string FormatCommand(const std::vector<std::string>& argv);

// The last non-empty lines of output, joined by " | ", for one-line errors.
std::string OutputTail(const std::string& output, size_t lines = 3);

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Returns an Error only when the command could not be started at all;
  // a non-zero exit or a timeout is reported in ProcessResult.
  virtual Result<ProcessResult> Run(const ProcessSpec& spec) = 0;

  // Convenience: run and turn failure into an Error naming the step.
  Result<ProcessResult> RunChecked(const ProcessSpec& spec, const std::string& step);
  // The same for a plain argv with a deadline (no cwd, env or stdin).
  Result<ProcessResult> RunChecked(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                                   const std::string& step);
};

// Runs real processes with Boost.Process. Each child leads its own process
// group so a deadline kills it and everything it spawned, and it dies with
// this process (see InstallInterruptHandler).
class SystemProcessRunner : public ProcessRunner {
 public:
  Result<ProcessResult> Run(const ProcessSpec& spec) override;
};

// ---------------------------------------------------------------- interruption
// Children of SystemProcessRunner must not outlive the tool (a QEMU guest
// re-parented to PID 1 runs until its deadline):
//  - Killed outright (SIGKILL, a crash): each child asks the kernel for
//    SIGKILL when its parent dies (PR_SET_PDEATHSIG). The kernel sends it when
//    the *thread* that forked exits; Run() keeps that thread blocked until the
//    child has been reaped, so only the death of the whole process fires it.
//    What a child spawned itself (its process group) is not covered then.
//  - SIGINT, SIGTERM, SIGHUP once InstallInterruptHandler() ran: a watcher
//    thread stops new children from starting, kills every running child's
//    process group, removes the registered scratch paths, prints one line
//    (`PROGRAM: interrupted by SIGTERM; ...`) and exits 128 + the signal.
void InstallInterruptHandler(const std::string& program);

// Paths removed (recursively) when the run is interrupted; a path is
// unregistered once its owner removed it itself.
void AddScratchPath(const std::string& path);
void RemoveScratchPath(const std::string& path);

// Registers a scratch path for its lifetime (it does not remove the path).
class ScratchPath {
 public:
  explicit ScratchPath(std::string path) : path_(std::move(path)) { AddScratchPath(path_); }
  ~ScratchPath() { RemoveScratchPath(path_); }
  ScratchPath(const ScratchPath&) = delete;
  ScratchPath& operator=(const ScratchPath&) = delete;

 private:
  std::string path_;
};

// Process ids (each its group's leader) of the children running now.
std::vector<int> RunningChildren();

// Records commands instead of running them (--dry-run), answering each with
// a canned success.
class RecordingProcessRunner : public ProcessRunner {
 public:
  Result<ProcessResult> Run(const ProcessSpec& spec) override;
  const std::vector<std::vector<std::string>>& commands() const { return commands_; }

 private:
  std::vector<std::vector<std::string>> commands_;
};

// Scripted runner for tests: answers by matching argv prefixes, records calls.
class FakeProcessRunner : public ProcessRunner {
 public:
  struct Rule {
    std::vector<std::string> prefix;
    ProcessResult result;
    std::function<void(const ProcessSpec&)> effect;  // e.g. create a file
  };
  void On(std::vector<std::string> prefix, int exit_code, std::string output = "",
          std::function<void(const ProcessSpec&)> effect = nullptr);
  Result<ProcessResult> Run(const ProcessSpec& spec) override;
  const std::vector<std::vector<std::string>>& commands() const { return commands_; }

 private:
  std::vector<Rule> rules_;
  std::vector<std::vector<std::string>> commands_;
};

}  // namespace util
