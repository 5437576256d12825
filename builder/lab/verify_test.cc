#include "lab/verify.h"

#include <catch2/catch.hpp>

#include "util/fs.h"
#include "util/testing.h"

namespace lab {
namespace {

TEST_CASE("DefaultJobs runs every row at once when memory allows") {
  CHECK(DefaultJobs(5, 20000, 1024) == 5);
  CHECK(DefaultJobs(7, 20000, 1024) == 7);
}

TEST_CASE("DefaultJobs is bounded by memory, guest plus QEMU's own") {
  CHECK(DefaultJobs(5, 2560, 1024) == 2);  // 2560 / (1024 + 256)
  CHECK(DefaultJobs(5, 1000, 1024) == 1);  // never below one
  CHECK(DefaultJobs(5, -1, 1024) == 1);    // /proc/meminfo unreadable
  CHECK(DefaultJobs(1, 20000, 1024) == 1);
}

TEST_CASE("MemAvailableMb reads /proc/meminfo's MemAvailable in MiB") {
  util::testing::TempDir tmp;
  std::string dir = tmp.path;
  REQUIRE(util::WriteFileAtomic(dir + "/meminfo",
                                "MemTotal:       24576000 kB\n"
                                "HugePages_Total:       0\n"
                                "MemAvailable:   20480000 kB\n"));
  CHECK(MemAvailableMb(dir + "/meminfo") == 20000);
  REQUIRE(util::WriteFileAtomic(dir + "/none", "MemTotal: 1 kB\n"));
  CHECK(MemAvailableMb(dir + "/none") == -1);
  CHECK(MemAvailableMb(dir + "/missing") == -1);
}

}  // namespace
}  // namespace lab
