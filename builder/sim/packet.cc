// Addresses, checksums, and the IPv4/IPv6/TCP/UDP packet builder and parser.
// Pure code (no I/O), covered by packet_test.cc.
#include <arpa/inet.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sim/sim.h"

namespace sim {
namespace {

constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17, kProtoDstOpts = 60;
constexpr uint8_t kProtoHopByHop = 0, kProtoRouting = 43, kProtoFragment = 44;

void Put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = v >> 8;
  b[at + 1] = v & 0xff;
}
void Put32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; i++) b[at + i] = (v >> (24 - 8 * i)) & 0xff;
}
uint16_t Get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t Get32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

}  // namespace

// ---------------------------------------------------------------- addresses

util::Result<IpAddr> IpAddr::Parse(const std::string& text) {
  IpAddr a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, text.c_str(), a.bytes) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return util::MakeError("'" + text + "' is not an IPv4 or IPv6 address");
}

IpAddr IpAddr::FromV4(const in_addr& in) {
  IpAddr a;
  a.family = AF_INET;
  memcpy(a.bytes, &in, 4);
  return a;
}

IpAddr IpAddr::FromV6(const in6_addr& in) {
  IpAddr a;
  a.family = AF_INET6;
  memcpy(a.bytes, &in, 16);
  return a;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes, buf, sizeof buf);
  return buf;
}

IpAddr IpAddr::V4Mapped() const {
  if (!is_v4()) return *this;
  IpAddr m;
  m.family = AF_INET6;
  m.bytes[10] = m.bytes[11] = 0xff;
  memcpy(m.bytes + 12, bytes, 4);
  return m;
}

bool IpAddr::operator==(const IpAddr& o) const {
  return family == o.family && memcmp(bytes, o.bytes, size()) == 0;
}

IpAddr Ip(const char* text) {
  auto a = IpAddr::Parse(text);
  if (!a) {
    fprintf(stderr, "lbsim: bad address constant: %s\n", a.error().message.c_str());
    abort();
  }
  return *a;
}

std::string Endpoint::ToString() const {
  if (addr.is_v4()) return addr.ToString() + ":" + std::to_string(port);
  return "[" + addr.ToString() + "]:" + std::to_string(port);
}

socklen_t ToSockaddr(const Endpoint& e, sockaddr_storage* out) {
  memset(out, 0, sizeof *out);
  if (e.addr.is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(out);
    s->sin_family = AF_INET;
    s->sin_port = htons(e.port);
    memcpy(&s->sin_addr, e.addr.bytes, 4);
    return sizeof *s;
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(out);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(e.port);
  memcpy(&s->sin6_addr, e.addr.bytes, 16);
  return sizeof *s;
}

util::Result<Endpoint> FromSockaddr(const sockaddr* sa, socklen_t len) {
  Endpoint e;
  if (sa->sa_family == AF_INET && len >= socklen_t(sizeof(sockaddr_in))) {
    auto* s = reinterpret_cast<const sockaddr_in*>(sa);
    e.addr = IpAddr::FromV4(s->sin_addr);
    e.port = ntohs(s->sin_port);
    return e;
  }
  if (sa->sa_family == AF_INET6 && len >= socklen_t(sizeof(sockaddr_in6))) {
    auto* s = reinterpret_cast<const sockaddr_in6*>(sa);
    e.addr = IpAddr::FromV6(s->sin6_addr);
    e.port = ntohs(s->sin6_port);
    return e;
  }
  return util::MakeError("unexpected socket address (family " + std::to_string(sa->sa_family) +
                         ", length " + std::to_string(len) + ")");
}

namespace net {
IpAddr ServerV4() { return Ip("198.51.100.1"); }
IpAddr ServerV6() { return Ip("2001:db8:100::1"); }
IpAddr BalancerV4() { return Ip("198.51.100.2"); }
IpAddr BalancerV6() { return Ip("2001:db8:100::2"); }
IpAddr ClientV4(uint32_t index) {
  IpAddr a = Ip("203.0.113.0");
  a.bytes[3] = uint8_t(1 + index % 254);
  return a;
}
IpAddr ClientV6(uint32_t index) {
  IpAddr a = Ip("2001:db8:200::");
  uint64_t v = uint64_t(index) + 1;
  for (int i = 0; i < 8; i++) a.bytes[15 - i] = (v >> (8 * i)) & 0xff;
  return a;
}
}  // namespace net

// ---------------------------------------------------------------- checksums

uint32_t ChecksumAdd(uint32_t sum, const uint8_t* data, size_t len) {
  // Chained pieces must start at even offsets of the whole; every caller
  // passes headers of even length, so only the last piece may be odd.
  size_t i = 0;
  for (; i + 1 < len; i += 2) {
    sum += uint32_t(data[i]) << 8 | data[i + 1];
    if (sum & 0x80000000u) sum = (sum & 0xffff) + (sum >> 16);
  }
  if (i < len) sum += uint32_t(data[i]) << 8;
  return sum;
}

uint16_t ChecksumFold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum & 0xffff);
}

uint16_t InternetChecksum(const uint8_t* data, size_t len) {
  return ChecksumFold(ChecksumAdd(0, data, len));
}

uint16_t TransportChecksum(const IpAddr& src, const IpAddr& dst, uint8_t protocol,
                           const uint8_t* l4, size_t len) {
  uint32_t sum = 0;
  sum = ChecksumAdd(sum, src.bytes, src.size());
  sum = ChecksumAdd(sum, dst.bytes, dst.size());
  // Both pseudo-headers add the protocol and the L4 length as 16/32-bit words,
  // which sum the same way.
  sum += protocol;
  sum += uint32_t(len) & 0xffff;
  sum += uint32_t(len) >> 16;
  sum = ChecksumAdd(sum, l4, len);
  return ChecksumFold(sum);
}

// ---------------------------------------------------------------- building

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes ToaOption(const Endpoint& client, uint8_t kind) {
  Bytes o(4 + client.addr.size());
  o[0] = kind;
  o[1] = uint8_t(o.size());
  Put16(o, 2, client.port);
  memcpy(&o[4], client.addr.bytes, client.addr.size());
  return o;
}

Bytes MssOption(uint16_t mss) { return {2, 4, uint8_t(mss >> 8), uint8_t(mss & 0xff)}; }

util::Result<Bytes> BuildIp(const IpPacketSpec& spec, const Bytes& body) {
  if (spec.src.family != spec.dst.family)
    return util::MakeError("source " + spec.src.ToString() + " and destination " +
                           spec.dst.ToString() + " are of different families");
  if (spec.src.is_v4()) {
    Bytes opts = spec.ipv4_options;
    while (opts.size() % 4) opts.push_back(0);
    if (opts.size() > 40) return util::MakeError("IPv4 options longer than 40 bytes");
    size_t hl = 20 + opts.size();
    Bytes p(hl + body.size());
    p[0] = 0x40 | uint8_t(hl / 4);
    Put16(p, 2, uint16_t(p.size()));
    Put16(p, 6, 0x4000);  // DF
    p[8] = spec.ttl;
    p[9] = spec.protocol;
    memcpy(&p[12], spec.src.bytes, 4);
    memcpy(&p[16], spec.dst.bytes, 4);
    std::copy(opts.begin(), opts.end(), p.begin() + 20);
    Put16(p, 10, InternetChecksum(p.data(), hl));
    std::copy(body.begin(), body.end(), p.begin() + hl);
    return p;
  }
  Bytes ext;
  if (!spec.ipv6_dest_options.empty()) {
    ext = {spec.protocol, 0};
    ext.insert(ext.end(), spec.ipv6_dest_options.begin(), spec.ipv6_dest_options.end());
    size_t pad = (8 - ext.size() % 8) % 8;
    if (pad == 1) {
      ext.push_back(0);  // Pad1
    } else if (pad > 1) {
      ext.push_back(1);  // PadN
      ext.push_back(uint8_t(pad - 2));
      ext.insert(ext.end(), pad - 2, 0);
    }
    if (ext.size() > 2048) return util::MakeError("IPv6 destination options too long");
    ext[1] = uint8_t(ext.size() / 8 - 1);
  }
  Bytes p(40 + ext.size() + body.size());
  p[0] = 0x60;
  Put16(p, 4, uint16_t(ext.size() + body.size()));
  p[6] = ext.empty() ? spec.protocol : kProtoDstOpts;
  p[7] = spec.ttl;
  memcpy(&p[8], spec.src.bytes, 16);
  memcpy(&p[24], spec.dst.bytes, 16);
  std::copy(ext.begin(), ext.end(), p.begin() + 40);
  std::copy(body.begin(), body.end(), p.begin() + 40 + ext.size());
  return p;
}

util::Result<Bytes> BuildTcp(const TcpSegment& seg, const Bytes& ipv4_options) {
  Bytes opts = seg.options;
  while (opts.size() % 4) opts.push_back(0);
  if (opts.size() > 40)
    return util::MakeError("TCP options are " + std::to_string(opts.size()) +
                           " bytes; at most 40 fit in a TCP header");
  size_t hl = 20 + opts.size();
  Bytes t(hl + seg.payload.size());
  Put16(t, 0, seg.src.port);
  Put16(t, 2, seg.dst.port);
  Put32(t, 4, seg.seq);
  Put32(t, 8, seg.ack);
  t[12] = uint8_t((hl / 4) << 4);
  t[13] = seg.flags;
  Put16(t, 14, seg.window);
  std::copy(opts.begin(), opts.end(), t.begin() + 20);
  std::copy(seg.payload.begin(), seg.payload.end(), t.begin() + hl);
  Put16(t, 16, TransportChecksum(seg.src.addr, seg.dst.addr, kProtoTcp, t.data(), t.size()));
  IpPacketSpec ip;
  ip.src = seg.src.addr;
  ip.dst = seg.dst.addr;
  ip.protocol = kProtoTcp;
  ip.ipv4_options = ipv4_options;
  return BuildIp(ip, t);
}

util::Result<Bytes> BuildUdp(const UdpDatagram& d) {
  if (d.payload.size() > 65000) return util::MakeError("UDP payload too large");
  Bytes u(8 + d.payload.size());
  Put16(u, 0, d.src.port);
  Put16(u, 2, d.dst.port);
  Put16(u, 4, uint16_t(u.size()));
  std::copy(d.payload.begin(), d.payload.end(), u.begin() + 8);
  uint16_t sum = TransportChecksum(d.src.addr, d.dst.addr, kProtoUdp, u.data(), u.size());
  Put16(u, 6, sum == 0 ? 0xffff : sum);  // 0 means "no checksum" in UDP
  IpPacketSpec ip;
  ip.src = d.src.addr;
  ip.dst = d.dst.addr;
  ip.protocol = d.shim.empty() ? kProtoUdp : d.shim_protocol;
  ip.ipv4_options = d.ipv4_options;
  ip.ipv6_dest_options = d.ipv6_dest_options;
  return BuildIp(ip, Concat({d.shim, u}));
}

// ---------------------------------------------------------------- parsing

bool ParsedPacket::Is(uint8_t proto, const Endpoint& from, const Endpoint& to) const {
  return protocol == proto && src == from.addr && dst == to.addr && sport == from.port &&
         dport == to.port;
}

util::Result<ParsedPacket> ParsePacket(const uint8_t* data, size_t len) {
  ParsedPacket p;
  if (len < 1) return util::MakeError("empty packet");
  size_t off = 0, end = len;
  bool ip_ok = true;
  int version = data[0] >> 4;
  if (version == 4) {
    if (len < 20) return util::MakeError("IPv4 packet shorter than its header");
    size_t hl = (data[0] & 0xf) * 4u;
    size_t total = Get16(data + 2);
    if (hl < 20 || hl > len || total < hl || total > len)
      return util::MakeError("IPv4 header or total length inconsistent");
    p.src.family = p.dst.family = AF_INET;
    memcpy(p.src.bytes, data + 12, 4);
    memcpy(p.dst.bytes, data + 16, 4);
    p.protocol = data[9];
    p.ipv4_options.assign(data + 20, data + hl);
    ip_ok = InternetChecksum(data, hl) == 0;
    off = hl;
    end = total;
  } else if (version == 6) {
    if (len < 40) return util::MakeError("IPv6 packet shorter than its header");
    size_t total = 40 + Get16(data + 4);
    if (total > len) return util::MakeError("IPv6 payload length past the packet");
    p.src.family = p.dst.family = AF_INET6;
    memcpy(p.src.bytes, data + 8, 16);
    memcpy(p.dst.bytes, data + 24, 16);
    uint8_t next = data[6];
    off = 40;
    end = total;
    while (next == kProtoHopByHop || next == kProtoRouting || next == kProtoDstOpts ||
           next == kProtoFragment) {
      if (off + 8 > end) return util::MakeError("IPv6 extension header truncated");
      size_t ext_len = next == kProtoFragment ? 8 : (data[off + 1] + 1u) * 8;
      if (off + ext_len > end) return util::MakeError("IPv6 extension header truncated");
      next = data[off];
      off += ext_len;
    }
    p.protocol = next;
  } else {
    return util::MakeError("not an IP packet (version " + std::to_string(version) + ")");
  }
  const uint8_t* l4 = data + off;
  size_t l4len = end - off;
  if (p.protocol == kProtoTcp) {
    if (l4len < 20) return util::MakeError("TCP header truncated");
    size_t thl = (l4[12] >> 4) * 4u;
    if (thl < 20 || thl > l4len) return util::MakeError("TCP data offset inconsistent");
    p.sport = Get16(l4);
    p.dport = Get16(l4 + 2);
    p.seq = Get32(l4 + 4);
    p.ack = Get32(l4 + 8);
    p.flags = l4[13];
    p.window = Get16(l4 + 14);
    p.tcp_options.assign(l4 + 20, l4 + thl);
    p.payload.assign(l4 + thl, l4 + l4len);
    p.checksums_ok = ip_ok && TransportChecksum(p.src, p.dst, kProtoTcp, l4, l4len) == 0;
  } else if (p.protocol == kProtoUdp) {
    if (l4len < 8) return util::MakeError("UDP header truncated");
    size_t ulen = Get16(l4 + 4);
    if (ulen < 8 || ulen > l4len) return util::MakeError("UDP length inconsistent");
    p.sport = Get16(l4);
    p.dport = Get16(l4 + 2);
    p.payload.assign(l4 + 8, l4 + ulen);
    bool no_sum = Get16(l4 + 6) == 0 && p.src.is_v4();
    p.checksums_ok =
        ip_ok && (no_sum || TransportChecksum(p.src, p.dst, kProtoUdp, l4, ulen) == 0);
  } else {
    p.payload.assign(l4, l4 + l4len);
    p.checksums_ok = ip_ok;
  }
  return p;
}

}  // namespace sim
