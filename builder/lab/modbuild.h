// Building kernel modules for a provisioned row inside its build root, by
// plain Kbuild or by DKMS, and copying the .ko files out to the cache.
#pragma once

#include <string>
#include <vector>

#include "lab/provision.h"
#include "util/process.h"
#include "util/result.h"

namespace lab {

enum class BuildMethod { kKbuild, kDkms };

// "kbuild" / "dkms".
std::string BuildMethodName(BuildMethod method);
util::Result<BuildMethod> ParseBuildMethod(const std::string& name);

struct BuiltModules {
  std::vector<std::string> ko_files;  // host paths under <cache>/builds/<row>/<kver>/<method>/
  double seconds = 0;
  std::string log;                    // build output
};

// Copies `module_src` (e.g. SourceDir()+"/module") fresh into the root and
// builds it there. kKbuild: `make -C /usr/src/linux-headers-KVER M=... modules`.
// kDkms: `dkms add`/`dkms build -k KVER` with module_src/dkms.conf, then the
// package is removed again so no DKMS state outlives the run.
util::Result<BuiltModules> BuildModules(const ProvisionedKernel& kernel,
                                        const std::string& module_src, BuildMethod method,
                                        util::ProcessRunner& runner, const std::string& cache_root);

}  // namespace lab
