#include "util/process.h"
#include "util/strings.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio.hpp>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>

namespace util {

namespace bp = boost::process;

std::string FormatCommand(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !arg.empty() && arg.find_first_not_of(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./=:,+@%") == std::string::npos;
    if (plain) {
      out += arg;
    } else {
      out += '\'';
      for (char c : arg) {
        if (c == '\'') out += "'\\''"; else out += c;
      }
      out += '\'';
    }
  }
  return out;
}

// A command's output line in a one-line message: control characters (a
// terminal's escapes, progress bars' carriage returns) escaped, UTF-8 kept,
// at most this many bytes.
constexpr size_t kMaxTailLineBytes = 400;

std::string OutputTail(const std::string& output, size_t lines) {
  std::vector<std::string> kept;
  size_t end = output.size();
  while (end > 0 && kept.size() < lines) {
    size_t start = output.rfind('\n', end - 1);
    size_t from = start == std::string::npos ? 0 : start + 1;
    std::string line = output.substr(from, end - from);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty())
      kept.insert(kept.begin(), Printable(line, kMaxTailLineBytes, /*keep_utf8=*/true));
    if (start == std::string::npos) break;
    end = start;
  }
  std::string joined;
  for (const auto& l : kept) {
    if (!joined.empty()) joined += " | ";
    joined += l;
  }
  return joined;
}

Result<ProcessResult> ProcessRunner::RunChecked(std::vector<std::string> argv,
                                                std::chrono::milliseconds timeout,
                                                const std::string& step) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.timeout = timeout;
  return RunChecked(spec, step);
}

Result<ProcessResult> ProcessRunner::RunChecked(const ProcessSpec& spec, const std::string& step) {
  auto r = Run(spec);
  if (!r) return MakeError(step + ": " + r.error().message);
  if (r->timed_out)
    return MakeError(step + ": `" + FormatCommand(spec.argv) + "` did not finish within " +
                     std::to_string(spec.timeout.count() / 1000) + " s");
  if (r->exit_code != 0)
    return MakeError(step + ": `" + FormatCommand(spec.argv) + "` exited " +
                     std::to_string(r->exit_code) + ": " + OutputTail(r->output));
  return r;
}

namespace {

// Pipes are made, marked close-on-exec and handed to a new child under one
// lock: otherwise a child forked by another thread in between inherits this
// child's output pipe, and its EOF waits for that child (a QEMU of another
// row: minutes). The child's own stdio is made by dup2, which drops the flag.
std::mutex& SpawnMutex() {
  static std::mutex m;
  return m;
}

void SetCloseOnExec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

// In the child, between fork and exec: its own process group, and SIGKILL
// when the parent dies. The parent of PR_SET_PDEATHSIG is the thread that
// forked, which Run() keeps waiting until the child has been reaped. If the
// parent died before prctl, nothing would send the signal: exit instead.
struct NewProcessGroup : bp::extend::handler {
  pid_t parent = ::getpid();
  template <typename Executor>
  void on_exec_setup(Executor&) const {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
  }
};

// The children running now (each leads its process group), guarded by
// SpawnMutex: a child is added under the lock it was started under.
std::set<pid_t>& Children() {
  static std::set<pid_t> children;
  return children;
}

}  // namespace

std::vector<int> RunningChildren() {
  std::lock_guard<std::mutex> lock(SpawnMutex());
  return std::vector<int>(Children().begin(), Children().end());
}

namespace {

// Interruption (process.h): the registry of children above, scratch paths,
// and the watcher thread that a signal handler wakes through a pipe (the
// handler itself only writes one byte: nothing else is safe there).
std::mutex& ScratchMutex() {
  static std::mutex m;
  return m;
}

std::multiset<std::string>& ScratchPaths() {
  static std::multiset<std::string> paths;
  return paths;
}

int g_signal_pipe[2] = {-1, -1};

extern "C" void OnInterruptSignal(int sig) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(sig);
  if (g_signal_pipe[1] >= 0) (void)!::write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

void WatchForInterrupt(std::string program) {
  unsigned char sig = 0;
  while (::read(g_signal_pipe[0], &sig, 1) != 1) {
    if (errno != EINTR) return;
  }
  // Holding the spawn lock for good: no child starts after this, and every
  // child started before is in the registry.
  SpawnMutex().lock();
  size_t killed = 0;
  for (pid_t pgid : Children()) {
    ::kill(-pgid, SIGKILL);
    ::kill(pgid, SIGKILL);
    ++killed;
  }
  size_t removed = 0;
  {
    std::lock_guard<std::mutex> lock(ScratchMutex());
    for (const auto& path : ScratchPaths()) {
      boost::system::error_code ec;
      if (boost::filesystem::remove_all(path, ec) > 0) ++removed;
    }
  }
  const char* name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
  std::string line = program + ": interrupted by " + name + "; killed " + std::to_string(killed) +
                     " running command(s) and removed " + std::to_string(removed) +
                     " scratch folder(s)\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  ::_exit(128 + sig);
}

}  // namespace

void InstallInterruptHandler(const std::string& program) {
  static std::once_flag once;
  std::call_once(once, [&program] {
    if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) return;
    std::thread(WatchForInterrupt, program).detach();
    struct sigaction sa {};
    sa.sa_handler = OnInterruptSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  });
}

void AddScratchPath(const std::string& path) {
  std::lock_guard<std::mutex> lock(ScratchMutex());
  ScratchPaths().insert(path);
}

void RemoveScratchPath(const std::string& path) {
  std::lock_guard<std::mutex> lock(ScratchMutex());
  auto it = ScratchPaths().find(path);
  if (it != ScratchPaths().end()) ScratchPaths().erase(it);
}

Result<ProcessResult> SystemProcessRunner::Run(const ProcessSpec& spec) {
  if (spec.argv.empty()) return MakeError("internal error: empty command");
  auto start = std::chrono::steady_clock::now();
  boost::asio::io_context io;
  std::unique_lock<std::mutex> spawn_lock(SpawnMutex());
  bp::async_pipe out_pipe(io);
  bp::async_pipe in_pipe(io);
  for (int fd : {out_pipe.native_source(), out_pipe.native_sink(), in_pipe.native_source(),
                 in_pipe.native_sink()})
    SetCloseOnExec(fd);
  ProcessResult result;

  boost::filesystem::path exe = spec.argv[0];
  if (spec.argv[0].find('/') == std::string::npos) {
    exe = bp::search_path(spec.argv[0]);
    if (exe.empty())
      return MakeError("`" + spec.argv[0] + "` not found in PATH; run scripts/install-deps.sh");
  }
  std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());
  bp::environment env = boost::this_process::environment();
  for (const auto& [k, v] : spec.env) env[k] = v;

  std::error_code launch_error;
  bp::child child;
  try {
    if (spec.cwd.empty()) {
      child = bp::child(exe, bp::args(args), env, (bp::std_out & bp::std_err) > out_pipe,
                        bp::std_in < in_pipe, NewProcessGroup{}, io, launch_error);
    } else {
      child = bp::child(exe, bp::args(args), env, bp::start_dir(spec.cwd),
                        (bp::std_out & bp::std_err) > out_pipe, bp::std_in < in_pipe,
                        NewProcessGroup{}, io, launch_error);
    }
  } catch (const std::exception& e) {
    return MakeError("cannot start `" + FormatCommand(spec.argv) + "`: " + e.what());
  }
  if (launch_error)
    return MakeError("cannot start `" + FormatCommand(spec.argv) + "`: " + launch_error.message());
  pid_t pgid = child.id();
  Children().insert(pgid);
  spawn_lock.unlock();

  // Feed stdin, then close it so the child sees EOF.
  auto stdin_buf = std::make_shared<std::string>(spec.stdin_data);
  if (stdin_buf->empty()) {
    in_pipe.close();
  } else {
    boost::asio::async_write(in_pipe, boost::asio::buffer(*stdin_buf),
                             [&in_pipe, stdin_buf](const boost::system::error_code&, size_t) {
                               boost::system::error_code ec;
                               in_pipe.close(ec);
                             });
  }

  std::array<char, 8192> buf{};
  std::string pending;
  std::function<void()> read_more = [&]() {
    out_pipe.async_read_some(boost::asio::buffer(buf), [&](const boost::system::error_code& ec,
                                                           size_t n) {
      if (n > 0) {
        result.output.append(buf.data(), n);
        if (spec.on_line) {
          pending.append(buf.data(), n);
          size_t pos;
          while ((pos = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, pos);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            spec.on_line(line);
            pending.erase(0, pos + 1);
          }
        }
      }
      if (!ec) read_more();
    });
  };
  read_more();

  auto deadline = start + spec.timeout;
  while (!io.stopped()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      result.timed_out = true;
      ::kill(-pgid, SIGKILL);
      ::kill(pgid, SIGKILL);
      io.restart();
      io.run_for(std::chrono::seconds(2));  // drain what is left
      break;
    }
    io.run_for(std::min<std::chrono::steady_clock::duration>(deadline - now,
                                                             std::chrono::milliseconds(200)));
  }
  if (spec.on_line && !pending.empty()) spec.on_line(pending);
  std::error_code wait_error;
  child.wait(wait_error);
  // Anything the command left behind in its group goes with it.
  ::kill(-pgid, SIGKILL);
  {
    std::lock_guard<std::mutex> lock(SpawnMutex());
    Children().erase(pgid);
  }
  result.exit_code = result.timed_out ? -1 : child.exit_code();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

Result<ProcessResult> RecordingProcessRunner::Run(const ProcessSpec& spec) {
  commands_.push_back(spec.argv);
  ProcessResult r;
  r.exit_code = 0;
  return r;
}

void FakeProcessRunner::On(std::vector<std::string> prefix, int exit_code, std::string output,
                           std::function<void(const ProcessSpec&)> effect) {
  Rule rule;
  rule.prefix = std::move(prefix);
  rule.result.exit_code = exit_code;
  rule.result.output = std::move(output);
  rule.effect = std::move(effect);
  rules_.push_back(std::move(rule));
}

Result<ProcessResult> FakeProcessRunner::Run(const ProcessSpec& spec) {
  commands_.push_back(spec.argv);
  // Later rules win, so a test can override a default.
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (it->prefix.size() > spec.argv.size()) continue;
    if (!std::equal(it->prefix.begin(), it->prefix.end(), spec.argv.begin())) continue;
    if (it->effect) it->effect(spec);
    if (spec.on_line) {
      size_t from = 0, pos;
      while ((pos = it->result.output.find('\n', from)) != std::string::npos) {
        spec.on_line(std::string_view(it->result.output).substr(from, pos - from));
        from = pos + 1;
      }
    }
    return it->result;
  }
  return MakeError("fake runner: no rule for `" + FormatCommand(spec.argv) + "`");
}

}  // namespace util
