#include "kernel/tree.h"

#include "host/rootfs.h"
#include "util/strings.h"

namespace kernel {

namespace {
constexpr size_t kMaxTreeFile = 1u << 20;  // the files read here are tens of kilobytes
}

util::Result<TreeInfo> InspectTree(const std::string& dir) {
  TreeInfo info;
  info.dir = dir;
  std::string where = util::Printable(dir, 200);
  if (dir.empty() || dir[0] != '/')
    return util::MakeError("--source " + where + " is not an absolute path to a kernel source tree");
  host::RootFs tree(dir);
  if (!tree.IsDir("/"))
    return util::MakeError("--source " + where + " is not a directory; give the unpacked tree or its tarball");
  auto makefile = tree.ReadChecked("/Makefile", kMaxTreeFile);
  if (!makefile)
    return util::MakeError(where + " is not a kernel source tree (its top Makefile: " + makefile.error().message +
                           "); give the folder that holds Makefile, arch/ and net/");
  auto version = ParseTopMakefile(*makefile);
  if (!version)
    return util::MakeError(where + " is not a kernel source tree: " + version.error().message);
  info.version = *version;
  if (info.version.version != 2 || info.version.patchlevel != 6)
    return util::MakeError(where + " is Linux " + info.version.Text() +
                           ": `toa-build kernel` puts TOA into 2.6 kernels (CentOS/RHEL 6); for 3.10 and later, "
                           "`toa-build install` builds the out-of-tree modules against the running kernel");
  if (!tree.IsDir("/arch/x86"))
    return util::MakeError(where + " has no arch/x86: the flow builds x86_64 kernels only");
  auto kconfig = tree.ReadChecked("/net/Kconfig", kMaxTreeFile);
  auto net_makefile = tree.ReadChecked("/net/Makefile", kMaxTreeFile);
  if (!kconfig || !net_makefile)
    return util::MakeError(where + " has no readable net/Kconfig and net/Makefile (" +
                           (kconfig ? net_makefile.error().message : kconfig.error().message) +
                           "): not a complete kernel tree");
  info.kconfig_sources_toa = HasKconfigSource(*kconfig);
  info.makefile_builds_toa = HasMakefileSubdir(*net_makefile);
  info.has_config = tree.Exists("/.config");
  if (tree.Lexists("/net/toa")) {
    auto toa_h = tree.ReadChecked("/net/toa/toa.h", kMaxTreeFile);
    if (!toa_h)
      return util::MakeError(where + " has a net/toa/ without a readable toa.h (" + toa_h.error().message +
                             "): not the LVS TOA this flow knows; remove net/toa/ to get the project's TOA");
    auto kind = TcpoptToa(*toa_h);
    if (!kind) return util::MakeError(where + ": " + kind.error().message + "; remove net/toa/ to get the project's TOA");
    info.lvs_kind = *kind;
  }
  return info;
}

}  // namespace kernel
