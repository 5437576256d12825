// Unit tests of the trusted-sources CIDR filter shared with the kernel modules.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>

extern "C" {
#include "common/cidr.h"
}

namespace {

struct Addr {
  int family = 0;
  uint8_t bytes[16] = {};
};

// The system parser is the reference the shared parser is checked against.
Addr A(const char* text) {
  Addr a;
  if (inet_pton(AF_INET, text, a.bytes) == 1) {
    a.family = 4;
  } else if (inet_pton(AF_INET6, text, a.bytes) == 1) {
    a.family = 6;
  }
  REQUIRE(a.family != 0);
  return a;
}

bool Match(const tb_cidr_list& list, const char* text) {
  Addr a = A(text);
  return tb_cidr_list_match(&list, a.family, a.bytes) != 0;
}

tb_cidr_list Parse(const char* text) {
  tb_cidr_list list;
  int pos = -1;
  INFO(text);
  REQUIRE(tb_cidr_list_parse(text, &list, &pos) == TB_CIDR_OK);
  return list;
}

int ParseError(const char* text, int* pos) {
  tb_cidr_list list;
  return tb_cidr_list_parse(text, &list, pos);
}

}  // namespace

TEST_CASE("cidr: empty and blank strings give an empty list", "[cidr]") {
  CHECK(Parse("").count == 0);
  CHECK(Parse("  ").count == 0);
  tb_cidr_list list;
  int pos;
  CHECK(tb_cidr_list_parse(nullptr, &list, &pos) == TB_CIDR_OK);
  CHECK(list.count == 0);
  // An empty list matches nothing: "trust everyone" is the caller's rule.
  CHECK_FALSE(Match(list, "198.51.100.2"));
}

TEST_CASE("cidr: IPv4 prefixes", "[cidr]") {
  tb_cidr_list list = Parse("198.51.100.0/24, 10.0.0.0/8,192.0.2.7");
  REQUIRE(list.count == 3);
  CHECK(Match(list, "198.51.100.2"));
  CHECK(Match(list, "198.51.100.255"));
  CHECK_FALSE(Match(list, "198.51.101.2"));
  CHECK(Match(list, "10.200.1.1"));
  CHECK(Match(list, "192.0.2.7"));
  CHECK_FALSE(Match(list, "192.0.2.8"));
  CHECK_FALSE(Match(list, "2001:db8::1"));
}

TEST_CASE("cidr: host bits are cleared, odd prefixes", "[cidr]") {
  tb_cidr_list list = Parse("203.0.113.77/27");
  CHECK(list.entries[0].addr[3] == 64);
  CHECK(Match(list, "203.0.113.64"));
  CHECK(Match(list, "203.0.113.95"));
  CHECK_FALSE(Match(list, "203.0.113.96"));
  CHECK_FALSE(Match(list, "203.0.113.63"));
  CHECK(Match(Parse("0.0.0.0/0"), "8.8.8.8"));
  CHECK(Match(Parse("::/0"), "2001:db8::1"));
}

TEST_CASE("cidr: IPv6 forms agree with inet_pton", "[cidr]") {
  const char* forms[] = {"::",         "::1",          "2001:db8::",        "2001:db8:100::2",
                         "fe80::1:2",  "1:2:3:4:5:6:7:8", "1::8",            "::ffff:192.0.2.1",
                         "64:ff9b::198.51.100.9", "2001:DB8:0:0:0:0:0:1", "1:2:3:4:5:6::8"};
  for (const char* f : forms) {
    INFO(f);
    tb_cidr_list list = Parse(f);
    REQUIRE(list.count == 1);
    CHECK(list.entries[0].family == 6);
    CHECK(list.entries[0].prefix == 128);
    Addr want = A(f);
    CHECK(std::memcmp(list.entries[0].addr, want.bytes, 16) == 0);
  }
}

TEST_CASE("cidr: IPv6 prefixes", "[cidr]") {
  tb_cidr_list list = Parse("2001:db8:100::/64,2001:db8:200::/33");
  CHECK(Match(list, "2001:db8:100::2"));
  CHECK(Match(list, "2001:db8:100:0:ffff::1"));
  CHECK_FALSE(Match(list, "2001:db8:8101::2"));  // outside both
  CHECK(Match(list, "2001:db8:7fff::1"));  // /33 of 2001:db8:0000::
  CHECK_FALSE(Match(list, "2001:db8:8000::1"));
  CHECK_FALSE(Match(list, "198.51.100.2"));
}

// Issue 11 finding 1: an IPv6 packet from ::ffff:a.b.c.d must not be trusted
// by an IPv4 entry (the kernel delivers such UDPv6 datagrams since 5.12).
TEST_CASE("cidr: an IPv4 entry never matches an IPv6 (v4-mapped) address", "[cidr]") {
  tb_cidr_list list = Parse("198.51.100.0/24,10.0.0.0/8");
  CHECK(Match(list, "198.51.100.2"));
  CHECK(Match(list, "10.0.0.5"));
  CHECK_FALSE(Match(list, "::ffff:198.51.100.2"));
  CHECK_FALSE(Match(list, "::ffff:10.0.0.5"));
  CHECK_FALSE(Match(list, "::ffff:198.51.99.2"));
  CHECK_FALSE(Match(list, "::198.51.100.2"));
}

TEST_CASE("cidr: v4-mapped IPv6 sources match no entry, not even ::/0", "[cidr]") {
  tb_cidr_list list = Parse("::/0,::ffff:0:0/96,0.0.0.0/0");
  CHECK(Match(list, "2001:db8::1"));
  CHECK(Match(list, "10.0.0.5"));
  CHECK_FALSE(Match(list, "::ffff:10.0.0.5"));
  CHECK(Match(list, "::fffe:10.0.0.5"));  // only ::ffff:0:0/96 is v4-mapped
}

TEST_CASE("cidr: bad input says what and where", "[cidr]") {
  int pos = -1;
  CHECK(ParseError("1.2.3", &pos) == TB_CIDR_BAD_ADDRESS);
  CHECK(pos == 0);
  CHECK(ParseError("10.0.0.0/8,256.1.1.1", &pos) == TB_CIDR_BAD_ADDRESS);
  CHECK(pos == 11);
  CHECK(ParseError("10.0.0.0/33", &pos) == TB_CIDR_BAD_PREFIX);
  CHECK(ParseError("10.0.0.0/", &pos) == TB_CIDR_BAD_PREFIX);
  CHECK(ParseError("10.0.0.0/8x", &pos) == TB_CIDR_BAD_PREFIX);
  CHECK(ParseError("::/129", &pos) == TB_CIDR_BAD_PREFIX);
  CHECK(ParseError("10.0.0.0/8,,1.1.1.1", &pos) == TB_CIDR_EMPTY_ITEM);
  CHECK(ParseError("10.0.0.0/8,", &pos) == TB_CIDR_EMPTY_ITEM);
  CHECK(std::string(tb_cidr_strerror(TB_CIDR_BAD_PREFIX)).find("prefix") != std::string::npos);
  const char* bad[] = {"01.2.3.4", "1.2.3.4.5", "1..2.3", "a.b.c.d", ":::",  "1:::2",
                       "1::2::3",  "12345::",   "1:2:3:4:5:6:7:8:9", "1:2",  ":1::",
                       "1:",       "::1.2.3",   "1.2.3.4::",        "g::1", "1:2:3:4:5:6:7::8:9"};
  for (const char* b : bad) {
    INFO(b);
    CHECK(ParseError(b, &pos) == TB_CIDR_BAD_ADDRESS);
  }
}

TEST_CASE("cidr: at most TB_CIDR_MAX entries", "[cidr]") {
  std::string many;
  for (int i = 0; i < TB_CIDR_MAX; ++i) many += (i ? "," : "") + std::string("10.0.0.") + std::to_string(i);
  CHECK(Parse(many.c_str()).count == TB_CIDR_MAX);
  many += ",10.0.1.0";
  int pos;
  CHECK(ParseError(many.c_str(), &pos) == TB_CIDR_TOO_MANY);
}
