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
