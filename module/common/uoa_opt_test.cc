// Unit tests of the UOA parsers shared with the kernel module, and of the
// application header's DPVS-compatible layout.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

extern "C" {
#include "common/uoa_opt.h"
}
#include "uoa/uoa.h"

namespace {

using Bytes = std::vector<uint8_t>;

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// 203.0.113.7 port 8080; [2001:db8:200::2a] port 80.
const Bytes kPortV4 = {0x1f, 0x90, 203, 0, 113, 7};
const Bytes kPortV6 = {0x00, 0x50, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x02, 0,
                       0,    0,    0,    0,    0,    0,    0, 0x2a};

const Bytes kIpOptV4 = Cat({{0x1f, 8}, kPortV4});
const Bytes kIpOptV6 = Cat({{0x1f, 20}, kPortV6});
const Bytes kDstOptV6 = Cat({{0x1f, 18}, kPortV6});
const Bytes kDstOptV4 = Cat({{0x1f, 6}, kPortV4});

Bytes PadN(size_t total) {
  Bytes p{1, uint8_t(total - 2)};
  p.insert(p.end(), total - 2, 0);
  return p;
}

// A destination-options header: next header, length, TLVs (already 8n-2 long).
Bytes DstHdr(uint8_t next, const Bytes& tlvs) {
  REQUIRE((tlvs.size() + 2) % 8 == 0);
  return Cat({{next, uint8_t((tlvs.size() + 2) / 8 - 1)}, tlvs});
}

Bytes Opp(uint8_t version, const Bytes& options, uint8_t next = 17) {
  size_t len = 4 + options.size();
  return Cat({{uint8_t(version << 4), next, uint8_t(len >> 8), uint8_t(len)}, options});
}

void RequireV4(const uoa_real& r) {
  REQUIRE(r.family == 4);
  REQUIRE(r.port_be == htons(8080));
  REQUIRE(memcmp(r.addr, kPortV4.data() + 2, 4) == 0);
  for (int i = 4; i < 16; i++) REQUIRE(r.addr[i] == 0);
}

void RequireV6(const uoa_real& r) {
  REQUIRE(r.family == 6);
  REQUIRE(r.port_be == htons(80));
  REQUIRE(memcmp(r.addr, kPortV6.data() + 2, 16) == 0);
}

int V4(const Bytes& b, uoa_real* r) {
  return uoa_parse_ipv4_options(b.data(), unsigned(b.size()), r);
}

int Dst(const Bytes& hdr, uoa_real* r) {
  return uoa_parse_ipv6_tlvs(hdr.data(), unsigned(hdr.size()), r);
}

}  // namespace

TEST_CASE("uoa.h struct uoa_param_map is DPVS's packed 58 bytes", "[uoa]") {
  STATIC_REQUIRE(sizeof(uoa_param_map) == 58);
  REQUIRE(offsetof(uoa_param_map, saddr) == 2);
  REQUIRE(offsetof(uoa_param_map, daddr) == 18);
  REQUIRE(offsetof(uoa_param_map, sport) == 34);
  REQUIRE(offsetof(uoa_param_map, dport) == 36);
  REQUIRE(offsetof(uoa_param_map, real_af) == 38);
  REQUIRE(offsetof(uoa_param_map, real_saddr) == 40);
  REQUIRE(offsetof(uoa_param_map, real_sport) == 56);
  REQUIRE(UOA_SO_GET_LOOKUP == 2048);
}

TEST_CASE("IPv4 option: length 8 and 20 (NAT64)", "[uoa]") {
  uoa_real r;
  REQUIRE(V4(kIpOptV4, &r) == UOA_PARSE_FOUND);
  RequireV4(r);
  REQUIRE(V4(kIpOptV6, &r) == UOA_PARSE_FOUND);
  RequireV6(r);
  // After NOPs and another option (router alert, 4 bytes), before EOL padding.
  REQUIRE(V4(Cat({{1, 1}, {0x94, 4, 0, 0}, kIpOptV4, {0, 0}}), &r) == UOA_PARSE_FOUND);
  RequireV4(r);
}

TEST_CASE("IPv4 option: absent or after EOL is NONE", "[uoa]") {
  uoa_real r;
  REQUIRE(V4({}, &r) == UOA_PARSE_NONE);
  REQUIRE(V4({1, 1, 1, 1}, &r) == UOA_PARSE_NONE);
  REQUIRE(V4(Cat({{0}, kIpOptV4}), &r) == UOA_PARSE_NONE);
  REQUIRE(V4({0x94, 4, 0, 0}, &r) == UOA_PARSE_NONE);
}

TEST_CASE("IPv4 option: malformed is BAD", "[uoa]") {
  uoa_real r;
  Bytes len12 = Cat({{0x1f, 12}, kPortV4, {0, 0, 0, 0}});
  REQUIRE(V4(len12, &r) == UOA_PARSE_BAD);
  Bytes len6 = {0x1f, 6, 0x1f, 0x90, 203, 0};
  REQUIRE(V4(len6, &r) == UOA_PARSE_BAD);
  Bytes past = kIpOptV6;
  past.resize(12);  // says 20, 12 present
  REQUIRE(V4(past, &r) == UOA_PARSE_BAD);
  REQUIRE(V4({1, 1, 1, 0x1f}, &r) == UOA_PARSE_BAD);  // no length byte
  REQUIRE(V4({0x1f, 0, 0, 0}, &r) == UOA_PARSE_BAD);  // length 0
  REQUIRE(V4({0x1f, 1, 0, 0}, &r) == UOA_PARSE_BAD);  // length 1
  REQUIRE(V4({0x94, 9, 0, 0}, &r) == UOA_PARSE_BAD);  // other option past the end
}

TEST_CASE("IPv6 destination option: every Pad1/PadN layout", "[uoa]") {
  uoa_real r;
  const std::vector<Bytes> v6_layouts = {
      Cat({PadN(2), kDstOptV6}),
      Cat({kDstOptV6, {0, 0}}),
      Cat({{0}, kDstOptV6, {0}}),
      Cat({PadN(6), kDstOptV6, PadN(4)}),
  };
  for (const Bytes& tlvs : v6_layouts) {
    REQUIRE(Dst(DstHdr(17, tlvs), &r) == UOA_PARSE_FOUND);
    RequireV6(r);
  }
  const std::vector<Bytes> v4_layouts = {
      Cat({kDstOptV4, PadN(6)}),
      Cat({{0, 0}, kDstOptV4, PadN(4)}),
      Cat({PadN(6), kDstOptV4}),
      Cat({{0}, kDstOptV4, {0}, PadN(4)}),
  };
  for (const Bytes& tlvs : v4_layouts) {
    REQUIRE(Dst(DstHdr(17, tlvs), &r) == UOA_PARSE_FOUND);
    RequireV4(r);
  }
}

TEST_CASE("IPv6 destination option: malformed or absent", "[uoa]") {
  uoa_real r;
  REQUIRE(Dst(DstHdr(17, PadN(6)), &r) == UOA_PARSE_NONE);
  Bytes dlen10 = Cat({{0x1f, 10}, Bytes(10, 0), PadN(2)});
  REQUIRE(Dst(DstHdr(17, dlen10), &r) == UOA_PARSE_BAD);
  Bytes dlen4 = {0x1f, 4, 0, 0, 0, 0};
  REQUIRE(Dst(DstHdr(17, dlen4), &r) == UOA_PARSE_BAD);
  Bytes past = kDstOptV6;
  past[1] = 30;
  past.resize(22);
  REQUIRE(Dst(DstHdr(17, past), &r) == UOA_PARSE_BAD);
  Bytes no_len = {0, 0, 0, 0, 0, 0x1f};  // type as the last byte
  REQUIRE(Dst(DstHdr(17, no_len), &r) == UOA_PARSE_BAD);
}

TEST_CASE("IPv6 extension-header walk", "[uoa]") {
  uoa_real r;
  unsigned off = 99;
  uint8_t proto = 0;
  Bytes udp(8, 0);
  SECTION("destination options then UDP") {
    Bytes b = Cat({DstHdr(17, Cat({PadN(2), kDstOptV6})), udp});
    REQUIRE(uoa_parse_ipv6_exthdrs(b.data(), unsigned(b.size()), 60, &r, &off, &proto) ==
            UOA_PARSE_FOUND);
    RequireV6(r);
    REQUIRE(off == 24);
    REQUIRE(proto == 17);
  }
  SECTION("hop-by-hop, then destination options") {
    Bytes b = Cat({DstHdr(60, PadN(6)), DstHdr(17, Cat({kDstOptV4, PadN(6)})), udp});
    REQUIRE(uoa_parse_ipv6_exthdrs(b.data(), unsigned(b.size()), 0, &r, &off, &proto) ==
            UOA_PARSE_FOUND);
    RequireV4(r);
    REQUIRE(off == 24);
    REQUIRE(proto == 17);
  }
  SECTION("an option in hop-by-hop is not a destination option") {
    Bytes b = Cat({DstHdr(17, Cat({PadN(2), kDstOptV6})), udp});
    REQUIRE(uoa_parse_ipv6_exthdrs(b.data(), unsigned(b.size()), 0, &r, &off, &proto) ==
            UOA_PARSE_NONE);
    REQUIRE(proto == 17);
  }
  SECTION("header length past the data") {
    Bytes b = DstHdr(17, Cat({PadN(2), kDstOptV6}));
    b.resize(16);
    REQUIRE(uoa_parse_ipv6_exthdrs(b.data(), unsigned(b.size()), 60, &r, &off, &proto) ==
            UOA_PARSE_BAD);
  }
  SECTION("an endless chain stops") {
    Bytes b;
    for (int i = 0; i < 20; i++) b = Cat({b, DstHdr(60, PadN(6))});
    REQUIRE(uoa_parse_ipv6_exthdrs(b.data(), unsigned(b.size()), 60, &r, &off, &proto) ==
            UOA_PARSE_BAD);
  }
}

TEST_CASE("private protocol 248: all four directions", "[uoa]") {
  uoa_real r;
  unsigned hlen = 0;
  Bytes udp(8, 0);
  Bytes p44 = Cat({Opp(1, kIpOptV4), udp});
  REQUIRE(uoa_parse_opp(p44.data(), unsigned(p44.size()), unsigned(p44.size()), &r, &hlen) == UOA_PARSE_FOUND);
  REQUIRE(hlen == 12);
  RequireV4(r);
  Bytes p66 = Cat({Opp(2, kIpOptV6), udp});
  REQUIRE(uoa_parse_opp(p66.data(), unsigned(p66.size()), unsigned(p66.size()), &r, &hlen) == UOA_PARSE_FOUND);
  REQUIRE(hlen == 24);
  RequireV6(r);
  // Version 1 with an IPv6 client (as DPVS's own test tools send it).
  Bytes v1 = Cat({Opp(1, kIpOptV6), udp});
  REQUIRE(uoa_parse_opp(v1.data(), unsigned(v1.size()), unsigned(v1.size()), &r, &hlen) == UOA_PARSE_FOUND);
  RequireV6(r);
}

TEST_CASE("private protocol 248: removable but broken option", "[uoa]") {
  uoa_real r;
  unsigned hlen = 0;
  Bytes udp(8, 0);
  Bytes inner12 = Cat({Opp(1, Cat({{0x1f, 12}, kPortV4, {0, 0, 0, 0}})), udp});
  REQUIRE(uoa_parse_opp(inner12.data(), unsigned(inner12.size()), unsigned(inner12.size()), &r, &hlen) == UOA_PARSE_BAD);
  REQUIRE(hlen == 16);
  Bytes cut = kIpOptV6;
  cut.resize(8);
  Bytes inner_past = Cat({Opp(2, cut), udp});
  REQUIRE(uoa_parse_opp(inner_past.data(), unsigned(inner_past.size()), unsigned(inner_past.size()), &r, &hlen) ==
          UOA_PARSE_BAD);
  REQUIRE(hlen == 12);
  Bytes empty = Cat({Opp(1, {}), udp});
  REQUIRE(uoa_parse_opp(empty.data(), unsigned(empty.size()), unsigned(empty.size()), &r, &hlen) == UOA_PARSE_NONE);
  REQUIRE(hlen == 4);
}

TEST_CASE("private protocol 248: header that cannot be removed", "[uoa]") {
  uoa_real r;
  unsigned hlen = 99;
  Bytes udp(8, 0);
  Bytes too_long = Cat({Opp(1, kIpOptV4), udp});
  too_long[3] = 0x40;  // length 64 > packet
  REQUIRE(uoa_parse_opp(too_long.data(), unsigned(too_long.size()), unsigned(too_long.size()), &r, &hlen) == UOA_PARSE_BAD);
  REQUIRE(hlen == 0);
  Bytes too_short = Cat({Opp(1, kIpOptV4), udp});
  too_short[3] = 2;
  REQUIRE(uoa_parse_opp(too_short.data(), unsigned(too_short.size()), unsigned(too_short.size()), &r, &hlen) == UOA_PARSE_BAD);
  REQUIRE(hlen == 0);
  Bytes no_udp_room = Opp(1, kIpOptV4);  // nothing after the header
  REQUIRE(uoa_parse_opp(no_udp_room.data(), unsigned(no_udp_room.size()), unsigned(no_udp_room.size()), &r, &hlen) ==
          UOA_PARSE_BAD);
  REQUIRE(hlen == 0);
  Bytes tcp = Cat({Opp(1, kIpOptV4, 6), udp});
  REQUIRE(uoa_parse_opp(tcp.data(), unsigned(tcp.size()), unsigned(tcp.size()), &r, &hlen) == UOA_PARSE_BAD);
  REQUIRE(hlen == 0);
  Bytes version3 = Cat({Opp(3, kIpOptV4), udp});
  REQUIRE(uoa_parse_opp(version3.data(), unsigned(version3.size()), unsigned(version3.size()), &r, &hlen) == UOA_PARSE_BAD);
  REQUIRE(hlen == 0);
  REQUIRE(uoa_parse_opp(udp.data(), 3, 3, &r, &hlen) == UOA_PARSE_BAD);
  REQUIRE(hlen == 0);
}

namespace {

// What the kernel module passes: the bytes it copied (at most
// UOA_OPP_HDR_MAX) and the bytes up to the end of the packet.
int ParseOppCopied(const Bytes& packet, uoa_real* r, unsigned* hlen) {
  unsigned avail = unsigned(packet.size());
  unsigned copied = avail < UOA_OPP_HDR_MAX ? avail : UOA_OPP_HDR_MAX;
  Bytes copy(packet.begin(), packet.begin() + copied);  // nothing beyond is readable
  return uoa_parse_opp(copy.data(), copied, avail, r, hlen);
}

}  // namespace

TEST_CASE("private protocol 248: bytes read vs bytes available", "[uoa]") {
  uoa_real r;
  unsigned hlen = 99;
  // A long datagram: only the header's bytes are read, the rest must fit.
  Bytes big = Cat({Opp(1, kIpOptV4), Bytes(1400, 0x55)});
  REQUIRE(ParseOppCopied(big, &r, &hlen) == UOA_PARSE_FOUND);
  REQUIRE(hlen == 12);
  RequireV4(r);
  // The largest header (40 bytes of options) with UDP behind it.
  Bytes opts = Cat({kIpOptV6, Bytes(20, 1)});
  Bytes max = Cat({Opp(2, opts), Bytes(8, 0)});
  REQUIRE(ParseOppCopied(max, &r, &hlen) == UOA_PARSE_FOUND);
  REQUIRE(hlen == UOA_OPP_HDR_MAX);
  // A length beyond the bytes read cannot be removed, even when the
  // packet is long enough.
  Bytes beyond = big;
  beyond[3] = UOA_OPP_HDR_MAX + 4;
  REQUIRE(ParseOppCopied(beyond, &r, &hlen) == UOA_PARSE_BAD);
  REQUIRE(hlen == 0);
  // More bytes read than available is a caller error: refused.
  REQUIRE(uoa_parse_opp(big.data(), 20, 10, &r, &hlen) == UOA_PARSE_BAD);
  REQUIRE(hlen == 0);
}

// Issue 11, item 9: an option the module took from a header the kernel then
// drops recorded an entry for a datagram nobody received.
TEST_CASE("IPv4 options: a broken option after the UOA one is BAD", "[uoa]") {
  uoa_real r;
  Bytes after_len1 = Cat({kIpOptV4, {7, 1, 0, 0}});
  REQUIRE(uoa_parse_ipv4_options(after_len1.data(), unsigned(after_len1.size()), &r) ==
          UOA_PARSE_BAD);
  Bytes after_past = Cat({kIpOptV4, {7, 9, 0, 0}});
  REQUIRE(uoa_parse_ipv4_options(after_past.data(), unsigned(after_past.size()), &r) ==
          UOA_PARSE_BAD);
  Bytes after_eol = Cat({kIpOptV4, {0, 7, 1, 0}});  // after EOL: not options
  REQUIRE(uoa_parse_ipv4_options(after_eol.data(), unsigned(after_eol.size()), &r) ==
          UOA_PARSE_FOUND);
  Bytes two = Cat({kIpOptV4, Cat({{0x1f, 8}, {0, 1, 1, 1, 1, 1}})});  // the first decides
  REQUIRE(uoa_parse_ipv4_options(two.data(), unsigned(two.size()), &r) == UOA_PARSE_FOUND);
  RequireV4(r);
}

TEST_CASE("IPv6 destination options: what the kernel drops is BAD", "[uoa]") {
  uoa_real r;
  Bytes padn_data = PadN(6);
  padn_data[3] = 1;  // PadN with non-zero data
  Bytes h1 = DstHdr(17, Cat({kDstOptV4, padn_data}));
  REQUIRE(uoa_parse_ipv6_tlvs(h1.data(), unsigned(h1.size()), &r) == UOA_PARSE_BAD);
  Bytes pad8 = Cat({PadN(4), PadN(4)});  // 8 bytes of padding in a row
  Bytes h2 = DstHdr(17, Cat({kDstOptV6, pad8, PadN(2)}));
  REQUIRE(uoa_parse_ipv6_tlvs(h2.data(), unsigned(h2.size()), &r) == UOA_PARSE_BAD);
  Bytes discard = {0x41, 4, 0, 0, 0, 0};  // unknown, action 01: discard
  Bytes h3 = DstHdr(17, Cat({kDstOptV4, discard}));
  REQUIRE(uoa_parse_ipv6_tlvs(h3.data(), unsigned(h3.size()), &r) == UOA_PARSE_BAD);
  Bytes skip = {0x3e, 4, 0, 0, 0, 0};  // unknown, action 00: skipped
  Bytes h4 = DstHdr(17, Cat({kDstOptV4, skip}));
  REQUIRE(uoa_parse_ipv6_tlvs(h4.data(), unsigned(h4.size()), &r) == UOA_PARSE_FOUND);
  RequireV4(r);
  Bytes many;
  for (int i = 0; i < 9; i++) many = Cat({many, {0x3e, 0}});  // 9 options > 8
  Bytes h5 = DstHdr(17, Cat({kDstOptV4, many, PadN(4)}));
  REQUIRE(uoa_parse_ipv6_tlvs(h5.data(), unsigned(h5.size()), &r) == UOA_PARSE_BAD);
}
