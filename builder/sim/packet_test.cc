#include <catch2/catch.hpp>

#include "sim/sim.h"

using namespace sim;

TEST_CASE("Internet checksum matches RFC 1071 and a known IPv4 header", "[sim]") {
  const uint8_t rfc1071[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(InternetChecksum(rfc1071, sizeof rfc1071) == uint16_t(~0xddf2));
  uint8_t hdr[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                   0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(InternetChecksum(hdr, sizeof hdr) == 0xb861);
  hdr[10] = 0xb8;
  hdr[11] = 0x61;
  CHECK(InternetChecksum(hdr, sizeof hdr) == 0);
  const uint8_t odd[] = {0x01, 0x02, 0x03};  // odd length pads with a zero byte
  CHECK(InternetChecksum(odd, 3) == uint16_t(~(0x0102 + 0x0300)));
}

TEST_CASE("TOA option bytes follow the wire format", "[sim]") {
  Bytes v4 = ToaOption({Ip("203.0.113.7"), 0x1234});
  CHECK(v4 == Bytes{254, 8, 0x12, 0x34, 203, 0, 113, 7});
  Bytes v6 = ToaOption({Ip("2001:db8:200::1"), 80}, 200);
  REQUIRE(v6.size() == 20);
  CHECK(v6[0] == 200);
  CHECK(v6[1] == 20);
  CHECK(v6[2] == 0);
  CHECK(v6[3] == 80);
  CHECK(v6[4] == 0x20);
  CHECK(v6[19] == 1);
}

TEST_CASE("TCP segments round-trip through the parser with valid checksums", "[sim]") {
  for (bool v6 : {false, true}) {
    TcpSegment s;
    s.src = {v6 ? net::BalancerV6() : net::BalancerV4(), 20000};
    s.dst = {v6 ? net::ServerV6() : net::ServerV4(), 8000};
    s.seq = 0xdeadbeef;
    s.ack = 0x01020304;
    s.flags = tcpflag::kAck | tcpflag::kPsh;
    s.options = Concat({{1}, ToaOption({net::ClientV4(5), 999})});  // 9 bytes -> padded to 12
    s.payload = {'h', 'i', '!'};
    auto pkt = BuildTcp(s);
    REQUIRE(pkt.ok());
    CHECK(pkt->size() == (v6 ? 40u : 20u) + 20 + 12 + 3);
    auto p = ParsePacket(pkt->data(), pkt->size());
    REQUIRE(p.ok());
    CHECK(p->checksums_ok);
    CHECK(p->Is(6, s.src, s.dst));
    CHECK(p->seq == s.seq);
    CHECK(p->ack == s.ack);
    CHECK(p->flags == s.flags);
    CHECK(p->tcp_options.size() == 12);
    CHECK(p->tcp_options[1] == 254);
    CHECK(p->tcp_options[9] == 0);  // EOL padding
    CHECK(p->payload == s.payload);
    (*pkt)[pkt->size() - 1] ^= 0x40;  // corrupt the payload
    auto bad = ParsePacket(pkt->data(), pkt->size());
    REQUIRE(bad.ok());
    CHECK_FALSE(bad->checksums_ok);
  }
}

TEST_CASE("TCP options beyond 40 bytes are refused", "[sim]") {
  TcpSegment s;
  s.src = {net::BalancerV4(), 1};
  s.dst = {net::ServerV4(), 2};
  s.options = Bytes(41, 1);
  CHECK_FALSE(BuildTcp(s).ok());
}

TEST_CASE("UDP with IPv4 options and an IPv6 destination-options header", "[sim]") {
  UdpDatagram d;
  d.src = {net::BalancerV4(), 5353};
  d.dst = {net::ServerV4(), 53};
  d.payload = {1, 2, 3, 4, 5};
  d.ipv4_options = {0x1f, 8, 0, 80, 203, 0, 113, 9};
  auto v4 = BuildUdp(d);
  REQUIRE(v4.ok());
  CHECK(((*v4)[0] & 0xf) == 7);  // 20 + 8 bytes of options
  auto p4 = ParsePacket(v4->data(), v4->size());
  REQUIRE(p4.ok());
  CHECK(p4->checksums_ok);
  CHECK(p4->ipv4_options == d.ipv4_options);
  CHECK(p4->payload == d.payload);

  d.src = {net::BalancerV6(), 5353};
  d.dst = {net::ServerV6(), 53};
  d.ipv4_options.clear();
  d.ipv6_dest_options = {0x1f, 18};  // + 18 bytes of data
  d.ipv6_dest_options.resize(20, 0xaa);
  auto v6 = BuildUdp(d);
  REQUIRE(v6.ok());
  CHECK((*v6)[6] == 60);           // next header: destination options
  CHECK((*v6)[40] == 17);          // then UDP
  CHECK((*v6)[41] == 2);           // 2 + 20 = 22 bytes, padded to 24: (24 / 8) - 1
  CHECK((*v6)[40 + 22] == 1);      // PadN
  CHECK((*v6)[40 + 23] == 0);      // with no data bytes
  auto p6 = ParsePacket(v6->data(), v6->size());
  REQUIRE(p6.ok());
  CHECK(p6->protocol == 17);
  CHECK(p6->checksums_ok);
  CHECK(p6->payload == d.payload);
}

TEST_CASE("A shim between IP and UDP keeps the UDP checksum of plain UDP", "[sim]") {
  UdpDatagram d;
  d.src = {net::BalancerV4(), 1000};
  d.dst = {net::ServerV4(), 2000};
  d.payload = {9, 9};
  d.shim_protocol = 248;
  d.shim = {0x10, 17, 0, 4};
  auto with = BuildUdp(d);
  REQUIRE(with.ok());
  CHECK((*with)[9] == 248);
  auto parsed = ParsePacket(with->data(), with->size());
  REQUIRE(parsed.ok());
  CHECK(parsed->protocol == 248);
  // Stripping the shim must give a valid plain UDP packet.
  d.shim.clear();
  auto plain = BuildUdp(d);
  REQUIRE(plain.ok());
  CHECK(Bytes(with->end() - 10, with->end()) == Bytes(plain->end() - 10, plain->end()));
}

TEST_CASE("The parser refuses truncated and inconsistent packets", "[sim]") {
  TcpSegment s;
  s.src = {net::BalancerV4(), 1};
  s.dst = {net::ServerV4(), 2};
  auto pkt = BuildTcp(s);
  REQUIRE(pkt.ok());
  CHECK_FALSE(ParsePacket(pkt->data(), 10).ok());
  CHECK_FALSE(ParsePacket(pkt->data(), 30).ok());  // total length says 40
  Bytes bad_offset = *pkt;
  bad_offset[20 + 12] = 0xf0;  // data offset 60 > segment
  CHECK_FALSE(ParsePacket(bad_offset.data(), bad_offset.size()).ok());
  const uint8_t not_ip[] = {0x00, 0x01};
  CHECK_FALSE(ParsePacket(not_ip, 2).ok());
}

TEST_CASE("Addresses parse, print and map", "[sim]") {
  CHECK_FALSE(IpAddr::Parse("203.0.113.300").ok());
  CHECK(net::ClientV4(0).ToString() == "203.0.113.1");
  CHECK(net::ClientV4(253).ToString() == "203.0.113.254");
  CHECK(net::ClientV6(999).ToString() == "2001:db8:200::3e8");
  CHECK(Ip("203.0.113.5").V4Mapped().ToString() == "::ffff:203.0.113.5");
  CHECK(Endpoint{Ip("2001:db8::1"), 80}.ToString() == "[2001:db8::1]:80");
  sockaddr_storage ss;
  Endpoint e{Ip("2001:db8:100::2"), 4242};
  socklen_t len = ToSockaddr(e, &ss);
  auto back = FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  REQUIRE(back.ok());
  CHECK(*back == e);
}
