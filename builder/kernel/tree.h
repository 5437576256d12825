// Step 1 of `toa-build kernel`: what a kernel source tree is, read through a
// RootFs rooted at the tree (a tree is input like any other: symlinks stay
// inside it, only regular files are read, sizes are capped), and a clear
// refusal for a tree the flow cannot handle.
#pragma once

#include <optional>
#include <string>

#include "kernel/tree_edits.h"
#include "util/result.h"

namespace kernel {

struct TreeInfo {
  std::string dir;
  TreeVersion version;
  std::optional<int> lvs_kind;     // net/toa/toa.h's TCPOPT_TOA: the tree has LVS's net/toa/ (rs tree)
  bool kconfig_sources_toa = false;  // net/Kconfig has `source "net/toa/Kconfig"`
  bool makefile_builds_toa = false;  // net/Makefile has `obj-$(CONFIG_TOA) += toa/`
  bool has_config = false;         // a .config is there already
};

// Reads DIR/Makefile, arch/x86, net/Kconfig, net/Makefile, net/toa/toa.h.
// Refused: no kernel tree there; not a 2.6 kernel (3.10 and later take the
// out-of-tree modules: `toa-build install`); no arch/x86 (the flow builds
// x86_64 kernels only); a net/toa/ that is not LVS's layout.
util::Result<TreeInfo> InspectTree(const std::string& dir);

}  // namespace kernel
