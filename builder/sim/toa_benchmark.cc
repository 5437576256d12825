// TOA benchmarks (issue 3), meant for a guest booted with
// `-icount shift=0,sleep=off`, where the guest clock counts instructions
// (one guest ns = one instruction), so figures repeat within ~1%.
//  - loopback_connect_rate: connect + accept + getpeername over 127.0.0.1,
//    module not loaded vs loaded, alternating (ABBA) `rounds` times; prints
//    each figure, the per-round ratios and their median.
//  - tun_toa_connection_cost: guest ns (= instructions under icount) per
//    connection whose ACK carries a TOA option, through the TUN, module
//    loaded vs not loaded; includes lbsim's own packet work.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "sim/sim.h"

namespace sim {
namespace {

double NowSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Connections per second over loopback: connect + accept + getpeername.
util::Result<double> LoopbackRate(uint16_t port, int connections) {
  Endpoint where{Ip("127.0.0.1"), port};
  auto l = Listen(where, false, 1024);
  if (!l) return l.error();
  sockaddr_storage ss;
  socklen_t len = ToSockaddr(where, &ss);
  double start = NowSeconds();
  for (int i = 0; i < connections; i++) {
    Fd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(c.get(), reinterpret_cast<sockaddr*>(&ss), len) < 0)
      return util::MakeError("loopback connect failed at connection " + std::to_string(i));
    auto a = AcceptWithin(l->get(), kWaitMs, nullptr);
    if (!a) return a.error();
    auto peer = PeerName(a->get());
    if (!peer) return peer.error();
    // RST instead of FIN: no TIME_WAIT pile-up across thousands of connections.
    CloseWithReset(*a);
    CloseWithReset(c);
  }
  return connections / (NowSeconds() - start);
}

util::Result<nlohmann::json> LoopbackConnectRate(Context& ctx) {
  uint16_t port = ctx.NextServerPort();
  int n = ctx.bench_connections;
  // Warm caches and the listener path once before measuring.
  if (auto w = LoopbackRate(port, std::max(50, n / 10)); !w) return w.error();
  auto r = AlternateLoaded(ctx, "toa", ctx.bench_rounds, [&](bool) { return LoopbackRate(port, n); });
  if (!r) return r.error();
  nlohmann::json j = r->ToJson();
  j["unit"] = "connections per guest second";
  j["connections_per_figure"] = n;
  return j;
}

// Guest ns per TUN connection whose ACK carries a TOA option.
util::Result<double> TunToaCost(Context& ctx, uint16_t port, int connections, bool loaded) {
  Endpoint server{net::ServerV4(), port};
  auto l = Listen(server, false, 1024);
  if (!l) return l.error();
  double start = NowSeconds();
  for (int i = 0; i < connections; i++) {
    Endpoint client{net::ClientV4(uint32_t(i)), uint16_t(30000 + i % 30000)};
    Endpoint bal{net::BalancerV4(), ctx.NextBalancerPort()};
    BalancerConnection bc(ctx.tun, bal, server);
    if (auto st = bc.Handshake(); !st) return st.error();
    if (auto st = bc.SendAck(ToaOption(client)); !st) return st.error();
    Endpoint accepted;
    auto a = AcceptWithin(l->get(), kWaitMs, &accepted);
    if (!a) return a.error();
    auto peer = PeerName(a->get());
    if (!peer) return peer.error();
    if (loaded && *peer != client)
      return util::MakeError("module loaded but the peer is " + peer->ToString() +
                             ", not the client " + client.ToString() + ": not measuring TOA");
    CloseWithReset(*a);
  }
  return (NowSeconds() - start) * 1e9 / connections;
}

util::Result<nlohmann::json> TunToaConnectionCost(Context& ctx) {
  uint16_t port = ctx.NextServerPort();
  int n = std::max(10, ctx.bench_connections / 4);
  ctx.tun.Drain();
  if (auto w = TunToaCost(ctx, port, std::max(10, n / 10), false); !w) return w.error();
  auto r = AlternateLoaded(ctx, "toa", ctx.bench_rounds, [&](bool loaded) {
    ctx.tun.Drain();
    return TunToaCost(ctx, port, n, loaded);
  });
  if (!r) return r.error();
  // The ratios of a cost are of no interest; the difference is.
  nlohmann::json j = r->ToJson();
  j.erase("ratios");
  j.erase("median_ratio");
  j["unit"] = "guest ns per connection (= instructions under -icount shift=0)";
  j["what"] = "SYN, SYN-ACK, ACK with TOA option, accept, getpeername, RST; lbsim included";
  j["connections_per_figure"] = n;
  j["module_cost_per_connection"] = std::round(Median(r->loaded) - Median(r->not_loaded));
  return j;
}

}  // namespace

std::vector<Benchmark> ToaBenchmarks() {
  return {{"toa", "loopback_connect_rate", LoopbackConnectRate},
          {"toa", "tun_toa_connection_cost", TunToaConnectionCost}};
}

}  // namespace sim
