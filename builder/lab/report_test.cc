#include "lab/report.h"

#include <sstream>

#include <catch2/catch.hpp>

namespace {

lab::MatrixReport Sample() {
  lab::MatrixReport m;
  lab::RowReport good;
  good.row = "debian-12";
  good.kernel = "6.1.0-56-amd64";
  good.package_version = "6.1.192-1";
  good.method = "kbuild";
  good.accel = "tcg";
  good.provision_s = 0.4;
  good.build_s = 3.21;
  good.boot_s = 2.5;
  good.tests_s = 1.25;
  good.ok = true;
  good.results = {{"toa", "ipv4_client", true, "203.0.113.7"}, {"lab", "boot", true, "LAB-END rc=0"}};
  lab::RowReport bad;
  bad.row = "debian-sid";
  bad.kernel = "7.2.13+deb14-amd64";
  bad.method = "kbuild";
  bad.ok = false;
  bad.error = "kernel log has 1 fault line(s)";
  bad.results = {{"toa", "ipv6_client", false, "peer <198.51.100.2> & \"x\"\nsecond line"},
                 {"lab", "kernel_log", false, "BUG: kernel NULL pointer dereference"}};
  bad.kernel_faults = {"BUG: kernel NULL pointer dereference"};
  m.rows = {good, bad};
  m.seconds = 12.3;
  return m;
}

}  // namespace

TEST_CASE("report json: results and rows with the contract's keys") {
  auto j = lab::ToJson(Sample());
  REQUIRE(j.is_object());
  REQUIRE(j["results"].is_array());
  REQUIRE(j["rows"].is_array());
  REQUIRE(j["results"].size() == 4);
  for (const auto& r : j["results"]) {
    for (const char* key : {"row", "kernel", "module", "case", "result", "detail"}) {
      INFO(key);
      CHECK(r.contains(key));
    }
    CHECK((r["result"] == "pass" || r["result"] == "fail"));
  }
  CHECK(j["results"][0]["row"] == "debian-12");
  CHECK(j["results"][0]["kernel"] == "6.1.0-56-amd64");
  CHECK(j["results"][0]["result"] == "pass");
  CHECK(j["results"][2]["result"] == "fail");
  REQUIRE(j["rows"].size() == 2);
  for (const auto& r : j["rows"]) {
    for (const char* key : {"row", "kernel", "provision_s", "build_s", "boot_s", "ok"}) {
      INFO(key);
      CHECK(r.contains(key));
    }
  }
  CHECK(j["rows"][0]["ok"] == true);
  CHECK(j["rows"][0]["build_s"] == Approx(3.21));
  CHECK(j["rows"][0]["package_version"] == "6.1.192-1");
  CHECK(j["rows"][1]["ok"] == false);
  CHECK(j["rows"][1]["error"] == "kernel log has 1 fault line(s)");
  CHECK(j["ok"] == false);
}

TEST_CASE("report junit: one suite per row, failures escaped") {
  std::string x = lab::ToJunit(Sample());
  CHECK(x.rfind("<?xml version=\"1.0\"", 0) == 0);
  CHECK(x.find("<testsuites name=\"toa-build matrix\" tests=\"4\" failures=\"2\"") != std::string::npos);
  CHECK(x.find("<testsuite name=\"debian-12\" tests=\"2\" failures=\"0\"") != std::string::npos);
  CHECK(x.find("<testsuite name=\"debian-sid\" tests=\"2\" failures=\"2\"") != std::string::npos);
  CHECK(x.find("<testcase classname=\"debian-12.toa\" name=\"ipv4_client\" time=\"0\"/>") !=
        std::string::npos);
  CHECK(x.find("<property name=\"kernel\" value=\"6.1.0-56-amd64\"/>") != std::string::npos);
  // Message is the first line; the body keeps everything, escaped.
  CHECK(x.find("<failure message=\"peer &lt;198.51.100.2&gt; &amp; &quot;x&quot;\">") !=
        std::string::npos);
  CHECK(x.find("second line</failure>") != std::string::npos);
  CHECK(x.find("<198.51") == std::string::npos);
  // Balanced: as many suites closed as opened.
  size_t opened = 0, closed = 0;
  for (size_t p = x.find("<testsuite "); p != std::string::npos; p = x.find("<testsuite ", p + 1)) ++opened;
  for (size_t p = x.find("</testsuite>"); p != std::string::npos; p = x.find("</testsuite>", p + 1)) ++closed;
  CHECK(opened == 2);
  CHECK(closed == 2);
  CHECK(lab::XmlEscape(std::string("a\x01z")) == "a?z");
}

TEST_CASE("report summary: a line per row with the breakdown, then why rows failed") {
  std::string s = lab::SummaryTable(Sample());
  CHECK(s.find("row") == 0);
  CHECK(s.find("provision") != std::string::npos);
  CHECK(s.find("debian-12 ") != std::string::npos);
  CHECK(s.find("3.2s") != std::string::npos);
  CHECK(s.find("PASS") != std::string::npos);
  CHECK(s.find("FAIL") != std::string::npos);
  CHECK(s.find("1/2 row(s) passed") != std::string::npos);
  CHECK(s.find("debian-sid failed: kernel log has 1 fault line(s)") != std::string::npos);
  CHECK(s.find("  toa/ipv6_client: peer <198.51.100.2>") != std::string::npos);
  CHECK(s.find("  kernel: BUG: kernel NULL pointer") != std::string::npos);
}

TEST_CASE("progress: plain lines off a terminal, in-place redraws on one") {
  std::ostringstream plain;
  lab::ProgressDisplay p(plain, false, {"a", "b"});
  p.Phase("a", "building (kbuild)");
  p.Activity("a", "CC toa.o");  // not shown off a terminal
  p.Done("a", true, "3.0s");
  CHECK(plain.str() == "[a] building (kbuild)\n[a] PASS 3.0s\n");

  std::ostringstream tty;
  lab::ProgressDisplay t(tty, true, {"a", "b"});
  t.Phase("a", "booting (tcg)");
  t.Phase("b", "provisioning");
  CHECK(tty.str().find("\x1b[2A") != std::string::npos);  // moved up over the two rows
  CHECK(tty.str().find("booting (tcg)") != std::string::npos);
}

TEST_CASE("report: an empty matrix is not a pass") {
  lab::MatrixReport m;
  CHECK_FALSE(m.ok());
}

TEST_CASE("report case listing: every module case with its first detail line, lab checks left out") {
  std::string s = lab::CaseListing(Sample());
  CHECK(s.find("debian-12  pass  toa/ipv4_client: 203.0.113.7\n") != std::string::npos);
  CHECK(s.find("debian-sid  FAIL  toa/ipv6_client: peer <198.51.100.2> & \"x\"\n") !=
        std::string::npos);
  CHECK(s.find("second line") == std::string::npos);
  CHECK(s.find("lab/") == std::string::npos);
}
