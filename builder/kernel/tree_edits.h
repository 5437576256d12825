// The text edits `toa-build kernel` makes in a 2.6.32-era kernel tree and its
// .config, as the vendor guide does them by hand: pure functions, so tests
// pin them on fixture files and every one is idempotent.
#pragma once

#include <map>
#include <string>

#include "util/result.h"

namespace kernel {

// The top Makefile's version variables (VERSION, PATCHLEVEL, SUBLEVEL,
// EXTRAVERSION; RHEL trees may add RHEL_MAJOR/RHEL_MINOR/RHEL_RELEASE).
struct TreeVersion {
  int version = 0, patchlevel = 0, sublevel = 0;
  std::string extraversion;
  std::map<std::string, std::string> vars;  // every `NAME = value` read
  std::string Text() const;                 // "2.6.32" + extraversion
};
util::Result<TreeVersion> ParseTopMakefile(const std::string& makefile);

// `EXTRAVERSION = X` -> `EXTRAVERSION = X` + suffix (unchanged when X already
// ends with it). The suffix must be what `uname -r` can carry: [A-Za-z0-9._+-], at most 32.
util::Result<std::string> AddExtraversionSuffix(const std::string& makefile, const std::string& suffix);

// net/toa/toa.h: `#define TCPOPT_TOA N` (exactly one) set to `kind`.
util::Result<std::string> SetTcpoptToa(const std::string& toa_h, int kind);
// The value that define has now, or an error when there is not exactly one.
util::Result<int> TcpoptToa(const std::string& toa_h);

// net/Kconfig gains `source "net/toa/Kconfig"` before its closing `endif   # if NET`.
util::Result<std::string> AddKconfigSource(const std::string& net_kconfig);
// net/Makefile gains `obj-$(CONFIG_TOA) += toa/`.
std::string AddMakefileSubdir(const std::string& net_makefile);
bool HasKconfigSource(const std::string& net_kconfig);
bool HasMakefileSubdir(const std::string& net_makefile);

// .config with each NAME set to its value ("y", "m", or "n" for `# CONFIG_NAME
// is not set`): an existing line is replaced in place, a missing one appended.
std::string SetConfigOptions(const std::string& config, const std::map<std::string, std::string>& options);
// The value of CONFIG_NAME in a .config ("y", "m", "n" when not set or absent, or the string).
std::string ConfigValue(const std::string& config, const std::string& name);

}  // namespace kernel
