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
};

// Runs real processes with Boost.Process. Each child leads its own process
// group so a deadline kills it and everything it spawned.
class SystemProcessRunner : public ProcessRunner {
 public:
  Result<ProcessResult> Run(const ProcessSpec& spec) override;
};

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
