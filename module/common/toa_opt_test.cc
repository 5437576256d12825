// Unit tests of the TOA option parser shared with the kernel module.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

extern "C" {
#include "common/toa_opt.h"
}

namespace {

using Bytes = std::vector<uint8_t>;

toa_kind_set Kinds(std::initializer_list<int> kinds) {
  toa_kind_set set;
  toa_kind_set_clear(&set);
  for (int k : kinds) toa_kind_set_add(&set, static_cast<uint8_t>(k));
  return set;
}

const Bytes kV4Opt = {254, 8, 0x1f, 0x90, 203, 0, 113, 7};  // port 8080
const Bytes kV6Opt = {254, 20, 0x00, 0x50, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x02, 0,
                      0,   0,  0,    0,    0,    0,    0,    0x2a};

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

int Parse(const Bytes& b, toa_opt* out, const toa_kind_set& kinds = Kinds({254})) {
  return toa_opt_parse(b.data(), static_cast<int>(b.size()), &kinds, out);
}

}  // namespace

TEST_CASE("toa_opt: IPv4 option alone", "[toa_opt]") {
  toa_opt opt;
  REQUIRE(Parse(kV4Opt, &opt) == TOA_OPT_FOUND);
  CHECK(opt.family == 4);
  CHECK(opt.kind == 254);
  const uint8_t* port = reinterpret_cast<const uint8_t*>(&opt.port_be);
  CHECK(port[0] == 0x1f);
  CHECK(port[1] == 0x90);
  CHECK(Bytes(opt.addr, opt.addr + 4) == Bytes{203, 0, 113, 7});
  CHECK(opt.malformed == 0);
  CHECK(opt.seen == 1);
}

TEST_CASE("toa_opt: IPv6 option alone", "[toa_opt]") {
  toa_opt opt;
  REQUIRE(Parse(kV6Opt, &opt) == TOA_OPT_FOUND);
  CHECK(opt.family == 6);
  CHECK(Bytes(opt.addr, opt.addr + 16) == Bytes(kV6Opt.begin() + 4, kV6Opt.end()));
}

TEST_CASE("toa_opt: after NOPs, MSS, SACK-permitted and timestamps", "[toa_opt]") {
  const Bytes mss = {2, 4, 0x05, 0xb4};
  const Bytes sack_perm = {4, 2};
  const Bytes ts = {8, 10, 1, 2, 3, 4, 5, 6, 7, 8};
  toa_opt opt;
  REQUIRE(Parse(Cat({mss, {1, 1}, sack_perm, ts, kV4Opt}), &opt) == TOA_OPT_FOUND);
  CHECK(opt.family == 4);
  CHECK(opt.addr[3] == 7);
}

TEST_CASE("toa_opt: no option, other options only", "[toa_opt]") {
  toa_opt opt;
  CHECK(Parse(Bytes{1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8}, &opt) == TOA_OPT_NONE);
  CHECK(opt.seen == 0);
  CHECK(opt.malformed == 0);
  CHECK(Parse(Bytes{}, &opt) == TOA_OPT_NONE);
  CHECK(toa_opt_parse(nullptr, 10, nullptr, &opt) == TOA_OPT_NONE);
}

TEST_CASE("toa_opt: end-of-list stops the walk", "[toa_opt]") {
  toa_opt opt;
  CHECK(Parse(Cat({{0, 1, 1, 1}, kV4Opt}), &opt) == TOA_OPT_NONE);
}

TEST_CASE("toa_opt: unknown kind ignored, accepted kinds from the set", "[toa_opt]") {
  Bytes kind200 = kV4Opt;
  kind200[0] = 200;
  toa_opt opt;
  CHECK(Parse(kind200, &opt) == TOA_OPT_NONE);
  CHECK(opt.seen == 0);
  REQUIRE(Parse(kind200, &opt, Kinds({254, 200})) == TOA_OPT_FOUND);
  CHECK(opt.kind == 200);
  // An unknown kind before the real one is skipped by its length.
  CHECK(Parse(Cat({{77, 4, 0xaa, 0xbb}, kV4Opt}), &opt) == TOA_OPT_FOUND);
  CHECK(Parse(kV4Opt, &opt, Kinds({253})) == TOA_OPT_NONE);
}

TEST_CASE("toa_opt: malformed lengths are ignored and counted", "[toa_opt]") {
  toa_opt opt;
  SECTION("length 0 and 1 stop the walk") {
    for (uint8_t len : {0, 1}) {
      CHECK(Parse(Cat({{254, len}, {1, 1}, kV4Opt}), &opt) == TOA_OPT_NONE);
      CHECK(opt.malformed == 1);
    }
  }
  SECTION("length 7 and 19 end the walk: a later good option does not count") {
    Bytes seven = {254, 7, 0, 80, 1, 2, 3};
    CHECK(Parse(seven, &opt) == TOA_OPT_NONE);
    CHECK(opt.malformed == 1);
    Bytes nineteen = {254, 19};
    nineteen.resize(19, 0xee);
    CHECK(Parse(nineteen, &opt) == TOA_OPT_NONE);
    CHECK(opt.malformed == 1);
    // A client's own option behind a broken one never counts.
    CHECK(Parse(Cat({seven, kV4Opt}), &opt) == TOA_OPT_NONE);
    CHECK(opt.malformed == 1);
    CHECK(opt.seen == 1);
  }
  SECTION("running past the option area") {
    Bytes cut(kV6Opt.begin(), kV6Opt.begin() + 12);
    CHECK(Parse(cut, &opt) == TOA_OPT_NONE);
    CHECK(opt.malformed == 1);
  }
  SECTION("kind byte without its length byte") {
    CHECK(Parse(Bytes{1, 1, 1, 254}, &opt) == TOA_OPT_NONE);
    CHECK(opt.malformed == 1);
  }
  SECTION("a broken unknown option stops the walk without counting") {
    CHECK(Parse(Cat({{99, 0}, kV4Opt}), &opt) == TOA_OPT_NONE);
    CHECK(opt.malformed == 0);
  }
}

TEST_CASE("toa_opt: every prefix of a valid area is handled", "[toa_opt]") {
  // Each prefix is copied into an exactly sized buffer, so a read past
  // len would be caught by ASan in the sanitizer build (and the fuzzer).
  Bytes buf = Cat({{1, 1, 1}, kV4Opt});
  toa_opt opt;
  for (size_t len = 0; len < buf.size(); ++len) {
    Bytes prefix(buf.begin(), buf.begin() + len);
    CHECK(Parse(prefix, &opt) == TOA_OPT_NONE);
  }
  CHECK(Parse(buf, &opt) == TOA_OPT_FOUND);
}

TEST_CASE("toa_opt: only the first 40 bytes are options", "[toa_opt]") {
  Bytes buf(36, 1);  // NOPs
  buf.insert(buf.end(), kV4Opt.begin(), kV4Opt.end());
  toa_opt opt;
  CHECK(Parse(buf, &opt) == TOA_OPT_NONE);
  Bytes fits(32, 1);
  fits.insert(fits.end(), kV4Opt.begin(), kV4Opt.end());
  CHECK(Parse(fits, &opt) == TOA_OPT_FOUND);
}

TEST_CASE("toa_opt: of two options only the first counts", "[toa_opt]") {
  // The balancer's option comes first (it inserts it straight after the
  // fixed header); the second is one the client sent itself.
  const Bytes spoof = {254, 8, 0x00, 0x19, 192, 0, 2, 66};
  toa_opt opt;
  REQUIRE(Parse(Cat({kV4Opt, spoof}), &opt) == TOA_OPT_FOUND);
  CHECK(Bytes(opt.addr, opt.addr + 4) == Bytes{203, 0, 113, 7});
  REQUIRE(Parse(Cat({{1, 1}, kV6Opt, spoof}), &opt) == TOA_OPT_FOUND);
  CHECK(opt.family == 6);
  CHECK(opt.seen == 1);
  // An accepted kind of another value counts as the first too.
  REQUIRE(Parse(Cat({{200, 8, 0, 1, 10, 0, 0, 1}, kV4Opt}), &opt, Kinds({254, 200})) ==
          TOA_OPT_FOUND);
  CHECK(opt.kind == 200);
}
