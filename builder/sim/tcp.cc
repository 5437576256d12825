// The balancer side of TCP connections through the TUN, and the server-side
// socket helpers the cases check.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sim/sim.h"

namespace sim {
namespace {

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }
constexpr uint8_t kProtoTcp = 6;

// seq a is at or after b, modulo 2^32.
bool SeqAtOrAfter(uint32_t a, uint32_t b) { return int32_t(a - b) >= 0; }

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() { reset(); }

void Fd::reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

BalancerConnection::BalancerConnection(Tun& tun, Endpoint balancer, Endpoint server)
    : tun_(tun), balancer_(std::move(balancer)), server_(std::move(server)) {}

util::Status BalancerConnection::Handshake(const Bytes& syn_options, int timeout_ms) {
  uint32_t isn = 0x10000000u ^ (uint32_t(balancer_.port) << 12) ^ balancer_.addr.bytes[3];
  TcpSegment syn{balancer_, server_, isn, 0, tcpflag::kSyn, 65535, syn_options, {}};
  auto pkt = BuildTcp(syn);
  if (!pkt) return pkt.error();
  if (auto st = tun_.Write(*pkt); !st) return st;
  snd_nxt_ = isn + 1;
  auto reply = tun_.ReadMatching(
      [&](const ParsedPacket& p) {
        return p.Is(kProtoTcp, server_, balancer_) &&
               ((p.flags & tcpflag::kRst) ||
                ((p.flags & (tcpflag::kSyn | tcpflag::kAck)) == (tcpflag::kSyn | tcpflag::kAck) &&
                 p.ack == snd_nxt_));
      },
      timeout_ms);
  if (!reply)
    return util::MakeError("no SYN-ACK from " + server_.ToString() + " to " +
                           balancer_.ToString() + ": " + reply.error().message);
  if (reply->flags & tcpflag::kRst)
    return util::MakeError("server " + server_.ToString() + " answered the SYN with RST");
  if (!reply->checksums_ok)
    return util::MakeError("SYN-ACK from the kernel has a bad checksum (simulator bug?)");
  rcv_nxt_ = reply->seq + 1;
  return util::Ok{};
}

util::Status BalancerConnection::SendAck(const Bytes& options) {
  TcpSegment ack{balancer_, server_, snd_nxt_, rcv_nxt_, tcpflag::kAck, 65535, options, {}};
  auto pkt = BuildTcp(ack);
  if (!pkt) return pkt.error();
  return tun_.Write(*pkt);
}

util::Status BalancerConnection::SendData(const Bytes& payload, const Bytes& options) {
  TcpSegment seg{balancer_, server_, snd_nxt_, rcv_nxt_, tcpflag::kAck | tcpflag::kPsh,
                 65535, options, payload};
  auto pkt = BuildTcp(seg);
  if (!pkt) return pkt.error();
  if (auto st = tun_.Write(*pkt); !st) return st;
  snd_nxt_ += uint32_t(payload.size());
  return util::Ok{};
}

util::Status BalancerConnection::SendRst() {
  TcpSegment rst{balancer_, server_, snd_nxt_, 0, tcpflag::kRst, 0, {}, {}};
  auto pkt = BuildTcp(rst);
  if (!pkt) return pkt.error();
  return tun_.Write(*pkt);
}

util::Status BalancerConnection::AwaitAcked(int timeout_ms) {
  auto reply = tun_.ReadMatching(
      [&](const ParsedPacket& p) {
        return p.Is(kProtoTcp, server_, balancer_) && (p.flags & tcpflag::kAck) &&
               SeqAtOrAfter(p.ack, snd_nxt_);
      },
      timeout_ms);
  if (!reply) return util::MakeError("server did not acknowledge data: " + reply.error().message);
  return util::Ok{};
}

util::Result<Fd> Listen(const Endpoint& where, bool dual_stack, int backlog) {
  int family = dual_stack ? AF_INET6 : where.addr.family;
  Fd s(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return util::MakeError(Errno("socket"));
  int one = 1, zero = 0;
  setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss;
  socklen_t len;
  if (dual_stack) {
    if (setsockopt(s.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
      return util::MakeError(Errno("IPV6_V6ONLY=0"));
    Endpoint any{IpAddr::FromV6(in6addr_any), where.port};
    len = ToSockaddr(any, &ss);
  } else {
    len = ToSockaddr(where, &ss);
  }
  if (bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0)
    return util::MakeError(Errno("bind " + where.ToString()));
  if (listen(s.get(), backlog) < 0) return util::MakeError(Errno("listen"));
  return s;
}

util::Result<Fd> AcceptWithin(int listen_fd, int timeout_ms, Endpoint* peer) {
  pollfd pfd{listen_fd, POLLIN, 0};
  int rc = poll(&pfd, 1, timeout_ms);
  if (rc < 0) return util::MakeError(Errno("poll"));
  if (rc == 0)
    return util::MakeError("no connection to accept within " + std::to_string(timeout_ms) +
                           " ms");
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  Fd c(accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC));
  if (!c) return util::MakeError(Errno("accept"));
  if (peer) {
    auto e = FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (!e) return util::MakeError("accept(): " + e.error().message);
    *peer = *e;
  }
  return c;
}

util::Result<Endpoint> PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0)
    return util::MakeError(Errno("getpeername"));
  return FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

util::Result<Endpoint> SockName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0)
    return util::MakeError(Errno("getsockname"));
  return FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

util::Result<Bytes> RecvWithin(int fd, size_t max, int timeout_ms) {
  pollfd pfd{fd, POLLIN, 0};
  int rc = poll(&pfd, 1, timeout_ms);
  if (rc < 0) return util::MakeError(Errno("poll"));
  if (rc == 0) return util::MakeError("no data within " + std::to_string(timeout_ms) + " ms");
  Bytes buf(max);
  ssize_t n = recv(fd, buf.data(), max, MSG_DONTWAIT);
  if (n < 0) return util::MakeError(Errno("recv"));
  buf.resize(size_t(n));
  return buf;
}

util::Result<Endpoint> Nat64Lookup(int fd) {
  // DPVS-compatible layout: struct { struct in6_addr saddr; uint16_t port; },
  // the port as it came in the option (network order).
  struct {
    in6_addr saddr;
    uint16_t port;
  } v{};
  socklen_t len = sizeof v;
  if (getsockopt(fd, IPPROTO_IP, 4096, &v, &len) < 0)
    return util::MakeError(Errno("getsockopt(IPPROTO_IP, 4096)"));
  Endpoint e{IpAddr::FromV6(v.saddr), ntohs(v.port)};
  return e;
}

void CloseWithReset(Fd& fd) {
  if (!fd) return;
  linger l{1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.reset();
}

}  // namespace sim
