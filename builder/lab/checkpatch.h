// The kernel's own style checker over the modules: scripts/checkpatch.pl from
// Debian's linux-source-6.1 (the reference the project follows), fetched once
// through a build root's apt (never the host's sources) and kept in the cache.
#pragma once

#include <string>
#include <vector>

#include "lab/matrix.h"
#include "util/process.h"
#include "util/result.h"

namespace lab {

struct CheckpatchFinding {
  std::string file;
  int line = 0;
  std::string level;  // ERROR, WARNING, CHECK
  std::string type;   // LINUX_VERSION_CODE, SPACING, ...
  std::string message;
  std::string ToString() const;
};

// Parses checkpatch's `--terse --show-types` lines ("FILE:LINE: LEVEL:TYPE:
// message"); other lines (the totals) are not findings.
std::vector<CheckpatchFinding> ParseCheckpatch(const std::string& output);

// Types accepted in the compat header only: it is the one place where kernel
// versions are tested (a version number compared with LINUX_VERSION_CODE) and
// where wrappers for removed APIs live, by design.
const std::vector<std::string>& CompatHeaderAllowedTypes();

// The kernel C sources and headers under `module_dir` (not the user-space
// tests beside them), sorted.
std::vector<std::string> ModuleSourceFiles(const std::string& module_dir);

// Path of checkpatch.pl from `package` (e.g. "linux-source-6.1"), downloaded
// by the apt of `row`'s build root (provisioned first) and unpacked into the
// cache on first use. A partial unpack is never used: the scripts land in
// place by rename, last.
util::Result<std::string> FetchCheckpatch(const KernelRow& row, const std::string& package,
                                          util::ProcessRunner& runner,
                                          const std::string& cache_root);

// Runs checkpatch on each file (compat.h with CompatHeaderAllowedTypes
// ignored); every finding is returned. An Error only when checkpatch itself
// could not run.
util::Result<std::vector<CheckpatchFinding>> RunCheckpatch(const std::string& script,
                                                           const std::vector<std::string>& files,
                                                           util::ProcessRunner& runner);

}  // namespace lab
