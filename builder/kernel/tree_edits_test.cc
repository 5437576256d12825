#include "kernel/tree_edits.h"

#include <catch2/catch.hpp>

namespace kernel {
namespace {

// The head of CentOS 6.8's top Makefile, as its source tarball has it.
const char* kMakefile =
    "VERSION = 2\n"
    "PATCHLEVEL = 6\n"
    "SUBLEVEL = 32\n"
    "EXTRAVERSION =\n"
    "RHEL_MAJOR = 6\n"
    "NAME = Man-Eating Seals of Antiquity\n"
    "\n"
    "# *DOCUMENTATION*\n";

TEST_CASE("tree: the top Makefile's version") {
  auto v = ParseTopMakefile(kMakefile);
  REQUIRE(v.ok());
  CHECK(v->Text() == "2.6.32");
  CHECK(v->vars.at("RHEL_MAJOR") == "6");
  CHECK_FALSE(ParseTopMakefile("all:\n\techo\n").ok());
  CHECK(ParseTopMakefile("VERSION = 2\nPATCHLEVEL = x\nSUBLEVEL = 32\n").error().message.find("PATCHLEVEL") !=
        std::string::npos);
}

TEST_CASE("tree: the suffix goes on EXTRAVERSION once") {
  auto once = AddExtraversionSuffix(kMakefile, "-toa");
  REQUIRE(once.ok());
  CHECK(once->find("EXTRAVERSION = -toa\n") != std::string::npos);
  CHECK(ParseTopMakefile(*once)->Text() == "2.6.32-toa");
  auto twice = AddExtraversionSuffix(*once, "-toa");
  REQUIRE(twice.ok());
  CHECK(*twice == *once);
  auto rhel = AddExtraversionSuffix("VERSION = 2\nEXTRAVERSION = -642.6.2.el6.x86_64\n", "-toa");
  REQUIRE(rhel.ok());
  CHECK(*rhel == "VERSION = 2\nEXTRAVERSION = -642.6.2.el6.x86_64-toa\n");
  CHECK_FALSE(AddExtraversionSuffix(kMakefile, "-toa; rm -rf /").ok());
  CHECK_FALSE(AddExtraversionSuffix(kMakefile, "").ok());
  CHECK_FALSE(AddExtraversionSuffix("VERSION = 2\n", "-toa").ok());
}

TEST_CASE("tree: LVS's TCPOPT_TOA 200 becomes 254, and only a layout with one define is edited") {
  const std::string toa_h = "#ifndef NET__TOA_H__\n#define TCPOPT_TOA  200\n#define TCPOLEN_TOA 8\n#endif\n";
  REQUIRE(TcpoptToa(toa_h).value() == 200);
  auto edited = SetTcpoptToa(toa_h, 254);
  REQUIRE(edited.ok());
  CHECK(*edited == "#ifndef NET__TOA_H__\n#define TCPOPT_TOA  254\n#define TCPOLEN_TOA 8\n#endif\n");
  CHECK(SetTcpoptToa(*edited, 254).value() == *edited);
  CHECK_FALSE(SetTcpoptToa("#define TCPOLEN_TOA 8\n", 254).ok());
  CHECK_FALSE(SetTcpoptToa("#define TCPOPT_TOA 200\n#define TCPOPT_TOA 254\n", 254).ok());
  CHECK_FALSE(TcpoptToa("#define TCPOPT_TOA 999\n").ok());
}

TEST_CASE("tree: net/Kconfig and net/Makefile gain the toa entries once") {
  const std::string kconfig = "menuconfig NET\n\tbool \"Networking support\"\nif NET\n"
                              "source \"net/9p/Kconfig\"\n\nendif   # if NET\n";
  auto k = AddKconfigSource(kconfig);
  REQUIRE(k.ok());
  CHECK(*k == "menuconfig NET\n\tbool \"Networking support\"\nif NET\nsource \"net/9p/Kconfig\"\n\n"
              "source \"net/toa/Kconfig\"\n\nendif   # if NET\n");
  CHECK(HasKconfigSource(*k));
  CHECK(AddKconfigSource(*k).value() == *k);
  CHECK_FALSE(AddKconfigSource("menu \"x\"\nendmenu\n").ok());
  const std::string makefile = "obj-$(CONFIG_NET)\t\t+= core/\nobj-$(CONFIG_INET) += ipv4/";
  std::string m = AddMakefileSubdir(makefile);
  CHECK(m == makefile + "\nobj-$(CONFIG_TOA) += toa/\n");
  CHECK(AddMakefileSubdir(m) == m);
  CHECK(HasMakefileSubdir("obj-$(CONFIG_TOA)\t\t+= toa/\n"));
}

TEST_CASE("tree: .config options are set in place, appended when missing, never doubled") {
  const std::string config = "CONFIG_INET=y\nCONFIG_IPV6=m\n# CONFIG_NETFILTER is not set\n";
  std::string out = SetConfigOptions(config, {{"IPV6", "y"}, {"TOA", "m"}, {"NETFILTER", "y"}});
  CHECK(out == "CONFIG_INET=y\nCONFIG_IPV6=y\nCONFIG_NETFILTER=y\nCONFIG_TOA=m\n");
  CHECK(SetConfigOptions(out, {{"IPV6", "y"}, {"TOA", "m"}}) == out);
  CHECK(SetConfigOptions("CONFIG_TOA=y\nCONFIG_TOA=m\n", {{"TOA", "m"}}) == "CONFIG_TOA=m\n");
  CHECK(SetConfigOptions(out, {{"TOA", "n"}}).find("# CONFIG_TOA is not set\n") != std::string::npos);
  CHECK(ConfigValue(out, "IPV6") == "y");
  CHECK(ConfigValue(out, "TOA") == "m");
  CHECK(ConfigValue(out, "IPV6_SIT") == "n");
  CHECK(ConfigValue("CONFIG_LOCALVERSION=\"-x\"\n", "LOCALVERSION") == "\"-x\"");
}

}  // namespace
}  // namespace kernel
