// One TOA connection as a row of data: the balancer's handshake through the
// TUN, the option bytes in the ACK and/or the first data segment, and what
// the server's accept()/getpeername()/getsockopt(4096) must report.
#pragma once

#include <optional>

#include "sim/sim.h"

namespace sim {

enum class Listener { kV4, kV6, kDualStack };  // kDualStack: AF_INET6 [::], V6ONLY=0, IPv4 path
enum class Expect {
  kClient,    // accept() and getpeername() report `client` (::ffff:a.b.c.d on dual-stack)
  kBalancer,  // both report the balancer: the option was ignored
  kNat64,     // both report the balancer; getsockopt(IPPROTO_IP, 4096) reports `client`
};

struct ToaConn {
  Listener listener = Listener::kV4;
  std::optional<IpAddr> balancer;  // default: 198.51.100.2 / 2001:db8:100::2 by path
  Endpoint client;                 // the address the option carries (and the expectation)
  Bytes syn_options = MssOption();
  Bytes ack_options;                        // in the ACK completing the handshake
  Bytes data_options;                       // in the first data segment
  std::optional<Bytes> later_data_options;  // a second data segment, sent after the
                                            // application has read the first
  Expect expect = Expect::kClient;
};

CaseResult RunToaConn(Context& ctx, const ToaConn& conn);

}  // namespace sim
