// The cases of the lab's second, short boot of every row: the kernel booted
// with ipv6.disable=1 (issue 11, finding 5). IPv6 is then registered nowhere
// (no AF_INET6 sockets, no IPv6 protocol handlers), and both modules must
// still load and serve IPv4: each case loads its module itself, checks what
// it logged, and recovers one IPv4 client through the TUN (which has no IPv6
// address in this boot).
//
// Each case first proves the guest really runs without IPv6, so a lab that
// forgot the command-line option cannot pass them.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "sim/sim.h"
#include "sim/toa_conn.h"
#include "uoa/uoa.h"

namespace sim {
namespace {

// Empty when IPv6 is disabled as ipv6.disable=1 disables it, else why not.
std::string Ipv6NotDisabled() {
  std::ifstream in("/proc/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (cmdline.find("ipv6.disable=1") == std::string::npos)
    return "ipv6.disable=1 is not on the kernel command line: this case belongs to the lab's "
           "ipv6.disable=1 boot";
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    close(fd);
    return "an AF_INET6 socket opened: IPv6 is not disabled in this guest";
  }
  if (errno != EAFNOSUPPORT)
    return std::string("socket(AF_INET6): ") + strerror(errno) + ", want EAFNOSUPPORT";
  return "";
}

// The kernel log after `marker`, as "a | b | c" of its last `lines` lines.
std::string LogTail(const std::string& log, size_t lines) {
  std::vector<std::string> kept;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    kept.push_back(line);
    if (kept.size() > lines) kept.erase(kept.begin());
  }
  std::string out;
  for (const auto& l : kept) out += (out.empty() ? "" : " | ") + l;
  return out.empty() ? "(nothing logged)" : out;
}

// Loads `module` without parameters after a marker in the kernel log; returns
// what the kernel logged from the marker on. A failed load carries the log's
// last lines (the module says why it refused).
util::Result<std::string> LoadLogged(Context& ctx, const std::string& module) {
  if (auto st = ctx.modules.UnloadIfLoaded(module); !st) return st.error();
  std::string marker = "lbsim: loading " + module + " with ipv6.disable=1 " +
                       std::to_string(ctx.NextServerPort());
  int kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  bool marked = kmsg >= 0 && write(kmsg, marker.data(), marker.size()) >= 0;
  if (kmsg >= 0) close(kmsg);
  if (!marked) return util::MakeError("cannot write a marker to /dev/kmsg");
  auto loaded = ctx.modules.Load(module, "");
  std::string log = KernelLog();
  size_t at = log.rfind(marker);
  std::string after = at == std::string::npos ? "" : log.substr(at + marker.size());
  if (!loaded) return util::MakeError(loaded.error().message + "; kernel log: " + LogTail(after, 3));
  if (at == std::string::npos) return util::MakeError("marker not found in the kernel log");
  return after;
}

CaseResult ToaIpv4Client(Context& ctx) {
  if (auto why = Ipv6NotDisabled(); !why.empty()) return CaseResult::Fail(why);
  auto log = LoadLogged(ctx, "toa");
  if (!log) return CaseResult::Fail("toa did not load: " + log.error().message);
  if (log->find("TOA: toa loaded") == std::string::npos)
    return CaseResult::Fail("toa loaded but logged no \"TOA: toa loaded\": " + LogTail(*log, 3));
  ToaConn conn;
  conn.listener = Listener::kV4;
  conn.client = {net::ClientV4(61), 40061};
  conn.ack_options = ToaOption(conn.client);
  CaseResult r = RunToaConn(ctx, conn);
  r.detail = "IPv6 disabled (AF_INET6: EAFNOSUPPORT); \"TOA: toa loaded\"; " + r.detail;
  return r;
}

// One IPv4 datagram from the balancer carrying the UOA IPv4 option (type
// 0x1f, length 8: port + IPv4 client) to a UDP socket; the module's lookup
// must name the client.
CaseResult UoaIpv4Client(Context& ctx) {
  if (auto why = Ipv6NotDisabled(); !why.empty()) return CaseResult::Fail(why);
  auto log = LoadLogged(ctx, "uoa");
  if (!log) return CaseResult::Fail("uoa did not load: " + log.error().message);

  const Endpoint client{net::ClientV4(62), 40062};
  Endpoint local{net::ServerV4(), ctx.NextServerPort()};
  Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return CaseResult::Fail(std::string("socket: ") + strerror(errno));
  sockaddr_storage ss;
  socklen_t len = ToSockaddr(local, &ss);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0)
    return CaseResult::Fail("bind " + local.ToString() + ": " + strerror(errno));

  UdpDatagram d;
  d.src = {net::BalancerV4(), ctx.NextBalancerPort()};
  d.dst = local;
  d.payload = {'u', 'o', 'a', '-', 'v', '4'};
  d.ipv4_options = {0x1f, 8, uint8_t(client.port >> 8), uint8_t(client.port)};
  d.ipv4_options.insert(d.ipv4_options.end(), client.addr.bytes, client.addr.bytes + 4);
  auto pkt = BuildUdp(d);
  if (!pkt) return CaseResult::Fail(pkt.error().message);
  if (auto st = ctx.tun.Write(*pkt); !st) return CaseResult::Fail(st.error().message);

  pollfd pfd{fd.get(), POLLIN, 0};
  if (poll(&pfd, 1, kWaitMs) != 1)
    return CaseResult::Fail("the datagram did not reach the socket within " +
                            std::to_string(kWaitMs) + " ms");
  uint8_t buf[256];
  sockaddr_storage from;
  socklen_t from_len = sizeof from;
  ssize_t n = recvfrom(fd.get(), buf, sizeof buf, MSG_DONTWAIT,
                       reinterpret_cast<sockaddr*>(&from), &from_len);
  if (n != ssize_t(d.payload.size()) || memcmp(buf, d.payload.data(), d.payload.size()) != 0)
    return CaseResult::Fail("the socket received other bytes than sent");
  auto peer = FromSockaddr(reinterpret_cast<sockaddr*>(&from), from_len);
  if (!peer || *peer != d.src)
    return CaseResult::Fail("recvfrom() peer " + (peer ? peer->ToString() : peer.error().message) +
                            ", want the balancer " + d.src.ToString());

  uoa_param_map m;
  memset(&m, 0, sizeof m);
  m.af = AF_INET;
  memcpy(&m.saddr, peer->addr.bytes, 4);
  memcpy(&m.daddr, local.addr.bytes, 4);
  m.sport = htons(peer->port);
  m.dport = htons(local.port);
  socklen_t mlen = sizeof m;
  if (getsockopt(fd.get(), IPPROTO_IP, UOA_SO_GET_LOOKUP, &m, &mlen) < 0)
    return CaseResult::Fail(std::string("lookup: ") + strerror(errno) + ", want " +
                            client.ToString());
  in_addr real;
  memcpy(&real, &m.real_saddr, 4);
  Endpoint got{IpAddr::FromV4(real), ntohs(m.real_sport)};
  if (m.real_af != AF_INET || got != client)
    return CaseResult::Fail("lookup gave " + got.ToString() + " (af " + std::to_string(m.real_af) +
                            "), want " + client.ToString());
  return CaseResult::Pass("IPv6 disabled (AF_INET6: EAFNOSUPPORT); uoa loaded; recvfrom() " +
                          peer->ToString() + ", lookup " + got.ToString());
}

}  // namespace

std::vector<Case> Ipv6DisabledCases() {
  // nullopt: each case loads its module itself (after a kernel-log marker).
  return {{"toa", "ipv6_disabled_ipv4_client", std::nullopt, ToaIpv4Client},
          {"uoa", "ipv6_disabled_ipv4_client", std::nullopt, UoaIpv4Client}};
}

}  // namespace sim
