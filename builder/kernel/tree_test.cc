#include "kernel/tree.h"

#include <catch2/catch.hpp>

#include "util/testing.h"

namespace kernel {
namespace {

using util::testing::TempDir;
using util::testing::Touch;

// A fixture tree holding only the files the flow reads.
void MakeTree(const TempDir& t, const std::string& sublevel_line = "SUBLEVEL = 32\n") {
  Touch(t / "Makefile", "VERSION = 2\nPATCHLEVEL = 6\n" + sublevel_line + "EXTRAVERSION =\nNAME = x\n");
  Touch(t / "arch/x86/Makefile", "# x86\n");
  Touch(t / "net/Kconfig", "if NET\nsource \"net/9p/Kconfig\"\n\nendif   # if NET\n");
  Touch(t / "net/Makefile", "obj-$(CONFIG_NET) += core/\n");
}

TEST_CASE("tree check: CentOS's own tree (no net/toa/)") {
  TempDir t;
  MakeTree(t);
  auto info = InspectTree(t.path);
  REQUIRE(info.ok());
  CHECK(info->version.Text() == "2.6.32");
  CHECK_FALSE(info->lvs_kind);
  CHECK_FALSE(info->kconfig_sources_toa);
  CHECK_FALSE(info->makefile_builds_toa);
  CHECK_FALSE(info->has_config);
}

TEST_CASE("tree check: the LVS rs tree (net/toa/ with kind 200)") {
  TempDir t;
  MakeTree(t);
  Touch(t / "net/toa/toa.h", "#define TCPOPT_TOA  200\n");
  Touch(t / "net/Kconfig", "if NET\nsource \"net/toa/Kconfig\"\nendif   # if NET\n");
  Touch(t / "net/Makefile", "obj-$(CONFIG_TOA)\t\t+= toa/\n");
  Touch(t / ".config", "CONFIG_IPV6=m\n");
  auto info = InspectTree(t.path);
  REQUIRE(info.ok());
  CHECK(info->lvs_kind == 200);
  CHECK(info->kconfig_sources_toa);
  CHECK(info->makefile_builds_toa);
  CHECK(info->has_config);
}

TEST_CASE("tree check: what the flow cannot handle is refused in one line") {
  auto refused = [](const std::string& dir, const std::string& why) {
    auto info = InspectTree(dir);
    REQUIRE_FALSE(info.ok());
    CHECK(info.error().message.find(why) != std::string::npos);
    CHECK(info.error().message.find('\n') == std::string::npos);
  };
  refused("relative/dir", "not an absolute path");
  TempDir empty;
  refused(empty.path, "not a kernel source tree");
  refused(empty / "missing", "not a directory");
  {
    TempDir t;
    MakeTree(t);
    Touch(t / "Makefile", "VERSION = 3\nPATCHLEVEL = 10\nSUBLEVEL = 0\n");
    refused(t.path, "is Linux 3.10.0: `toa-build kernel` puts TOA into 2.6 kernels");
  }
  {
    TempDir t;
    MakeTree(t);
    std::filesystem::remove_all(t / "arch/x86");
    refused(t.path, "has no arch/x86");
  }
  {
    TempDir t;
    MakeTree(t);
    Touch(t / "net/toa/toa.c", "/* someone else's */\n");
    refused(t.path, "net/toa/ without a readable toa.h");
  }
  {
    TempDir t;
    MakeTree(t);
    Touch(t / "net/toa/toa.h", "#define TOA_KIND 254\n");
    refused(t.path, "0 `#define TCPOPT_TOA` lines");
  }
  {
    // A Makefile that is a symlink out of the tree reads inside the tree.
    TempDir t;
    MakeTree(t);
    std::filesystem::remove(t / "Makefile");
    std::filesystem::create_symlink("/etc/passwd", t / "Makefile");
    refused(t.path, "not a kernel source tree");
  }
}

}  // namespace
}  // namespace kernel
