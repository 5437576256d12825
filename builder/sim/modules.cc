// Loading and unloading the modules under test with finit_module(2) and
// delete_module(2): the guest has busybox only, and cases need per-case
// parameters.
#include <fcntl.h>
#include <sys/klog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "sim/sim.h"

namespace sim {

bool Modules::IsLoaded(const std::string& name) {
  std::ifstream in("/proc/modules");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, name.size() + 1, name + " ") == 0) return true;
  return false;
}

util::Status Modules::Load(const std::string& name, const std::string& params) {
  if (no_load_) return util::MakeError("--no-load: not loading " + name);
  std::string path = ko_dir_ + "/" + name + ".ko";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return util::MakeError("cannot open " + path + ": " + strerror(errno) +
                           " (pass --ko-dir with the built modules)");
  long rc = syscall(SYS_finit_module, fd, params.c_str(), 0);
  int err = errno;
  close(fd);
  if (rc != 0)
    return util::MakeError("finit_module(" + path + ", \"" + params + "\"): " + strerror(err) +
                           " (see the kernel log)");
  loaded_params_[name] = params;
  return util::Ok{};
}

util::Status Modules::Unload(const std::string& name) {
  if (no_load_) return util::MakeError("--no-load: not unloading " + name);
  // A module still referenced answers EBUSY/EAGAIN; give in-flight users a moment.
  for (int attempt = 0;; attempt++) {
    if (syscall(SYS_delete_module, name.c_str(), O_NONBLOCK) == 0) break;
    int err = errno;
    if ((err == EBUSY || err == EAGAIN || err == EWOULDBLOCK) && attempt < 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    return util::MakeError("delete_module(" + name + "): " + strerror(err));
  }
  loaded_params_.erase(name);
  return util::Ok{};
}

util::Status Modules::UnloadIfLoaded(const std::string& name) {
  if (!IsLoaded(name)) {
    loaded_params_.erase(name);
    return util::Ok{};
  }
  return Unload(name);
}

util::Status Modules::Ensure(const std::string& name, const std::string& params) {
  if (no_load_) {
    // Not loaded: the case still runs (TUN and handshake plumbing) and fails
    // on what the server sees; the runner notes the missing module.
    if (!params.empty())
      return util::MakeError("needs " + name + " loaded with \"" + params + "\" (--no-load)");
    return util::Ok{};
  }
  auto it = loaded_params_.find(name);
  if (it != loaded_params_.end() && it->second == params && IsLoaded(name)) return util::Ok{};
  if (auto st = UnloadIfLoaded(name); !st) return st;
  return Load(name, params);
}

unsigned long OopsOrWarnTaint() {
  std::ifstream in("/proc/sys/kernel/tainted");
  unsigned long t = 0;
  in >> t;
  return t & ((1UL << 7) | (1UL << 9));  // TAINT_DIE, TAINT_WARN
}

std::string KernelLog() {
  int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, nullptr, 0);
  if (size <= 0) size = 1 << 20;
  std::string buf(size_t(size), '\0');
  int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf.data(), size);
  buf.resize(n > 0 ? size_t(n) : 0);
  return buf;
}

util::Result<std::map<std::string, uint64_t>> ReadCounters(const std::string& path) {
  std::ifstream in(path);
  if (!in) return util::MakeError("cannot read " + path + ": " + strerror(errno));
  std::map<std::string, uint64_t> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name, extra;
    uint64_t value;
    if (ls >> name >> value && !(ls >> extra)) out[name] = value;
  }
  return out;
}

}  // namespace sim
