#include "lab/cache.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "util/fs.h"
#include "util/testing.h"

using namespace lab;
namespace fs = std::filesystem;

namespace {

using util::testing::TempDir;
using util::testing::Touch;

CacheEntrySpec Spec(const std::string& base) {
  CacheEntrySpec s;
  s.dir = base + "/entries/thing";
  s.lock = base + "/locks/thing.lock";
  s.recipe = "kind=test\nversion=1";
  s.key_files = {"bin/tool", "data/file"};
  s.lock_timeout_s = 5;
  return s;
}

// A build that makes the key files and counts its calls.
struct Builder {
  int calls = 0;
  std::string last_tmp;
  util::Result<std::string> operator()(const std::string& tmp) {
    ++calls;
    last_tmp = tmp;
    Touch(tmp + "/bin/tool");
    Touch(tmp + "/data/file");
    return std::string("resolved=42\n");
  }
};

}  // namespace

TEST_CASE("cache: an absent entry is built in a temp dir and stamped") {
  TempDir t;
  util::FakeProcessRunner runner;
  Builder b;
  auto spec = Spec(t.path);
  CHECK(EntryProblem(spec) == "absent");
  auto r = EnsureEntry(spec, runner, std::ref(b));
  REQUIRE(r.ok());
  CHECK(r->built);
  CHECK(b.calls == 1);
  CHECK(b.last_tmp != spec.dir);
  CHECK(fs::path(b.last_tmp).parent_path() == fs::path(spec.dir).parent_path());
  CHECK_FALSE(fs::exists(b.last_tmp));
  CHECK(StampValue(r->stamp, "resolved") == "42");
  CHECK(EntryProblem(spec).empty());
  auto stamp = ReadStamp(spec.dir);
  REQUIRE(stamp.ok());
  CHECK(*stamp == "kind=test\nversion=1\nresolved=42\nend\n");
  CHECK(runner.commands().empty());
}

TEST_CASE("cache: a complete entry is reused without building or commands") {
  TempDir t;
  util::FakeProcessRunner runner;
  Builder b;
  auto spec = Spec(t.path);
  REQUIRE(EnsureEntry(spec, runner, std::ref(b)).ok());
  auto again = EnsureEntry(spec, runner, std::ref(b));
  REQUIRE(again.ok());
  CHECK_FALSE(again->built);
  CHECK(b.calls == 1);
  CHECK(StampValue(again->stamp, "resolved") == "42");
  CHECK(runner.commands().empty());
}

TEST_CASE("cache: corrupt or partial entries are detected and rebuilt") {
  TempDir t;
  util::FakeProcessRunner runner;
  Builder b;
  auto spec = Spec(t.path);
  REQUIRE(EnsureEntry(spec, runner, std::ref(b)).ok());
  std::string stale = spec.dir + "/stale-from-before";
  Touch(stale);

  std::string expected;
  SECTION("no stamp: an interrupted build") {
    fs::remove(spec.dir + "/" + kStampName);
    expected = "no stamp";
  }
  SECTION("key file missing") {
    fs::remove(spec.dir + "/data/file");
    expected = "key file data/file is missing";
  }
  SECTION("stamp truncated") {
    Touch(spec.dir + "/" + kStampName, "kind=test\nversion=1\nresol");
    expected = "stamp is truncated";
  }
  SECTION("stamp from another recipe") {
    Touch(spec.dir + "/" + kStampName, "kind=test\nversion=0\nend\n");
    expected = "different recipe";
  }
  SECTION("recipe that only starts the same") {
    Touch(spec.dir + "/" + kStampName, "kind=test\nversion=10\nend\n");
    expected = "different recipe";
  }
  CHECK(EntryProblem(spec).find(expected) != std::string::npos);
  auto r = EnsureEntry(spec, runner, std::ref(b));
  REQUIRE(r.ok());
  CHECK(r->built);
  CHECK(r->rebuilt_because.find(expected) != std::string::npos);
  CHECK(b.calls == 2);
  CHECK_FALSE(fs::exists(stale));  // nothing of the old entry is trusted
  CHECK(EntryProblem(spec).empty());
}

TEST_CASE("cache: a failed build leaves no entry and no temp dir") {
  TempDir t;
  util::FakeProcessRunner runner;
  auto spec = Spec(t.path);
  std::string tmp_seen;
  auto r = EnsureEntry(spec, runner, [&](const std::string& tmp) -> util::Result<std::string> {
    tmp_seen = tmp;
    Touch(tmp + "/bin/tool");
    return util::MakeError("download failed");
  });
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "download failed");
  CHECK_FALSE(fs::exists(spec.dir));
  CHECK_FALSE(fs::exists(tmp_seen));

  // A build that "succeeds" without its key files is not accepted either.
  auto r2 = EnsureEntry(spec, runner, [&](const std::string& tmp) -> util::Result<std::string> {
    Touch(tmp + "/bin/tool");
    return std::string();
  });
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().message.find("did not produce data/file") != std::string::npos);
  CHECK_FALSE(fs::exists(spec.dir));
}

TEST_CASE("cache: temp dirs left by dead runs are cleared before building") {
  TempDir t;
  util::FakeProcessRunner runner;
  Builder b;
  auto spec = Spec(t.path);
  std::string ours = t.path + "/entries/.thing.tmp." + std::to_string(::getpid());
  std::string dead = t.path + "/entries/.thing.tmp.999999999";
  std::string other = t.path + "/entries/.other.tmp.999999999";
  Touch(ours + "/junk");
  Touch(dead + "/junk");
  Touch(other + "/junk");
  REQUIRE(EnsureEntry(spec, runner, std::ref(b)).ok());
  CHECK_FALSE(fs::exists(spec.dir + "/junk"));
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(other));  // another entry's business
}

TEST_CASE("cache: concurrent ensures build once") {
  TempDir t;
  util::FakeProcessRunner runner_a, runner_b;
  auto spec = Spec(t.path);
  std::atomic<int> calls{0};
  auto slow = [&](const std::string& tmp) -> util::Result<std::string> {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Touch(tmp + "/bin/tool");
    Touch(tmp + "/data/file");
    return std::string();
  };
  util::Result<EnsureResult> ra = util::MakeError("not run"), rb = util::MakeError("not run");
  std::thread a([&] { ra = EnsureEntry(spec, runner_a, slow); });
  std::thread b([&] { rb = EnsureEntry(spec, runner_b, slow); });
  a.join();
  b.join();
  REQUIRE(ra.ok());
  REQUIRE(rb.ok());
  CHECK(calls == 1);
  CHECK(ra->built != rb->built);
}

TEST_CASE("cache: RemoveTree deletes a tree with nothing mounted without commands") {
  TempDir t;
  util::FakeProcessRunner runner;
  Touch(t.path + "/root/a/b/c");
  REQUIRE(RemoveTree(t.path + "/root", runner).ok());
  CHECK_FALSE(fs::exists(t.path + "/root"));
  CHECK(runner.commands().empty());
  CHECK(MountsBelow(t.path).empty());
  CHECK_FALSE(MountsBelow("/").empty());
}

TEST_CASE("cache: StampValue") {
  CHECK(StampValue("a=1\nkver=6.1\nend\n", "kver") == "6.1");
  CHECK(StampValue("a=1\n", "kver").empty());
  CHECK(StampValue("xkver=1\n", "kver").empty());
}
