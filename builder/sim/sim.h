// lbsim: the load-balancer simulator and in-guest test driver.
//
// It plays a FullNAT balancer on a TUN device (ARCHITECTURE.md "Guest network"):
// the kernel under test owns the server addresses on `lbsim0`; lbsim writes raw
// IPv4/IPv6 packets from the balancer's address into the TUN and reads the
// kernel's answers back, so every TOA/UOA option crosses the real stack.
//
// Layers (all usable by case files):
//   addresses + checksums + packet builder/parser   (packet.cc, pure, unit-tested)
//   Tun + network setup (netlink, no `ip` command)   (tun.cc)
//   BalancerConnection (TCP handshake from the TUN), server socket helpers (tcp.cc)
//   Modules: finit_module/delete_module with parameters (modules.cc)
//   Modules: also the kernel log, taint and /proc stats counters (modules.cc)
//   Case / Benchmark tables (toa_cases.cc, toa_benchmark.cc, uoa_cases.cc);
//   the runner and CLI (main.cc, not in the library)
// TOA connections as data rows: toa_conn.h (ToaConn, RunToaConn).
//
// Adding cases: a case is a row {module, name, params, run}. `params` are the
// module parameters the runner loads the module with before the case (the
// module is reloaded only when they differ from the loaded ones); `run` gets a
// Context with the TUN, the module control and port allocators and returns
// pass/fail with a one-line detail. TOA cases live in toa_cases.cc
// (ToaCases()); UOA cases in uoa_cases.cc (UoaCases(), UoaBenchmarks()) which
// the UOA module's author owns. Under --no-load only cases with empty
// `params` run. The runner fails a case that taints the kernel (oops/WARN).
// A case must not pass vacuously: a case whose expectation also holds without
// the module (e.g. "peer unchanged") must first prove the module is effective
// (a control connection whose option is honoured).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.h"

namespace sim {

using Bytes = std::vector<uint8_t>;

// How long to wait for the kernel's answer (a packet, an accept, data). Only
// failing cases wait this long; generous because TCG guests on a loaded host
// run slowly.
inline constexpr int kWaitMs = 10000;

// ---------------------------------------------------------------- addresses

struct IpAddr {
  int family = AF_INET;     // AF_INET or AF_INET6
  uint8_t bytes[16] = {};   // first 4 used for AF_INET, network order

  static util::Result<IpAddr> Parse(const std::string& text);
  static IpAddr FromV4(const in_addr& a);
  static IpAddr FromV6(const in6_addr& a);
  size_t size() const { return family == AF_INET ? 4 : 16; }
  bool is_v4() const { return family == AF_INET; }
  std::string ToString() const;
  // ::ffff:a.b.c.d for an IPv4 address (as a dual-stack socket reports it).
  IpAddr V4Mapped() const;
  bool operator==(const IpAddr& o) const;
  bool operator!=(const IpAddr& o) const { return !(*this == o); }
};

// For constants in case tables: aborts with a message on a typo.
IpAddr Ip(const char* text);

struct Endpoint {
  IpAddr addr;
  uint16_t port = 0;  // host order
  std::string ToString() const;  // 1.2.3.4:80 or [2001:db8::1]:80
  bool operator==(const Endpoint& o) const { return addr == o.addr && port == o.port; }
  bool operator!=(const Endpoint& o) const { return !(*this == o); }
};

socklen_t ToSockaddr(const Endpoint& e, sockaddr_storage* out);
util::Result<Endpoint> FromSockaddr(const sockaddr* sa, socklen_t len);

// The fixed guest network (ARCHITECTURE.md "Guest network").
namespace net {
inline constexpr char kTunName[] = "lbsim0";
IpAddr ServerV4();    // 198.51.100.1/24
IpAddr ServerV6();    // 2001:db8:100::1/64
IpAddr BalancerV4();  // 198.51.100.2
IpAddr BalancerV6();  // 2001:db8:100::2
IpAddr ClientV4(uint32_t index);  // 203.0.113.(1 + index % 254)
IpAddr ClientV6(uint32_t index);  // 2001:db8:200::(index + 1), any index
}  // namespace net

// ---------------------------------------------------------------- checksums

// One's-complement sum (RFC 1071), unfolded so pieces can be chained.
uint32_t ChecksumAdd(uint32_t sum, const uint8_t* data, size_t len);
uint16_t ChecksumFold(uint32_t sum);  // folds and complements
uint16_t InternetChecksum(const uint8_t* data, size_t len);
// TCP/UDP checksum over the IPv4 or IPv6 pseudo-header plus the L4 bytes
// (with the checksum field as it is in `l4`: zero it to compute, keep it to verify -> 0).
uint16_t TransportChecksum(const IpAddr& src, const IpAddr& dst, uint8_t protocol,
                           const uint8_t* l4, size_t len);

// ---------------------------------------------------------------- packets

namespace tcpflag {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
}

struct TcpSegment {
  Endpoint src, dst;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 65535;
  Bytes options;  // raw option bytes; padded with zeros (EOL) to a multiple of 4, max 40
  Bytes payload;
};

// An IP packet: IPv4 header (+ options) or IPv6 header (+ destination-options
// header), then `body` whose protocol is `protocol`.
struct IpPacketSpec {
  IpAddr src, dst;
  uint8_t protocol = 0;
  uint8_t ttl = 64;
  Bytes ipv4_options;       // raw IPv4 options, zero-padded to a multiple of 4 (max 40)
  Bytes ipv6_dest_options;  // option TLVs of a destination-options header; padded
                            // with Pad1/PadN to a multiple of 8 (RFC 8200)
};

struct UdpDatagram {
  Endpoint src, dst;
  Bytes payload;
  Bytes ipv4_options;
  Bytes ipv6_dest_options;
  // Bytes placed between the IP header(s) and the UDP header, announced as
  // `shim_protocol` (e.g. a private protocol 248 header whose own "next
  // protocol" field says UDP). Empty: plain UDP. The UDP checksum always uses
  // protocol 17 in the pseudo-header (what the receiver sees after stripping).
  uint8_t shim_protocol = 0;
  Bytes shim;
};

util::Result<Bytes> BuildIp(const IpPacketSpec& spec, const Bytes& body);
util::Result<Bytes> BuildTcp(const TcpSegment& seg, const Bytes& ipv4_options = {});
util::Result<Bytes> BuildUdp(const UdpDatagram& d);

// Options a balancer sends.
Bytes ToaOption(const Endpoint& client, uint8_t kind = 254);  // len 8 (IPv4) or 20 (IPv6)
Bytes MssOption(uint16_t mss = 1460);                         // kind 2 len 4
Bytes Concat(std::initializer_list<Bytes> parts);

struct ParsedPacket {
  IpAddr src, dst;
  uint8_t protocol = 0;  // L4 protocol after any IPv6 extension headers
  bool checksums_ok = false;  // IPv4 header and TCP/UDP checksum
  Bytes ipv4_options;
  uint16_t sport = 0, dport = 0;
  // TCP
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  Bytes tcp_options;
  Bytes payload;
  bool Is(uint8_t proto, const Endpoint& from, const Endpoint& to) const;
};
// Parses IPv4/IPv6 + TCP/UDP (other protocols: header fields only).
util::Result<ParsedPacket> ParsePacket(const uint8_t* data, size_t len);

// ---------------------------------------------------------------- TUN + network

class Tun {
 public:
  // Creates (or attaches to) TUN device `name` without packet info.
  static util::Result<Tun> Open(const std::string& name = net::kTunName);
  Tun(Tun&& o) noexcept;
  Tun& operator=(Tun&& o) noexcept;
  Tun(const Tun&) = delete;
  ~Tun();

  const std::string& name() const { return name_; }
  int fd() const { return fd_; }
  util::Status Write(const Bytes& packet);
  // Reads packets until one satisfies `match` or `timeout_ms` passes. Other
  // packets (IPv6 router solicitations, other connections) are dropped.
  util::Result<ParsedPacket> ReadMatching(const std::function<bool(const ParsedPacket&)>& match,
                                          int timeout_ms);
  void Drain();  // drops everything queued

 private:
  Tun(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_ = -1;
  std::string name_;
};

// Link up + 198.51.100.1/24 + 2001:db8:100::1/64 (IFA_F_NODAD) on the TUN;
// without the IPv6 address when `ipv6` is false (a kernel booted with
// ipv6.disable=1 has no IPv6 to configure).
util::Status ConfigureGuestNetwork(const Tun& tun, bool ipv6 = true);
util::Status AddAddress(const std::string& ifname, const IpAddr& addr, int prefix_len);
util::Status SetLinkUp(const std::string& ifname);
// unshare(CLONE_NEWNET) and bring `lo` up (host selftest).
util::Status EnterFreshNetns();

// ---------------------------------------------------------------- TCP

// A file descriptor that closes itself.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset();
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// The balancer side of one TCP connection, spoken through the TUN.
class BalancerConnection {
 public:
  BalancerConnection(Tun& tun, Endpoint balancer, Endpoint server);
  // SYN with `syn_options` (default MSS 1460), then waits for the SYN-ACK.
  util::Status Handshake(const Bytes& syn_options = MssOption(), int timeout_ms = kWaitMs);
  util::Status SendAck(const Bytes& options = {});  // the ACK completing the handshake
  util::Status SendData(const Bytes& payload, const Bytes& options = {});
  util::Status SendRst();
  // Waits until the server has acknowledged everything sent so far.
  util::Status AwaitAcked(int timeout_ms = kWaitMs);
  const Endpoint& balancer() const { return balancer_; }
  const Endpoint& server() const { return server_; }

 private:
  Tun& tun_;
  Endpoint balancer_, server_;
  uint32_t snd_nxt_ = 0, rcv_nxt_ = 0;
};

// Listening socket on `where`. dual_stack: AF_INET6 on :: with IPV6_V6ONLY=0
// (port taken from `where`).
util::Result<Fd> Listen(const Endpoint& where, bool dual_stack = false, int backlog = 128);
// accept() within the timeout; `peer` receives accept()'s address.
util::Result<Fd> AcceptWithin(int listen_fd, int timeout_ms, Endpoint* peer);
util::Result<Endpoint> PeerName(int fd);
util::Result<Endpoint> SockName(int fd);
util::Result<Bytes> RecvWithin(int fd, size_t max, int timeout_ms);
// getsockopt(fd, IPPROTO_IP, 4096 /* TOA_SO_GET_LOOKUP */) -> {in6_addr, be16 port}.
util::Result<Endpoint> Nat64Lookup(int fd);
// close() with SO_LINGER {1, 0}: the kernel sends RST and frees the socket at once.
void CloseWithReset(Fd& fd);

// ---------------------------------------------------------------- modules

class Modules {
 public:
  // no_load: never load/unload; modules must already be loaded (host selftest).
  Modules(std::string ko_dir, bool no_load) : ko_dir_(std::move(ko_dir)), no_load_(no_load) {}
  bool no_load() const { return no_load_; }
  // Loaded with exactly `params` (reloads when loaded with other parameters).
  util::Status Ensure(const std::string& name, const std::string& params);
  util::Status Load(const std::string& name, const std::string& params);
  util::Status Unload(const std::string& name);
  util::Status UnloadIfLoaded(const std::string& name);
  static bool IsLoaded(const std::string& name);  // per /proc/modules

 private:
  std::string ko_dir_;
  bool no_load_;
  std::map<std::string, std::string> loaded_params_;  // what we loaded, by module
};

// Kernel taint bits D (oops) and W (warning) from /proc/sys/kernel/tainted.
unsigned long OopsOrWarnTaint();
// The kernel log (klogctl READ_ALL), for "module loaded" messages.
std::string KernelLog();
// "name number" lines of a stats file such as /proc/net/toa_stats; other
// lines (per-CPU rows) are skipped.
util::Result<std::map<std::string, uint64_t>> ReadCounters(const std::string& path);

// ---------------------------------------------------------------- cases

struct CaseResult {
  bool pass = false;
  std::string detail;
  // The case cannot hold on this kernel for a reason in `detail` (a feature
  // it lacks): reported as "not_applicable", neither passed nor failed.
  bool not_applicable = false;
  static CaseResult Pass(std::string d) { return {true, std::move(d)}; }
  static CaseResult Fail(std::string d) { return {false, std::move(d)}; }
  static CaseResult NotApplicable(std::string why) { return {true, std::move(why), true}; }
};

struct Context {
  Tun& tun;
  Modules& modules;
  uint16_t NextBalancerPort();  // distinct source ports for balancer connections
  uint16_t NextServerPort();    // distinct listening ports
  uint16_t balancer_port = 20000;
  uint16_t server_port = 8000;
  // Benchmark knobs (lbsim bench --rounds/--connections).
  int bench_rounds = 3;
  int bench_connections = 2000;
};

// Spaces the iterations of a background load evenly at `per_second`. The
// rmmod/insmod cases need traffic flowing through every removal, not a
// saturated vCPU: a saturated guest starves the kernel threads that module
// removal waits for (ftrace and RCU grace periods) and the host cores other
// guests of a matrix run need.
class Pacer {
 public:
  explicit Pacer(int per_second)
      : step_(std::chrono::nanoseconds(1'000'000'000 / per_second)),
        next_(std::chrono::steady_clock::now()) {}
  // Sleeps until the next slot; a late caller is not made to catch up.
  void Wait();

 private:
  std::chrono::nanoseconds step_;
  std::chrono::steady_clock::time_point next_;
};

struct Case {
  std::string module;  // "toa" or "uoa"
  std::string name;
  // Module parameters to load with before `run`; nullopt: the case loads and
  // unloads the module itself (skipped under --no-load).
  std::optional<std::string> params;
  std::function<CaseResult(Context&)> run;
};

struct Benchmark {
  std::string module;
  std::string name;
  std::function<util::Result<nlohmann::json>(Context&)> run;
};

// Benchmark helpers (bench.cc).
double Median(std::vector<double> v);
// `v` rounded to 1/scale.
nlohmann::json Rounded(const std::vector<double>& v, double scale = 1);
struct LoadedVsNot {
  std::vector<double> not_loaded, loaded;
  std::vector<double> ratios;  // loaded / not loaded, per round
  // rounds, each figure, the ratios and the medians.
  nlohmann::json ToJson() const;
};
// Runs `measure` `rounds` times with `module` out and in, alternating ABBA
// within the one boot so that slow drift cancels.
util::Result<LoadedVsNot> AlternateLoaded(Context& ctx, const std::string& module, int rounds,
                                          const std::function<util::Result<double>(bool loaded)>& measure);

std::vector<Case> ToaCases();
std::vector<Case> UoaCases();            // uoa_cases.cc
std::vector<Benchmark> ToaBenchmarks();
std::vector<Benchmark> UoaBenchmarks();  // uoa_cases.cc
// `lbsim run --ipv6-disabled`: the cases of the lab's short boot with
// ipv6.disable=1 (ipv6_disabled_cases.cc); each first checks that IPv6 really
// is disabled in the guest.
std::vector<Case> Ipv6DisabledCases();

}  // namespace sim
