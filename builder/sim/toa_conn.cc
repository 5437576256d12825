#include "sim/toa_conn.h"

namespace sim {

CaseResult RunToaConn(Context& ctx, const ToaConn& conn) {
  bool v6_path = conn.listener == Listener::kV6;
  bool dual = conn.listener == Listener::kDualStack;
  Endpoint server{v6_path ? net::ServerV6() : net::ServerV4(), ctx.NextServerPort()};
  Endpoint bal{conn.balancer ? *conn.balancer : v6_path ? net::BalancerV6() : net::BalancerV4(),
               ctx.NextBalancerPort()};
  auto l = Listen(server, dual);
  if (!l) return CaseResult::Fail(l.error().message);

  BalancerConnection bc(ctx.tun, bal, server);
  if (auto st = bc.Handshake(conn.syn_options); !st) return CaseResult::Fail(st.error().message);
  if (auto st = bc.SendAck(conn.ack_options); !st) return CaseResult::Fail(st.error().message);
  const Bytes first{'l', 'b', 's', 'i', 'm', '-', '1'}, second{'l', 'b', 's', 'i', 'm', '-', '2'};
  if (auto st = bc.SendData(first, conn.data_options); !st)
    return CaseResult::Fail(st.error().message);

  Endpoint accepted;
  auto fd = AcceptWithin(l->get(), kWaitMs, &accepted);
  if (!fd) return CaseResult::Fail(fd.error().message);
  auto got = RecvWithin(fd->get(), 64, kWaitMs);
  if (!got || *got != first)
    return CaseResult::Fail("server did not receive the first data segment intact: " +
                            (got ? std::to_string(got->size()) + " bytes" : got.error().message));
  if (conn.later_data_options) {
    if (auto st = bc.SendData(second, *conn.later_data_options); !st)
      return CaseResult::Fail(st.error().message);
    got = RecvWithin(fd->get(), 64, kWaitMs);
    if (!got || *got != second)
      return CaseResult::Fail("server did not receive the second data segment intact");
  }
  auto peer = PeerName(fd->get());
  if (!peer) return CaseResult::Fail(peer.error().message);

  auto mapped = [&](const Endpoint& e) {
    return dual ? Endpoint{e.addr.V4Mapped(), e.port} : e;
  };
  Endpoint want = conn.expect == Expect::kClient ? mapped(conn.client) : mapped(bal);
  std::string seen = "accept()=" + accepted.ToString() + " getpeername()=" + peer->ToString();
  std::optional<Endpoint> lookup;
  std::string lookup_error;
  if (conn.expect == Expect::kNat64) {
    auto r = Nat64Lookup(fd->get());
    if (r)
      lookup = *r;
    else
      lookup_error = r.error().message;
    seen += " getsockopt(4096)=" + (lookup ? lookup->ToString() : lookup_error);
  }
  CloseWithReset(*fd);

  const char* what = conn.expect == Expect::kClient ? "the client"
                     : conn.expect == Expect::kNat64 ? "the balancer (NAT64)"
                                                     : "the balancer (option ignored)";
  if (accepted != want || *peer != want)
    return CaseResult::Fail(seen + "; want " + what + " " + want.ToString());
  if (conn.expect == Expect::kNat64 && (!lookup || *lookup != conn.client))
    return CaseResult::Fail(seen + "; want getsockopt(4096) = " + conn.client.ToString());
  return CaseResult::Pass(seen);
}

}  // namespace sim
