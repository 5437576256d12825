// nf_tables over netlink: one batch (begin, new table, new base chain, new
// rule, end), each message acknowledged. Layout per
// include/uapi/linux/netfilter/nf_tables.h and nfnetlink.h.
#include "sim/nft.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace sim {
namespace {

// A netlink message being built: header, nfgenmsg, attributes (nested ones
// by Begin/End).
class Msg {
 public:
  Msg(uint16_t type, uint16_t flags, uint8_t family, uint32_t seq, uint16_t res_id = 0) {
    buf_.resize(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)));
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    h->nlmsg_seq = seq;
    auto* g = reinterpret_cast<nfgenmsg*>(buf_.data() + NLMSG_HDRLEN);
    g->nfgen_family = family;
    g->version = NFNETLINK_V0;
    g->res_id = htons(res_id);
  }
  void Put(uint16_t type, const void* data, size_t len) {
    size_t at = buf_.size();
    buf_.resize(at + NLA_ALIGN(NLA_HDRLEN + len));
    auto* a = reinterpret_cast<nlattr*>(buf_.data() + at);
    a->nla_type = type;
    a->nla_len = uint16_t(NLA_HDRLEN + len);
    if (len) memcpy(buf_.data() + at + NLA_HDRLEN, data, len);
  }
  void PutStr(uint16_t type, const std::string& s) { Put(type, s.c_str(), s.size() + 1); }
  void PutU32(uint16_t type, uint32_t host) {
    uint32_t be = htonl(host);
    Put(type, &be, 4);
  }
  size_t Begin(uint16_t type) {
    size_t at = buf_.size();
    Put(uint16_t(type | NLA_F_NESTED), nullptr, 0);
    return at;
  }
  void End(size_t at) {
    reinterpret_cast<nlattr*>(buf_.data() + at)->nla_len = uint16_t(buf_.size() - at);
  }
  std::vector<uint8_t> Done() {
    reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = uint32_t(buf_.size());
    return buf_;
  }

 private:
  std::vector<uint8_t> buf_;
};

uint16_t NftType(int msg) { return uint16_t((NFNL_SUBSYS_NFTABLES << 8) | msg); }

constexpr uint16_t kCreate = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;

void Expr(Msg& m, const char* name, const std::function<void(Msg&)>& data) {
  size_t elem = m.Begin(NFTA_LIST_ELEM);
  m.PutStr(NFTA_EXPR_NAME, name);
  size_t d = m.Begin(NFTA_EXPR_DATA);
  data(m);
  m.End(d);
  m.End(elem);
}

void CmpEq(Msg& m, const void* value, size_t len) {
  Expr(m, "cmp", [&](Msg& e) {
    e.PutU32(NFTA_CMP_SREG, NFT_REG_1);
    e.PutU32(NFTA_CMP_OP, NFT_CMP_EQ);
    size_t v = e.Begin(NFTA_CMP_DATA);
    e.Put(NFTA_DATA_VALUE, value, len);
    e.End(v);
  });
}

// Sends the messages as one batch and waits for every acknowledgement.
util::Status SendBatch(const std::vector<std::vector<uint8_t>>& msgs) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) {
    int err = errno;
    return util::MakeError(std::string(err == EPROTONOSUPPORT ? "nf_tables unavailable: " : "") +
                           "socket(NETLINK_NETFILTER): " + strerror(err));
  }
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  std::vector<uint8_t> all;
  for (const auto& m : msgs) all.insert(all.end(), m.begin(), m.end());
  if (sendto(fd, all.data(), all.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return util::MakeError(std::string("nf_tables batch: sendto: ") + strerror(err));
  }
  // An ack (or error) for each message with NLM_F_ACK: all but begin/end.
  size_t want = msgs.size() - 2, acks = 0;
  std::vector<uint8_t> buf(16384);
  while (acks < want) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 3000) <= 0) {
      close(fd);
      return util::MakeError("nf_tables batch: no answer from the kernel within 3 s");
    }
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      int err = errno;
      close(fd);
      return util::MakeError(std::string("nf_tables batch: recv: ") + strerror(err));
    }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, size_t(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      auto* e = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h));
      if (e->error) {
        close(fd);
        return util::MakeError("nf_tables batch: message " + std::to_string(h->nlmsg_seq) +
                               " refused: " + strerror(-e->error));
      }
      acks++;
    }
  }
  close(fd);
  return util::Ok{};
}

std::vector<uint8_t> BatchMark(int type, uint32_t seq) {
  return Msg(uint16_t(type), NLM_F_REQUEST, AF_UNSPEC, seq, NFNL_SUBSYS_NFTABLES).Done();
}

}  // namespace

util::Result<NftUdpDropRule> NftUdpDropRule::Install(const std::string& table, uint16_t port) {
  std::vector<std::vector<uint8_t>> msgs;
  uint32_t seq = 1;
  msgs.push_back(BatchMark(NFNL_MSG_BATCH_BEGIN, seq++));
  {
    Msg m(NftType(NFT_MSG_NEWTABLE), kCreate, NFPROTO_INET, seq++);
    m.PutStr(NFTA_TABLE_NAME, table);
    msgs.push_back(m.Done());
  }
  {
    Msg m(NftType(NFT_MSG_NEWCHAIN), kCreate, NFPROTO_INET, seq++);
    m.PutStr(NFTA_CHAIN_TABLE, table);
    m.PutStr(NFTA_CHAIN_NAME, "input");
    size_t hook = m.Begin(NFTA_CHAIN_HOOK);
    m.PutU32(NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_IN);
    m.PutU32(NFTA_HOOK_PRIORITY, 0);
    m.End(hook);
    m.PutU32(NFTA_CHAIN_POLICY, NF_ACCEPT);
    m.PutStr(NFTA_CHAIN_TYPE, "filter");
    msgs.push_back(m.Done());
  }
  {
    Msg m(NftType(NFT_MSG_NEWRULE), uint16_t(kCreate | NLM_F_APPEND), NFPROTO_INET, seq++);
    m.PutStr(NFTA_RULE_TABLE, table);
    m.PutStr(NFTA_RULE_CHAIN, "input");
    size_t exprs = m.Begin(NFTA_RULE_EXPRESSIONS);
    Expr(m, "meta", [](Msg& e) {
      e.PutU32(NFTA_META_DREG, NFT_REG_1);
      e.PutU32(NFTA_META_KEY, NFT_META_L4PROTO);
    });
    uint8_t udp = IPPROTO_UDP;
    CmpEq(m, &udp, 1);
    Expr(m, "payload", [](Msg& e) {
      e.PutU32(NFTA_PAYLOAD_DREG, NFT_REG_1);
      e.PutU32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
      e.PutU32(NFTA_PAYLOAD_OFFSET, 2);  // udphdr.dest
      e.PutU32(NFTA_PAYLOAD_LEN, 2);
    });
    uint16_t dport = htons(port);
    CmpEq(m, &dport, 2);
    Expr(m, "immediate", [](Msg& e) {
      e.PutU32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
      size_t data = e.Begin(NFTA_IMMEDIATE_DATA);
      size_t verdict = e.Begin(NFTA_DATA_VERDICT);
      e.PutU32(NFTA_VERDICT_CODE, NF_DROP);
      e.End(verdict);
      e.End(data);
    });
    m.End(exprs);
    msgs.push_back(m.Done());
  }
  msgs.push_back(BatchMark(NFNL_MSG_BATCH_END, seq++));
  if (auto st = SendBatch(msgs); !st) return st.error();
  return NftUdpDropRule(table);
}

util::Status NftUdpDropRule::Remove() {
  if (table_.empty()) return util::Ok{};
  std::vector<std::vector<uint8_t>> msgs;
  msgs.push_back(BatchMark(NFNL_MSG_BATCH_BEGIN, 1));
  Msg m(NftType(NFT_MSG_DELTABLE), NLM_F_REQUEST | NLM_F_ACK, NFPROTO_INET, 2);
  m.PutStr(NFTA_TABLE_NAME, table_);
  msgs.push_back(m.Done());
  msgs.push_back(BatchMark(NFNL_MSG_BATCH_END, 3));
  table_.clear();
  return SendBatch(msgs);
}

NftUdpDropRule::~NftUdpDropRule() { (void)Remove(); }

}  // namespace sim
