// A minimal nftables client for the guest (busybox has no `nft`): it speaks
// nf_tables' netlink protocol (NETLINK_NETFILTER) directly, in the caller's
// network namespace, to install the firewall rules the UOA firewall case needs.
#pragma once

#include <cstdint>
#include <string>

#include "util/result.h"

namespace sim {

// An `inet` table `name` with a filter chain on the input hook (priority 0,
// policy accept) holding one rule: `meta l4proto udp udp dport <port> drop`.
// The table is deleted when the object goes (or by Remove()).
class NftUdpDropRule {
 public:
  // EPROTONOSUPPORT from the netlink socket (no nf_tables in the kernel) is
  // reported as an error whose message starts with "nf_tables unavailable".
  static util::Result<NftUdpDropRule> Install(const std::string& table, uint16_t port);
  NftUdpDropRule(NftUdpDropRule&& o) noexcept : table_(std::move(o.table_)) { o.table_.clear(); }
  NftUdpDropRule(const NftUdpDropRule&) = delete;
  NftUdpDropRule& operator=(const NftUdpDropRule&) = delete;
  NftUdpDropRule& operator=(NftUdpDropRule&&) = delete;
  ~NftUdpDropRule();
  util::Status Remove();

 private:
  explicit NftUdpDropRule(std::string table) : table_(std::move(table)) {}
  std::string table_;
};

}  // namespace sim
