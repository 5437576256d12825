#include "lab/matrix.h"

#include <catch2/catch.hpp>

#include <filesystem>

#include "lab/paths.h"
#include "util/fs.h"

using namespace lab;

namespace {

const char* kGood = R"(default: debian-12
row_defaults:
  mirror: http://deb.example/debian
  security_mirror: http://deb.example/debian-security
  image_meta: linux-image-amd64
  headers_meta: linux-headers-amd64
  image_packages: ["linux-image-{kver}"]
  headers_package: linux-headers-{kver}
  vmlinuz: boot/vmlinuz-{kver}
  modules_dir: lib/modules/{kver}
rows:
  - name: debian-12
    suite: bookworm
    security_suite: bookworm-security
    root_release: bookworm
  - name: debian-sid
    suite: sid
    root_release: sid
    image_packages: ["linux-binary-{kver}", "linux-modules-{kver}"]
    vmlinuz: usr/lib/modules/{kver}/vmlinuz
    modules_dir: usr/lib/modules/{kver}
  - name: debian-12-rt
    suite: bookworm
    root_release: bookworm
    headers_meta: linux-headers-rt-amd64
    pin: 6.1.0-56-rt-amd64
    optional: true
)";

std::string Err(const std::string& text) {
  auto m = ParseMatrix(text, "k.yaml");
  REQUIRE_FALSE(m.ok());
  return m.error().message;
}

}  // namespace

TEST_CASE("matrix: a good file gives rows with defaults applied and overridden") {
  auto m = ParseMatrix(kGood, "k.yaml");
  REQUIRE(m.ok());
  CHECK(m->file == "k.yaml");
  CHECK(m->default_row == "debian-12");
  REQUIRE(m->rows.size() == 3);
  const KernelRow& d12 = m->rows[0];
  CHECK(d12.suite == "bookworm");
  CHECK(d12.security_suite == "bookworm-security");
  CHECK(d12.root_release == "bookworm");
  CHECK(d12.image_packages == std::vector<std::string>{"linux-image-{kver}"});
  CHECK(d12.vmlinuz_glob == "boot/vmlinuz-{kver}");
  CHECK(d12.mirror == "http://deb.example/debian");
  CHECK_FALSE(d12.optional);
  const KernelRow& sid = m->rows[1];
  CHECK(sid.image_packages ==
        std::vector<std::string>{"linux-binary-{kver}", "linux-modules-{kver}"});
  CHECK(sid.modules_dir == "usr/lib/modules/{kver}");
  CHECK(sid.security_suite.empty());
  const KernelRow& rt = m->rows[2];
  CHECK(rt.optional);
  CHECK(rt.pin == "6.1.0-56-rt-amd64");
  CHECK(rt.headers_meta == "linux-headers-rt-amd64");
}

TEST_CASE("matrix: the repository's kernels.yaml has the SPEC rows") {
  auto m = LoadMatrix(SourceDir() + "/distros/kernels.yaml");
  REQUIRE(m.ok());
  CHECK(m->default_row == "debian-12");
  auto rows = SelectRows(*m, "");
  REQUIRE(rows.ok());
  std::vector<std::string> names;
  for (const auto& r : *rows) names.push_back(r.name);
  CHECK(names == std::vector<std::string>{"debian-11", "debian-12", "debian-12-bpo", "debian-13",
                                          "debian-sid", "centos-7"});
  auto bpo = FindRow(*m, "debian-12-bpo");
  REQUIRE(bpo.ok());
  CHECK(bpo->suite == "bookworm-backports");
  CHECK(bpo->root_release == "bookworm");
  auto sid = FindRow(*m, "debian-sid");
  REQUIRE(sid.ok());
  CHECK(sid->image_packages.size() == 2);
  CHECK(ExpandKver(sid->vmlinuz_glob, "7.2.13+deb14-amd64") ==
        "usr/lib/modules/7.2.13+deb14-amd64/vmlinuz");
  bool has_optional = false;
  for (const auto& r : m->rows) has_optional = has_optional || r.optional;
  CHECK(has_optional);
}

TEST_CASE("matrix: bad YAML names the file, the line and the problem") {
  std::string e = Err("rows:\n  - name: a\n    suite: [unclosed\n");
  CHECK(e.rfind("k.yaml:", 0) == 0);
  CHECK(e.find("invalid YAML") != std::string::npos);
  // yaml-cpp reports where it gave up: line 3 or 4, never line 1.
  CHECK((e.rfind("k.yaml:3:", 0) == 0 || e.rfind("k.yaml:4:", 0) == 0));
  // An unquoted {kver} in a flow list is a YAML mapping: a classic mistake.
  std::string flow = Err("rows:\n  - name: a\n    image_packages: [linux-image-{kver}]\n");
  CHECK(flow.rfind("k.yaml:3:", 0) == 0);
}

TEST_CASE("matrix: a missing field names the row, its line and the field") {
  std::string text = kGood;
  text.replace(text.find("    root_release: sid\n"), 22, "");
  std::string e = Err(text);
  CHECK(e == "k.yaml:16: row `debian-sid` is missing `root_release`");
}

TEST_CASE("matrix: an unknown key is refused with the known ones") {
  std::string text = kGood;
  text.replace(text.find("    suite: sid\n"), 15, "    suite: sid\n    suit: sid\n");
  std::string e = Err(text);
  CHECK(e.rfind("k.yaml:18: unknown key `suit`", 0) == 0);
  CHECK(e.find("root_release") != std::string::npos);
  CHECK(Err("rows: []\nextra: 1\n").rfind("k.yaml:2: unknown top-level key `extra`", 0) == 0);
}

TEST_CASE("matrix: a duplicate row names both lines") {
  std::string text = kGood;
  text.replace(text.find("name: debian-12-rt"), 18, "name: debian-12");
  CHECK(Err(text) == "k.yaml:22: duplicate row `debian-12` (first defined on line 12)");
}

TEST_CASE("matrix: values are checked") {
  std::string text = kGood;
  SECTION("template without {kver}") {
    std::string from = "usr/lib/modules/{kver}/vmlinuz";
    text.replace(text.find(from), from.size(), "usr/lib/modules/vmlinuz");
    CHECK(Err(text).find("`vmlinuz` (usr/lib/modules/vmlinuz) must contain {kver}") !=
          std::string::npos);
  }
  SECTION("optional not a boolean") {
    text.replace(text.find("optional: true"), 14, "optional: maybe");
    CHECK(Err(text) == "k.yaml:27: `optional` must be true or false");
  }
  SECTION("a name that cannot be a path") {
    text.replace(text.find("name: debian-sid"), 16, "name: ../sid");
    CHECK(Err(text).find("`name` `../sid` must be") != std::string::npos);
  }
  SECTION("default naming no row") {
    text.replace(text.find("default: debian-12"), 18, "default: debian-99");
    CHECK(Err(text) == "k.yaml:1: `default` names `debian-99`, which is not a row");
  }
  SECTION("image_packages not a list") {
    text.replace(text.find("image_packages: [\"linux-binary"), 17, "image_packages: 3 #");
    CHECK(Err(text).find("`image_packages` must be a non-empty list") != std::string::npos);
  }
}

TEST_CASE("matrix: row selection") {
  auto m = ParseMatrix(kGood, "k.yaml");
  REQUIRE(m.ok());
  auto def = SelectRows(*m, "");
  REQUIRE(def.ok());
  CHECK(def->size() == 2);  // the optional rt row is left out
  auto all = SelectRows(*m, "all");
  REQUIRE(all.ok());
  CHECK(all->size() == 3);
  auto some = SelectRows(*m, "debian-12-rt,debian-12,debian-12");
  REQUIRE(some.ok());
  REQUIRE(some->size() == 2);
  CHECK((*some)[0].name == "debian-12-rt");
  auto bad = SelectRows(*m, "debian-12,nope");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("no kernel row `nope`") != std::string::npos);
  CHECK(bad.error().message.find("debian-sid") != std::string::npos);
}

TEST_CASE("matrix: LoadMatrix reports an unreadable file") {
  auto m = LoadMatrix("/nonexistent/kernels.yaml");
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().message.find("/nonexistent/kernels.yaml") != std::string::npos);
}

TEST_CASE("ExpandKver replaces every {kver}") {
  CHECK(ExpandKver("a-{kver}/{kver}", "6.1") == "a-6.1/6.1");
  CHECK(ExpandKver("plain", "6.1") == "plain");
}
