#include "lab/console.h"

#include <catch2/catch.hpp>

namespace {

const char* kBiosNoise =
    "\x1b" "c\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n"
    "Booting from ROM...\r\n"
    "Probing EDD (edd=off to disable)... o\x1b" "c\x1b[?7l\x1b[2J";

std::string Dmesg(const std::string& body) {
  return "LAB-DMESG-BEGIN\n"
         "[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)\n"
         "[    0.010000] Kernel command line: console=ttyS0 panic=-1 loglevel=4\n"
         "[    0.200000] DEBUG_PAGEALLOC and CONFIG_BUG_ON_DATA_CORRUPTION are fine words\n" +
         body + "LAB-DMESG-END\n";
}

std::string NormalRun() {
  return std::string(kBiosNoise) + "LAB-BEGIN\n" +
         "LBSIM-RESULT {\"module\":\"toa\",\"case\":\"ipv4_client\",\"result\":\"pass\","
         "\"detail\":\"getpeername 203.0.113.7:4000\"}\n"
         "LBSIM-RESULT {\"module\":\"uoa\",\"case\":\"ipv4_option\",\"result\":\"pass\","
         "\"detail\":\"\"}\n"
         "LBSIM-BENCH {\"name\":\"conn_rate\",\"value\":13331}\n"
         "LBSIM-DONE passed=2 failed=0\n" +
         Dmesg("[    1.5] tun: Universal TUN/TAP device driver, 1.6\n") + "LAB-END rc=0\n" +
         "[    1.9] reboot: Power down\n";
}

}  // namespace

TEST_CASE("console: a normal run passes with every case and bench parsed") {
  auto r = lab::ParseConsole(NormalRun(), false);
  INFO(r.failures.size());
  CHECK(r.ok());
  CHECK(r.saw_begin);
  CHECK(r.saw_end);
  CHECK(r.rc == 0);
  REQUIRE(r.cases.size() == 2);
  CHECK(r.cases[0].module == "toa");
  CHECK(r.cases[0].name == "ipv4_client");
  CHECK(r.cases[0].passed);
  CHECK(r.cases[0].detail == "getpeername 203.0.113.7:4000");
  CHECK(r.cases[1].module == "uoa");
  REQUIRE(r.benches.size() == 1);
  CHECK(r.benches[0]["value"] == 13331);
  CHECK(r.kernel_faults.empty());
  auto lab_cases = lab::LabCases(r);
  REQUIRE(lab_cases.size() == 3);
  for (const auto& c : lab_cases) CHECK(c.passed);
}

TEST_CASE("console: a failed case fails the row and keeps its detail") {
  std::string text = "LAB-BEGIN\n"
                     "LBSIM-RESULT {\"module\":\"toa\",\"case\":\"ipv6_client\",\"result\":\"fail\","
                     "\"detail\":\"peer was 198.51.100.2\"}\n"
                     "LBSIM-DONE passed=0 failed=1\n" +
                     Dmesg("") + "LAB-END rc=1\n";
  auto r = lab::ParseConsole(text, false);
  CHECK_FALSE(r.ok());
  REQUIRE(r.cases.size() == 1);
  CHECK_FALSE(r.cases[0].passed);
  CHECK(r.cases[0].detail == "peer was 198.51.100.2");
  bool mentions_failed_case = false;
  for (const auto& f : r.failures)
    if (f.find("1 of 1 case(s) failed") != std::string::npos) mentions_failed_case = true;
  CHECK(mentions_failed_case);
}

TEST_CASE("console: truncated output (no LAB-END) fails with a clear detail") {
  std::string text = NormalRun();
  text = text.substr(0, text.find("LBSIM-DONE"));
  auto r = lab::ParseConsole(text, false);
  CHECK_FALSE(r.ok());
  CHECK_FALSE(r.saw_end);
  REQUIRE_FALSE(r.failures.empty());
  CHECK(r.failures[0].find("truncated") != std::string::npos);
  CHECK(r.failures[0].find("tests had started") != std::string::npos);
  auto lab_cases = lab::LabCases(r);
  REQUIRE(lab_cases.size() >= 1);
  CHECK(lab_cases[0].name == "boot");
  CHECK_FALSE(lab_cases[0].passed);
  // The two cases that did report are still there.
  CHECK(r.cases.size() == 2);
}

TEST_CASE("console: deadline hit before /init says so") {
  auto r = lab::ParseConsole(std::string(kBiosNoise), true);
  CHECK_FALSE(r.ok());
  REQUIRE_FALSE(r.failures.empty());
  CHECK(r.failures[0].find("deadline hit") != std::string::npos);
  CHECK(r.failures[0].find("never got to run the tests") != std::string::npos);
}

TEST_CASE("console: LAB-END printed before the deadline killed poweroff is still a pass") {
  auto r = lab::ParseConsole(NormalRun(), true);
  CHECK(r.ok());
}

TEST_CASE("console: an oops in the kernel log fails the row and lists the lines once") {
  std::string oops =
      "[    2.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
      "[    2.1] Oops: 0000 [#1] PREEMPT SMP NOPTI\n"
      "[    2.2] general protection fault, probably for non-canonical address\n";
  std::string text = NormalRun();
  // The same BUG line also reached the console before the dmesg dump.
  text.insert(text.find("LBSIM-DONE"),
              "[    2.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n");
  text.insert(text.find("LAB-DMESG-END"), oops);
  auto r = lab::ParseConsole(text, false);
  CHECK_FALSE(r.ok());
  REQUIRE(r.kernel_faults.size() == 3);
  CHECK(r.kernel_faults[0].find("BUG: kernel NULL pointer") != std::string::npos);
  auto lab_cases = lab::LabCases(r);
  REQUIRE(lab_cases.size() == 3);
  CHECK(lab_cases[1].name == "kernel_log");
  CHECK_FALSE(lab_cases[1].passed);
  CHECK(lab_cases[1].detail.find("Oops: 0000") != std::string::npos);
}

TEST_CASE("console: each fault pattern is recognised, and lookalikes are not") {
  for (const char* line :
       {"WARNING: CPU: 0 PID: 1 at net/core/sock.c:123 sk_destruct+0x10/0x20",
        "kernel BUG at mm/slub.c:42!", "Oops: 0002 [#1] SMP", "general protection fault: 0000",
        "BUG: KASAN: use-after-free in toa_lookup", "UBSAN: shift-out-of-bounds in x.c:3",
        "refcount_t: underflow; use-after-free.", "list_add corruption. prev->next should be"}) {
    INFO(line);
    CHECK(lab::IsKernelFault(line));
  }
  for (const char* line : {"CONFIG_DEBUG_BUGVERBOSE=y", "tun: Universal TUN/TAP device driver",
                           "WARNINGS=0 in a name", "Oopsie_daisy"}) {
    INFO(line);
    CHECK_FALSE(lab::IsKernelFault(line));
  }
}

TEST_CASE("console: zero cases run is a failure") {
  std::string text = "LAB-BEGIN\nLBSIM-DONE passed=0 failed=0\n" + Dmesg("") + "LAB-END rc=0\n";
  auto r = lab::ParseConsole(text, false);
  CHECK_FALSE(r.ok());
  bool zero = false;
  for (const auto& f : r.failures)
    if (f == "zero test cases ran") zero = true;
  CHECK(zero);
  auto lab_cases = lab::LabCases(r);
  REQUIRE(lab_cases.size() == 3);
  CHECK(lab_cases[2].name == "cases");
  CHECK_FALSE(lab_cases[2].passed);
}

TEST_CASE("console: lost result lines and a non-zero rc are caught") {
  std::string text = "LAB-BEGIN\n"
                     "LBSIM-RESULT {\"module\":\"toa\",\"case\":\"a\",\"result\":\"pass\"}\n"
                     "LBSIM-DONE passed=2 failed=0\n" +
                     Dmesg("") + "LAB-END rc=0\n";
  auto r = lab::ParseConsole(text, false);
  CHECK_FALSE(r.ok());
  text = "LAB-BEGIN\nLBSIM-RESULT {\"module\":\"toa\",\"case\":\"a\",\"result\":\"pass\"}\n"
         "LBSIM-DONE passed=1 failed=0\n" + Dmesg("") + "LAB-END rc=139\n";
  r = lab::ParseConsole(text, false);
  CHECK_FALSE(r.ok());
  CHECK(r.rc == 139);
}

TEST_CASE("console: a malformed result line is a failed case, not a crash") {
  std::string text = "LAB-BEGIN\nLBSIM-RESULT {\"module\":\"toa\",\"case\":\n"
                     "LBSIM-DONE passed=0 failed=1\n" + Dmesg("") + "LAB-END rc=1\n";
  auto r = lab::ParseConsole(text, false);
  CHECK_FALSE(r.ok());
  REQUIRE(r.cases.size() == 1);
  CHECK_FALSE(r.cases[0].passed);
  CHECK(r.cases[0].detail.find("malformed") != std::string::npos);
}

TEST_CASE("console: bench mode turns LBSIM-BENCH lines into results") {
  std::string text =
      "LAB-BEGIN\n"
      "LBSIM-BENCH {\"module\":\"toa\",\"bench\":\"loopback_connect_rate\",\"loaded\":13331}\n"
      "LBSIM-BENCH {\"module\":\"uoa\",\"bench\":\"udp_rate\",\"error\":\"no TUN\"}\n" +
      Dmesg("") + "LAB-END rc=1\n";
  auto r = lab::ParseConsole(text, false, lab::GuestMode::kBench);
  REQUIRE(r.benches.size() == 2);
  REQUIRE(r.cases.size() == 2);
  CHECK(r.cases[0].name == "bench:loopback_connect_rate");
  CHECK(r.cases[0].passed);
  CHECK_FALSE(r.cases[1].passed);
  CHECK(r.cases[1].detail.find("no TUN") != std::string::npos);
  CHECK_FALSE(r.ok());

  std::string good = "LAB-BEGIN\nLBSIM-BENCH {\"module\":\"toa\",\"bench\":\"x\",\"v\":1}\n" +
                     Dmesg("") + "LAB-END rc=0\n";
  CHECK(lab::ParseConsole(good, false, lab::GuestMode::kBench).ok());
  // The same text as a case run lacks LBSIM-DONE and cases.
  CHECK_FALSE(lab::ParseConsole(good, false).ok());
  std::string none = "LAB-BEGIN\n" + Dmesg("") + "LAB-END rc=0\n";
  CHECK_FALSE(lab::ParseConsole(none, false, lab::GuestMode::kBench).ok());
}
