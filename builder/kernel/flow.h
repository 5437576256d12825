// `toa-build kernel`: the vendor guide's 2.6.32 path as steps over a
// host::Executor (so --dry-run prints the exact commands and a failed run
// undoes what it wrote under the root):
//   1. check the tree (InspectTree)       4. build; with --install, modules_install
//   2. put TOA in it                          and the kernel into ROOT/boot
//   3. configure: .config, IPV6=y, TOA=m,  5. grub.conf: the new kernel the default, nohz=off
//      the suffix, oldconfig              6. /etc/sysconfig/modules/toa.modules
// Step 2 here is the guide's own: an LVS tree's net/toa/ with its kind set
// (254). Putting the project's TOA into a tree without net/toa/ needs the
// in-tree sources (module/intree/MANIFEST); without them the flow refuses.
#pragma once

#include <chrono>
#include <string>

#include "host/installer.h"
#include "kernel/tree.h"

namespace kernel {

struct KernelFlowOptions {
  std::string config;          // a .config on this machine; empty: ROOT/boot/config-RUNNING
  std::string running_kernel;  // uname -r, for the default config
  std::string suffix = "-toa";
  int jobs = 2;
  int kind = 254;
  bool install = false;
  std::chrono::minutes build_timeout{180};
};

struct KernelFlowResult {
  std::string kernel_release;  // what `uname -r` says once it boots
  bool grub_entry_added = false;
  int grub_default = -1;
};

// `tree_exec` writes inside the tree, `root_exec` on the target system.
util::Result<KernelFlowResult> RunKernelFlow(const TreeInfo& tree, const KernelFlowOptions& opts,
                                             host::Executor& tree_exec, host::Executor& root_exec);

}  // namespace kernel
