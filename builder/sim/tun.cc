// The TUN device and the guest network set up through ioctls and rtnetlink
// (the guest has no `ip` command).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sim/sim.h"

namespace sim {
namespace {

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

long long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

}  // namespace

util::Result<Tun> Tun::Open(const std::string& name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    // A bare devtmpfs may lack the node when tun was loaded before mounting.
    mkdir("/dev/net", 0755);
    if (mknod("/dev/net/tun", S_IFCHR | 0666, makedev(10, 200)) == 0)
      fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  }
  if (fd < 0)
    return util::MakeError(Errno("cannot open /dev/net/tun (is the tun module loaded?)"));
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    std::string e = Errno("TUNSETIFF " + name);
    close(fd);
    return util::MakeError(e);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return Tun(fd, name);
}

Tun::Tun(Tun&& o) noexcept : fd_(o.fd_), name_(std::move(o.name_)) { o.fd_ = -1; }

Tun& Tun::operator=(Tun&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    name_ = std::move(o.name_);
    o.fd_ = -1;
  }
  return *this;
}

Tun::~Tun() {
  if (fd_ >= 0) close(fd_);
}

util::Status Tun::Write(const Bytes& packet) {
  ssize_t n = write(fd_, packet.data(), packet.size());
  if (n < 0) return util::MakeError(Errno("write to TUN " + name_));
  if (size_t(n) != packet.size()) return util::MakeError("short write to TUN " + name_);
  return util::Ok{};
}

util::Result<ParsedPacket> Tun::ReadMatching(
    const std::function<bool(const ParsedPacket&)>& match, int timeout_ms) {
  long long deadline = NowMs() + timeout_ms;
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n > 0) {
      auto p = ParsePacket(buf, size_t(n));
      if (p && match(*p)) return p;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return util::MakeError(Errno("read from TUN " + name_));
    long long left = deadline - NowMs();
    if (left <= 0) return util::MakeError("no matching packet within " +
                                          std::to_string(timeout_ms) + " ms");
    pollfd pfd{fd_, POLLIN, 0};
    poll(&pfd, 1, int(left));
  }
}

void Tun::Drain() {
  uint8_t buf[65536];
  while (read(fd_, buf, sizeof buf) > 0) {
  }
}

util::Status SetLinkUp(const std::string& ifname) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return util::MakeError(Errno("socket"));
  ifreq ifr{};
  strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  std::string e = rc < 0 ? Errno("bring " + ifname + " up") : "";
  close(s);
  if (rc < 0) return util::MakeError(e);
  return util::Ok{};
}

util::Status AddAddress(const std::string& ifname, const IpAddr& addr, int prefix_len) {
  int index = 0;
  {
    int q = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (q >= 0 && ioctl(q, SIOCGIFINDEX, &ifr) == 0) index = ifr.ifr_ifindex;
    if (q >= 0) close(q);
  }
  if (index <= 0) return util::MakeError(Errno("no interface " + ifname));
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return util::MakeError(Errno("netlink socket"));

  struct {
    nlmsghdr nh;
    ifaddrmsg ifa;
    char attrs[64];
  } req{};
  req.nh.nlmsg_type = RTM_NEWADDR;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
  req.nh.nlmsg_seq = 1;
  req.ifa.ifa_family = uint8_t(addr.family);
  req.ifa.ifa_prefixlen = uint8_t(prefix_len);
  // No duplicate address detection: the address must be usable at once.
  req.ifa.ifa_flags = IFA_F_NODAD | IFA_F_PERMANENT;
  req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  req.ifa.ifa_index = uint32_t(index);
  size_t len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  for (unsigned short type : {IFA_LOCAL, IFA_ADDRESS}) {
    auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(len));
    rta->rta_type = type;
    rta->rta_len = uint16_t(RTA_LENGTH(addr.size()));
    memcpy(RTA_DATA(rta), addr.bytes, addr.size());
    len = NLMSG_ALIGN(len) + RTA_ALIGN(rta->rta_len);
  }
  req.nh.nlmsg_len = uint32_t(len);

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::string err;
  if (sendto(s, &req, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    err = Errno("netlink RTM_NEWADDR");
  } else {
    char reply[4096];
    ssize_t n = recv(s, reply, sizeof reply, 0);
    auto* nh = reinterpret_cast<nlmsghdr*>(reply);
    if (n < 0) {
      err = Errno("netlink reply");
    } else if (n >= ssize_t(NLMSG_LENGTH(sizeof(nlmsgerr))) && nh->nlmsg_type == NLMSG_ERROR) {
      int e = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(nh))->error;
      if (e != 0) {
        errno = -e;
        err = Errno("add " + addr.ToString() + "/" + std::to_string(prefix_len) + " to " +
                    ifname);
      }
    } else {
      err = "unexpected netlink reply adding " + addr.ToString();
    }
  }
  close(s);
  if (!err.empty()) return util::MakeError(err);
  return util::Ok{};
}

util::Status ConfigureGuestNetwork(const Tun& tun, bool ipv6) {
  if (auto st = AddAddress(tun.name(), net::ServerV4(), 24); !st) return st;
  if (ipv6)
    if (auto st = AddAddress(tun.name(), net::ServerV6(), 64); !st) return st;
  return SetLinkUp(tun.name());
}

util::Status EnterFreshNetns() {
  if (unshare(CLONE_NEWNET) < 0)
    return util::MakeError(Errno("unshare(CLONE_NEWNET) (run as root)"));
  return SetLinkUp("lo");
}

}  // namespace sim
