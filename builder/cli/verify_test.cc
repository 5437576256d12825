#include <algorithm>
#include <sstream>

#include <catch2/catch.hpp>

#include "cli/command.h"

namespace {

int Run(std::vector<std::string> args, std::string* out, std::string* err,
        util::ProcessRunner& runner) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::ostringstream o, e;
  int rc = cli::RunApplication(static_cast<int>(argv.size()), argv.data(), runner, o, e);
  *out = o.str();
  *err = e.str();
  return rc;
}

}  // namespace

TEST_CASE("verify/matrix CLI: an unknown row is a one-line error listing the rows") {
  util::FakeProcessRunner runner;  // no rules: nothing may run
  std::string out, err;
  CHECK(Run({"toa-build", "verify", "--kernel", "debian-99"}, &out, &err, runner) != 0);
  CHECK(err.find("debian-99") != std::string::npos);
  CHECK(err.find("debian-12") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(Run({"toa-build", "matrix", "--rows", "debian-12,nope"}, &out, &err, runner) != 0);
  CHECK(err.find("nope") != std::string::npos);
  CHECK(runner.commands().empty());
}

TEST_CASE("verify/matrix CLI: bad options fail before anything runs") {
  util::FakeProcessRunner runner;
  std::string out, err;
  CHECK(Run({"toa-build", "verify", "--kernel"}, &out, &err, runner) != 0);  // --kernel needs a row
  CHECK(Run({"toa-build", "verify", "--kernel", "debian-12", "--method", "make"}, &out, &err,
            runner) != 0);
  CHECK(Run({"toa-build", "matrix", "--jobs", "0"}, &out, &err, runner) != 0);
  CHECK(Run({"toa-build", "verify", "--kernel", "debian-12", "--config", "/nonexistent.yaml"},
            &out, &err, runner) != 0);
  CHECK(err.find("/nonexistent.yaml") != std::string::npos);
  CHECK(Run({"toa-build", "verify", "--kernel", "debian-12", "--lbsim", "/nonexistent/lbsim"},
            &out, &err, runner) != 0);
  CHECK(err.find("lbsim") != std::string::npos);
  CHECK(runner.commands().empty());
}

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "cli/lab_common.h"
#include "util/fs.h"
#include "util/testing.h"

namespace {

// An executable stand-in for lbsim (only listed, never run: the fake runner
// answers for it).
std::string FakeLbsim(const util::testing::TempDir& tmp) {
  std::string path = tmp / "lbsim";
  util::testing::Touch(path, "#!/bin/false\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

void ListCases(util::FakeProcessRunner& runner, const std::string& lbsim) {
  runner.On({lbsim, "run", "--list"}, 0, "toa ipv4_client\nuoa ipv4_option\n");
  runner.On({lbsim, "run", "--list", "--module", "all", "--ipv6-disabled"}, 0,
            "toa ipv6_disabled_ipv4_client\nuoa ipv6_disabled_ipv4_client\n");
  runner.On({lbsim, "bench", "--list"}, 0, "toa loopback_connect_rate\n");
}

}  // namespace

TEST_CASE("matrix CLI: --rows \"\" is a usage error like --rows , (not every row)") {
  util::FakeProcessRunner runner;
  std::string out, err;
  CHECK(Run({"toa-build", "matrix", "--rows", ""}, &out, &err, runner) == 2);
  CHECK(err.rfind("toa-build: --rows is empty", 0) == 0);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(Run({"toa-build", "matrix", "--rows", ","}, &out, &err, runner) == 2);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(runner.commands().empty());
}

TEST_CASE("verify/matrix CLI: an unknown --case is rejected before anything boots") {
  util::testing::TempDir tmp;
  std::string lbsim = FakeLbsim(tmp);
  util::FakeProcessRunner runner;
  ListCases(runner, lbsim);
  std::string out, err;
  CHECK(Run({"toa-build", "verify", "--kernel", "debian-12", "--lbsim", lbsim, "--case",
             "ipv4_client", "--case", "ipv4_clinet"},
            &out, &err, runner) == 2);
  CHECK(err.find("unknown --case `ipv4_clinet`") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  CHECK(Run({"toa-build", "matrix", "--lbsim", lbsim, "--case", ""}, &out, &err, runner) == 2);
  CHECK(err.find("unknown --case ``") != std::string::npos);
  CHECK(Run({"toa-build", "matrix", "--lbsim", lbsim, "--bench", "--case", "ipv4_client"}, &out,
            &err, runner) == 2);  // a case, not a benchmark
  // Only lbsim's own listings ran: no provisioning, no QEMU.
  for (const auto& c : runner.commands()) {
    REQUIRE(c.size() >= 3);
    CHECK(c[0] == lbsim);
    CHECK(c[2] == "--list");
  }
}

TEST_CASE("SelectCases splits --case names between the main and the ipv6.disable=1 boot") {
  util::testing::TempDir tmp;
  std::string lbsim = FakeLbsim(tmp);
  util::FakeProcessRunner runner;
  ListCases(runner, lbsim);
  cli::LabFlags flags;
  lab::LabOptions o;
  o.lbsim = lbsim;
  REQUIRE(cli::SelectCases(flags, runner, &o));  // no --case: both boots, whole tables
  CHECK(o.main_boot);
  CHECK(o.ipv6_disabled_boot);
  CHECK(runner.commands().empty());
  flags.cases = {"ipv6_disabled_ipv4_client"};
  REQUIRE(cli::SelectCases(flags, runner, &o));
  CHECK_FALSE(o.main_boot);
  CHECK(o.ipv6_disabled_boot);
  CHECK(o.ipv6_disabled_cases == std::vector<std::string>{"ipv6_disabled_ipv4_client"});
  flags.cases = {"ipv4_client"};
  REQUIRE(cli::SelectCases(flags, runner, &o));
  CHECK(o.main_boot);
  CHECK_FALSE(o.ipv6_disabled_boot);
  CHECK(o.cases == std::vector<std::string>{"ipv4_client"});
}

TEST_CASE("verify/matrix CLI: an unwritable --junit is found before the run") {
  util::testing::TempDir tmp;
  std::string lbsim = FakeLbsim(tmp);
  util::FakeProcessRunner runner;
  std::string out, err;
  // A directory, and a path no one can create (root included).
  for (const std::string& junit : {tmp.path, std::string("/proc/version/report.xml")}) {
    CHECK(Run({"toa-build", "verify", "--kernel", "debian-12", "--lbsim", lbsim, "--junit", junit},
              &out, &err, runner) == 2);
    CHECK(err.find("--junit") != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
  CHECK(runner.commands().empty());
  CHECK(cli::ProbeWritable(tmp / "sub/report.xml"));  // folders are made, as the write makes them
  CHECK_FALSE(std::filesystem::exists(tmp / ("sub/report.xml.probe." + std::to_string(::getpid()))));
}

TEST_CASE("lab reports: a report that cannot be written makes the run fail") {
  lab::MatrixReport report;
  lab::RowReport row;
  row.row = "debian-12";
  row.ok = true;
  report.rows.push_back(row);
  cli::LabFlags flags;
  std::ostringstream out, err;
  cli::Context ctx{nullptr, &out, &err};
  CHECK(cli::PrintReports(ctx, flags, report) == 0);
  flags.junit = "/proc/version/report.xml";  // became unwritable during the run
  CHECK(cli::PrintReports(ctx, flags, report) == 1);
  CHECK(err.str().find("cannot write the JUnit report") != std::string::npos);
  flags.junit.clear();
  std::ostringstream broken;
  broken.setstate(std::ios::badbit);  // stdout to a full disk or a closed pipe
  cli::Context ctx2{nullptr, &broken, &err};
  CHECK(cli::PrintReports(ctx2, flags, report) == 1);
}
