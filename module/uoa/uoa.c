// SPDX-License-Identifier: GPL-2.0
/*
 * UOA (UDP Option Address): real client addresses for UDP servers behind
 * a FullNAT load balancer.
 *
 * The balancer puts the client's address and port into the datagram (an
 * IPv4 option, an IPv6 destination option, or a private protocol 248
 * header in front of UDP; see ../common/uoa_opt.h). Only datagrams that
 * carry one pay anything: an ftrace callback on the kernel's IPv4 option
 * compiler and its IPv6 destination-options handler (both run only for
 * packets with options), and a handler for IP protocol 248 that
 * removes the private header and receives the datagram again as UDP, so
 * netfilter (PREROUTING, conntrack, INPUT) sees it as the UDP datagram it
 * is. No netfilter hook: one would put every packet of the host on
 * netfilter's slow path. A datagram is recorded only when it comes from a
 * trusted source and a local UDP socket will receive it; each record,
 * in the namespace of the receiving device, maps
 *
 *	(netns, af, saddr, daddr, sport, dport as the socket sees them)
 *		-> (real af, address, port)
 *
 * in a hash table that applications query with
 * getsockopt(IPPROTO_IP, UOA_SO_GET_LOOKUP) (see uoa.h), each for the
 * datagrams of its own socket's local address and port only.
 *
 * Map: one global table (buckets are RCU lists, writers take a per-bucket
 * spinlock), each network namespace keeps its own entries on an age list
 * (oldest first) under its own lock, with its own count, bound and stats.
 * Lookups and datagrams without an option take no lock. When a namespace
 * holds map_max entries, a new entry evicts the oldest one: the newest
 * client is always served, memory stays bounded (counted as "evicted").
 * All namespaces together hold at most map_max_total entries: beyond it a
 * namespace evicts its own oldest entry, or records nothing ("full").
 * Entries older than map_timeout seconds are not returned and are freed by
 * a per-namespace delayed work.
 */
#define pr_fmt(fmt) "UOA: " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/jhash.h>
#include <linux/random.h>
#include <linux/rculist.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/skbuff.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/ftrace.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>
#include <net/checksum.h>
#include <net/ip.h>
#include <net/protocol.h>
#include <net/route.h>
#include <net/udp.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include "../common/compat.h"
#include "../common/cidr.h"
#include "../common/tb_stats.h"
#include "../common/uoa_opt.h"
#include "uoa.h"

static unsigned int map_timeout = 360;
module_param(map_timeout, uint, 0644);
MODULE_PARM_DESC(map_timeout, "Seconds an entry lives after its last datagram (default 360)");

static unsigned int map_max = 65536;
module_param(map_max, uint, 0644);
MODULE_PARM_DESC(map_max, "Entries per network namespace; beyond it the oldest is evicted (default 65536)");

static unsigned int map_max_total = 262144;
module_param(map_max_total, uint, 0644);
MODULE_PARM_DESC(map_max_total, "Entries of all network namespaces together (default 262144)");

static char *trusted_sources = "";
module_param(trusted_sources, charp, 0444);
MODULE_PARM_DESC(trusted_sources, "Comma-separated CIDRs of the balancers; options from other sources are ignored (default: trust all)");

static struct tb_cidr_list uoa_trusted;

/* Event counters, one per-CPU set per namespace (/proc/net/uoa_stats). */
enum {
	UOA_ST_IPOPT,		/* IPv4 option found */
	UOA_ST_DSTOPT,		/* IPv6 destination option found */
	UOA_ST_OPP,		/* private-protocol option found */
	UOA_ST_OPP_STRIPPED,	/* private-protocol header removed */
	UOA_ST_OPP_UNTOUCHED,	/* private-protocol header unusable, dropped */
	UOA_ST_MALFORMED,	/* broken option, ignored */
	UOA_ST_UNTRUSTED,	/* option from an untrusted source, ignored
				 * (private protocol: dropped)
				 */
	UOA_ST_NO_SOCKET,	/* no local UDP socket receives it: not saved */
	UOA_ST_SAVED,		/* new entry */
	UOA_ST_REFRESHED,	/* same entry seen again */
	UOA_ST_REPLACED,	/* same key, new real client */
	UOA_ST_EVICTED,		/* oldest entry dropped for a new one */
	UOA_ST_EXPIRED,		/* entry freed after map_timeout */
	UOA_ST_NOMEM,		/* entry allocation failed */
	UOA_ST_FULL,		/* map_max_total reached, nothing to evict */
	UOA_ST_LOOKUP_HIT,
	UOA_ST_LOOKUP_MISS,
	UOA_ST_LOOKUP_INVALID,
	UOA_ST_COUNT
};

static const char *const uoa_stat_names[UOA_ST_COUNT] = {
	"found_ipopt", "found_dstopt", "found_opp", "opp_stripped",
	"opp_untouched", "malformed", "untrusted", "no_socket", "saved",
	"refreshed", "replaced", "evicted", "expired", "nomem", "full",
	"lookup_hit", "lookup_miss", "lookup_invalid",
};

/* What the socket sees; padding zeroed so the key hashes as words. */
struct uoa_key {
	struct in6_addr saddr;	/* IPv4: first 4 bytes, rest zero */
	struct in6_addr daddr;
	__be16 sport;
	__be16 dport;
	u16 af;
	u16 pad;
};

struct uoa_entry {
	struct hlist_node hnode;	/* table bucket, RCU */
	struct list_head age;		/* namespace age list, un->lock */
	struct rcu_head rcu;
	const struct net *net;		/* entries die before their netns */
	struct uoa_key key;
	struct uoa_real real;
	unsigned long last_seen;	/* jiffies, changed under un->lock */
	bool dead;			/* unlinked, under un->lock */
};

struct uoa_net {
	spinlock_t lock;		/* age list, count, dead flags */
	struct list_head age;		/* oldest first */
	unsigned int count;
	bool closing;			/* namespace exit: no more entries */
	struct delayed_work gc;
	struct tb_stats stats;
};

#define UOA_LOCKS		1024
#define UOA_BUCKETS_MIN		1024U
#define UOA_BUCKETS_MAX		(1U << 18)
/* Entries freed per GC run, so the lock is never held long. */
#define UOA_GC_BUDGET		4096
/* An entry seen again moves to the young end at most this often. */
#define UOA_REFRESH_JIFFIES	HZ

static struct hlist_head *uoa_table;
static unsigned int uoa_table_mask;
static spinlock_t uoa_bucket_locks[UOA_LOCKS];
static u32 uoa_hash_seed;
/* Entries of all namespaces, for map_max_total. */
static atomic_t uoa_total = ATOMIC_INIT(0);
static TB_PERNET_ID_TYPE uoa_net_id __read_mostly;

static struct uoa_net *uoa_pernet(const struct net *net)
{
	return net_generic(net, uoa_net_id);
}

static unsigned long uoa_timeout_jiffies(void)
{
	unsigned int t = READ_ONCE(map_timeout);

	return (unsigned long)(t ? t : 1) * HZ;
}

static u32 uoa_hash(const struct net *net, const struct uoa_key *key)
{
	return jhash2((const u32 *)key, sizeof(*key) / sizeof(u32),
		      uoa_hash_seed ^ tb_net_hash_mix(net));
}

static spinlock_t *uoa_bucket_lock(u32 hash)
{
	return &uoa_bucket_locks[hash & (UOA_LOCKS - 1)];
}

/* Under rcu_read_lock() or the bucket lock. */
static struct uoa_entry *uoa_find(const struct net *net, u32 hash,
				  const struct uoa_key *key)
{
	struct uoa_entry *e;

	hlist_for_each_entry_rcu(e, &uoa_table[hash & uoa_table_mask], hnode) {
		if (e->net == net && !memcmp(&e->key, key, sizeof(*key)))
			return e;
	}
	return NULL;
}

/* Under un->lock; frees after a grace period. */
static void uoa_unlink(struct uoa_net *un, struct uoa_entry *e)
{
	spinlock_t *bl = uoa_bucket_lock(uoa_hash(e->net, &e->key));

	spin_lock(bl);
	hlist_del_rcu(&e->hnode);
	spin_unlock(bl);
	list_del(&e->age);
	e->dead = true;
	un->count--;
	atomic_dec(&uoa_total);
	kfree_rcu(e, rcu);
}

static void uoa_gc_schedule(struct uoa_net *un, unsigned long delay)
{
	queue_delayed_work(system_power_efficient_wq, &un->gc, delay);
}

static void uoa_record(const struct net *net, struct uoa_net *un,
		       const struct uoa_key *key, const struct uoa_real *real)
{
	u32 hash = uoa_hash(net, key);
	unsigned long now = jiffies;
	struct uoa_entry *e, *n;
	bool replaced = false;
	unsigned int max;
	spinlock_t *bl;

	rcu_read_lock();
	e = uoa_find(net, hash, key);
	if (e && !memcmp(&e->real, real, sizeof(*real))) {
		if (time_after(now, READ_ONCE(e->last_seen) +
			       UOA_REFRESH_JIFFIES)) {
			spin_lock_bh(&un->lock);
			if (!e->dead) {
				list_move_tail(&e->age, &un->age);
				WRITE_ONCE(e->last_seen, now);
			}
			spin_unlock_bh(&un->lock);
		}
		rcu_read_unlock();
		tb_stats_inc(&un->stats, UOA_ST_REFRESHED);
		return;
	}
	rcu_read_unlock();

	n = kzalloc(sizeof(*n), GFP_ATOMIC);
	if (!n) {
		tb_stats_inc(&un->stats, UOA_ST_NOMEM);
		return;
	}
	n->net = net;
	n->key = *key;
	n->real = *real;
	n->last_seen = now;

	spin_lock_bh(&un->lock);
	if (un->closing) {
		spin_unlock_bh(&un->lock);
		kfree(n);
		return;
	}
	bl = uoa_bucket_lock(hash);
	spin_lock(bl);
	e = uoa_find(net, hash, key);
	spin_unlock(bl);
	if (e) {
		uoa_unlink(un, e);
		replaced = true;
	}
	max = READ_ONCE(map_max);
	if (!max)
		max = 1;
	while (un->count >= max && !list_empty(&un->age)) {
		uoa_unlink(un, list_first_entry(&un->age, struct uoa_entry,
						age));
		tb_stats_inc(&un->stats, UOA_ST_EVICTED);
	}
	/*
	 * The global bound: a namespace at it makes room from its own
	 * entries only, so no namespace can evict another's clients.
	 */
	max = READ_ONCE(map_max_total);
	while (atomic_read(&uoa_total) >= max && !list_empty(&un->age)) {
		uoa_unlink(un, list_first_entry(&un->age, struct uoa_entry,
						age));
		tb_stats_inc(&un->stats, UOA_ST_EVICTED);
	}
	if (atomic_inc_return(&uoa_total) > max) {
		atomic_dec(&uoa_total);
		spin_unlock_bh(&un->lock);
		kfree(n);
		tb_stats_inc(&un->stats, UOA_ST_FULL);
		return;
	}
	spin_lock(bl);
	hlist_add_head_rcu(&n->hnode, &uoa_table[hash & uoa_table_mask]);
	spin_unlock(bl);
	list_add_tail(&n->age, &un->age);
	if (un->count++ == 0)
		uoa_gc_schedule(un, uoa_timeout_jiffies());
	spin_unlock_bh(&un->lock);
	tb_stats_inc(&un->stats, replaced ? UOA_ST_REPLACED : UOA_ST_SAVED);
}

static void uoa_gc_work(struct work_struct *work)
{
	struct uoa_net *un = container_of(to_delayed_work(work),
					  struct uoa_net, gc);
	unsigned long timeout = uoa_timeout_jiffies();
	unsigned long next = 0;
	int budget = UOA_GC_BUDGET;
	struct uoa_entry *e;

	spin_lock_bh(&un->lock);
	while (!list_empty(&un->age)) {
		e = list_first_entry(&un->age, struct uoa_entry, age);
		if (time_before(jiffies, e->last_seen + timeout)) {
			next = e->last_seen + timeout - jiffies + 1;
			break;
		}
		if (budget-- == 0) {
			next = 1;
			break;
		}
		uoa_unlink(un, e);
		tb_stats_inc(&un->stats, UOA_ST_EXPIRED);
	}
	if (next)
		uoa_gc_schedule(un, min(next, 10UL * HZ));
	spin_unlock_bh(&un->lock);
}

static bool uoa_trusted_source(int family, const void *saddr)
{
	if (!uoa_trusted.count)
		return true;
	return tb_cidr_list_match(&uoa_trusted, family, saddr);
}

/*
 * Key from the IP header as it is now and the UDP header @l4_off bytes
 * after the start of the IP header.
 */
static bool uoa_key_from_skb(const struct sk_buff *skb, unsigned int l4_off,
			     struct uoa_key *key)
{
	struct udphdr _uh;
	const struct udphdr *uh;

	uh = skb_header_pointer(skb, skb_network_offset(skb) + l4_off,
				sizeof(_uh), &_uh);
	if (!uh)
		return false;
	memset(key, 0, sizeof(*key));
	if (ip_hdr(skb)->version == 4) {
		key->af = AF_INET;
		memcpy(&key->saddr, &ip_hdr(skb)->saddr, 4);
		memcpy(&key->daddr, &ip_hdr(skb)->daddr, 4);
	} else {
		key->af = AF_INET6;
		key->saddr = ipv6_hdr(skb)->saddr;
		key->daddr = ipv6_hdr(skb)->daddr;
	}
	key->sport = uh->source;
	key->dport = uh->dest;
	return true;
}

/*
 * Will a local UDP socket receive the datagram of @key arriving on @skb's
 * device? Recording nothing else keeps datagrams to ports nobody listens
 * on (a flood, a scan) from filling the map. The socket is only looked
 * at, not used: the kernel does its own lookup when it delivers.
 */
static bool uoa_local_socket(struct net *net, const struct sk_buff *skb,
			     const struct uoa_key *key)
{
	int dif = skb->dev ? skb->dev->ifindex : 0;
	__be32 saddr, daddr;

#if IS_ENABLED(CONFIG_IPV6)
	if (key->af == AF_INET6)
		return tb_udp6_socket_exists(net, &key->saddr, key->sport,
					     &key->daddr, key->dport, dif);
#endif
	memcpy(&saddr, &key->saddr, 4);
	memcpy(&daddr, &key->daddr, 4);
	return tb_udp4_socket_exists(net, saddr, key->sport, daddr,
				     key->dport, dif);
}

/*
 * Acts on the result of a parse: counts it and records a found option of
 * a trusted source for a datagram a local socket receives.
 */
static void uoa_handle(struct net *net, struct uoa_net *un,
		       const struct sk_buff *skb, unsigned int l4_off,
		       int result, int stat, const struct uoa_real *real)
{
	struct uoa_key key;

	if (result == UOA_PARSE_BAD) {
		tb_stats_inc(&un->stats, UOA_ST_MALFORMED);
		return;
	}
	if (result != UOA_PARSE_FOUND)
		return;
	tb_stats_inc(&un->stats, stat);
	if (!uoa_key_from_skb(skb, l4_off, &key))
		return;
	if (!uoa_trusted_source(key.af == AF_INET ? 4 : 6, &key.saddr)) {
		tb_stats_inc(&un->stats, UOA_ST_UNTRUSTED);
		return;
	}
	if (!uoa_local_socket(net, skb, &key)) {
		tb_stats_inc(&un->stats, UOA_ST_NO_SOCKET);
		return;
	}
	uoa_record(net, un, &key, real);
}

/*
 * Remove @hlen bytes of private-protocol header that follow the @nhlen
 * bytes of IP header (skb->data at the IP header): the IP header (and the
 * link header in front of it) move up by @hlen, so the UDP header follows
 * the IP header as if the balancer had never inserted anything, and the
 * IP header is made to say UDP and the shorter length.
 *
 * Checksum state, for the datagram's second trip through the stack:
 *  - CHECKSUM_PARTIAL (a sender on this host, e.g. a balancer over veth):
 *    csum_start counts from skb->head and the UDP header does not move,
 *    so it stays right; the UDP checksum never covered the private header.
 *  - CHECKSUM_COMPLETE: skb->csum covers the packet from the IP header
 *    (ip_local_deliver_finish() pulls an IPv4 header, which sums to zero;
 *    IPv6 pulls the headers into the sum only before a final protocol,
 *    which 248 is not). Take out the old headers, put in the new IP
 *    header. Removing an odd number of bytes would move every later byte
 *    to the other half of its 16-bit word: verify in software instead.
 *  - Anything else: the device cannot have verified a UDP checksum behind
 *    a protocol it does not know, so UDP verifies it in software.
 */
static bool uoa_strip(struct sk_buff *skb, unsigned int nhlen,
		      unsigned int hlen)
{
	unsigned int mac_len = 0;
	u8 *from;

	if (tb_skb_ensure_writable(skb, nhlen + hlen))
		return false;
	if (skb->ip_summed == CHECKSUM_COMPLETE) {
		if (hlen & 1)
			skb->ip_summed = CHECKSUM_NONE;
		else
			skb->csum = csum_sub(skb->csum,
					     csum_partial(skb->data,
							  nhlen + hlen, 0));
	} else if (skb->ip_summed != CHECKSUM_PARTIAL) {
		skb->ip_summed = CHECKSUM_NONE;
	}
	from = skb_network_header(skb);
	if (skb_mac_header_was_set(skb) &&
	    skb_mac_header(skb) <= skb_network_header(skb)) {
		mac_len = skb_network_header(skb) - skb_mac_header(skb);
		from = skb_mac_header(skb);
	}
	memmove(from + hlen, from, mac_len + nhlen);
	if (mac_len)
		skb->mac_header += hlen;
	__skb_pull(skb, hlen);
	skb_reset_network_header(skb);
	skb_set_transport_header(skb, nhlen);
	if (ip_hdr(skb)->version == 4) {
		struct iphdr *iph = ip_hdr(skb);

		iph->protocol = IPPROTO_UDP;
		iph->tot_len = htons(ntohs(iph->tot_len) - hlen);
		ip_send_check(iph);
	} else {
		struct ipv6hdr *ip6h = ipv6_hdr(skb);

		ip6h->nexthdr = IPPROTO_UDP;
		ip6h->payload_len = htons(ntohs(ip6h->payload_len) - hlen);
	}
	if (skb->ip_summed == CHECKSUM_COMPLETE)
		skb->csum = csum_add(skb->csum,
				     csum_partial(skb->data, nhlen, 0));
	return true;
}

/*
 * The private-protocol header after @nhlen bytes of IP header, @avail
 * bytes of payload, with skb->data at the IP header: parse it and remove
 * it. Returns the parse result of the option inside, or -1 when the
 * header cannot be removed (the caller drops the packet).
 */
static int uoa_opp(struct sk_buff *skb, unsigned int nhlen,
		   unsigned int avail, struct uoa_real *real)
{
	u8 buf[UOA_OPP_HDR_MAX];
	unsigned int copied, hlen;
	const u8 *p;
	int result;

	if (skb_network_offset(skb) != 0 || avail > skb->len - nhlen)
		return -1;
	copied = min_t(unsigned int, avail, sizeof(buf));
	p = skb_header_pointer(skb, nhlen, copied, buf);
	if (!p)
		return -1;
	/* Reads @copied bytes at most; checks the rest of @avail fits. */
	result = uoa_parse_opp(p, copied, avail, real, &hlen);
	if (!hlen || !uoa_strip(skb, nhlen, hlen))
		return -1;
	return result;
}

/*
 * The stripped datagram, skb->data at its IP header, goes back to the
 * start of the receive path as the UDP datagram it is: PREROUTING,
 * conntrack, routing, INPUT and the UDP socket lookup see it like any
 * other, so a firewall's UDP rules hold for it. As tunnels do with what
 * they decapsulate: the route and the conntrack entry of the protocol 248
 * packet are dropped first. netif_rx() queues it to this CPU's backlog;
 * BHs are disabled around it because before 5.18 netif_rx() from process
 * context (a reinjected NFQUEUE verdict) would not run the softirq.
 */
static void uoa_receive_again(struct sk_buff *skb)
{
	skb_dst_drop(skb);
	nf_reset_ct(skb);
	local_bh_disable();
	netif_rx(skb);
	local_bh_enable();
}

/*
 * Protocol 248 handlers. The kernel calls them with skb->data at the
 * private header (just after the IP header), after LOCAL_IN: step back to
 * the IP header, and for a trusted source remove the private header and
 * receive the datagram again as UDP. Only these packets pay: nothing runs
 * for any other protocol. A header that cannot be removed, or one from a
 * source outside trusted_sources, is dropped, as the kernel drops
 * protocols nobody handles.
 */
static bool uoa_opp_trusted(struct uoa_net *un, const struct sk_buff *skb)
{
	bool ok;

	if (ip_hdr(skb)->version == 4)
		ok = uoa_trusted_source(4, &ip_hdr(skb)->saddr);
	else
		ok = uoa_trusted_source(6, &ipv6_hdr(skb)->saddr);
	if (!ok)
		tb_stats_inc(&un->stats, UOA_ST_UNTRUSTED);
	return ok;
}

static int uoa_opp4_rcv(struct sk_buff *skb)
{
	struct net *net = dev_net(skb->dev);
	struct uoa_net *un = uoa_pernet(net);
	unsigned int ihl = skb_network_header_len(skb);
	struct uoa_real real;
	int result;

	__skb_push(skb, -skb_network_offset(skb));
	if (!uoa_opp_trusted(un, skb))
		goto drop;
	result = uoa_opp(skb, ihl, ntohs(ip_hdr(skb)->tot_len) - ihl, &real);
	if (result < 0) {
		tb_stats_inc(&un->stats, UOA_ST_OPP_UNTOUCHED);
		goto drop;
	}
	tb_stats_inc(&un->stats, UOA_ST_OPP_STRIPPED);
	uoa_handle(net, un, skb, ihl, result, UOA_ST_OPP, &real);
	uoa_receive_again(skb);
	return 0;
drop:
	kfree_skb(skb);
	return 0;
}

static const struct net_protocol uoa_opp4_protocol = {
	.handler = uoa_opp4_rcv,
	.no_policy = 1,		/* UDP checks the policy itself */
	TB_INET_PROTOCOL_NETNS_OK
};

/*
 * IPv4 options: the kernel compiles them (ip_options_compile(), from
 * ip_rcv_finish()) only for packets that carry options, after the route
 * lookup and before local delivery. An ftrace callback at its entry
 * reads the UOA option; a datagram without options never gets here.
 * Other callers pass no skb (setsockopt) or a packet not routed to this
 * host (bridged, forwarded): only locally delivered ones count.
 */
static void uoa_ipopt_hook(struct net *net, struct sk_buff *skb)
{
	const struct iphdr *iph;
	struct uoa_real real;
	int result;

	if (!skb || !net || skb->pkt_type != PACKET_HOST || !skb_dst(skb) ||
	    skb_rtable(skb)->rt_type != RTN_LOCAL)
		return;
	iph = ip_hdr(skb);
	if (iph->version != 4 || iph->ihl <= 5 ||
	    iph->protocol != IPPROTO_UDP ||
	    (iph->frag_off & htons(IP_OFFSET)))
		return;
	/* ip_rcv() pulled the whole header into the linear area. */
	result = uoa_parse_ipv4_options((const u8 *)(iph + 1),
					iph->ihl * 4 - sizeof(*iph), &real);
	uoa_handle(net, uoa_pernet(net), skb, iph->ihl * 4, result,
		   UOA_ST_IPOPT, &real);
}

#if IS_ENABLED(CONFIG_IPV6)
/* Extension headers longer than this in front of UDP are not looked at. */
#define UOA_V6_SCAN	192

static int uoa_opp6_rcv(struct sk_buff *skb)
{
	struct net *net = dev_net(skb->dev);
	struct uoa_net *un = uoa_pernet(net);
	struct uoa_real real;
	int result;

	/*
	 * Only right after the fixed header, as balancers put it (behind
	 * extension headers: dropped).
	 */
	if (skb_network_header_len(skb) != sizeof(struct ipv6hdr)) {
		tb_stats_inc(&un->stats, UOA_ST_OPP_UNTOUCHED);
		goto drop;
	}
	__skb_push(skb, sizeof(struct ipv6hdr));
	if (!uoa_opp_trusted(un, skb))
		goto drop;
	result = uoa_opp(skb, sizeof(struct ipv6hdr),
			 ntohs(ipv6_hdr(skb)->payload_len), &real);
	if (result < 0) {
		tb_stats_inc(&un->stats, UOA_ST_OPP_UNTOUCHED);
		goto drop;
	}
	tb_stats_inc(&un->stats, UOA_ST_OPP_STRIPPED);
	uoa_handle(net, un, skb, sizeof(struct ipv6hdr), result, UOA_ST_OPP,
		   &real);
	uoa_receive_again(skb);
	return 0;
drop:
	kfree_skb(skb);
	return 0;
}

static const struct inet6_protocol uoa_opp6_protocol = {
	.handler = uoa_opp6_rcv,
	.flags = INET6_PROTO_NOPOLICY,
};

/*
 * IPv6 destination options: the kernel's destination-options handler
 * runs only for packets that have such a header, with skb->data and the
 * transport header at it. Walk from there to UDP (a routing header may
 * sit between) and read the UOA option.
 */
static void uoa_dstopt_hook(struct sk_buff *skb)
{
	unsigned int off, len, l4_off = 0;
	u8 buf[UOA_V6_SCAN];
	struct uoa_real real;
	const u8 *p;
	struct net *net;
	u8 l4_proto;
	int result;

	if (!skb || !skb->dev || ipv6_hdr(skb)->version != 6)
		return;
	off = skb_transport_offset(skb);
	if ((int)off < 0 || skb->len <= off)
		return;
	len = min_t(unsigned int, skb->len - off, sizeof(buf));
	p = skb_header_pointer(skb, off, len, buf);
	if (!p)
		return;
	result = uoa_parse_ipv6_exthdrs(p, len, UOA_NEXTHDR_DEST, &real,
					&l4_off, &l4_proto);
	if (result != UOA_PARSE_BAD && l4_proto != IPPROTO_UDP)
		return;
	net = dev_net(skb->dev);
	uoa_handle(net, uoa_pernet(net), skb,
		   skb_network_header_len(skb) + l4_off, result,
		   UOA_ST_DSTOPT, &real);
}

/*
 * ipv6_destopt_rcv is static; its address is the handler the kernel
 * registered for IPPROTO_DSTOPTS in the exported inet6_protos[].
 */
static unsigned long uoa_dstopt_rcv;

/*
 * Booted with ipv6.disable=1, IPv6 registers no handlers (and receives
 * nothing): then only IPv4 is watched.
 */
static void __init uoa_find_dstopt_rcv(void)
{
	const struct inet6_protocol *proto;

	rcu_read_lock();
	proto = rcu_dereference(inet6_protos[IPPROTO_DSTOPTS]);
	if (proto)
		uoa_dstopt_rcv = (unsigned long)proto->handler;
	rcu_read_unlock();
	if (!uoa_dstopt_rcv)
		pr_info("IPv6 is disabled (no destination-options handler): serving IPv4 only\n");
}
#endif

/*
 * One ftrace_ops for both functions: unregistering an ops costs RCU-tasks
 * grace periods, so rmmod pays them once; @ip tells which was called.
 */
static TB_FTRACE_CALLBACK(uoa_ftrace_hook)
{
#if IS_ENABLED(CONFIG_IPV6)
	if (uoa_dstopt_rcv &&
	    tb_ftrace_ip_in(ip, uoa_dstopt_rcv,
			    (unsigned long)ip_options_compile)) {
		uoa_dstopt_hook((struct sk_buff *)tb_ftrace_arg(1));
		return;
	}
#endif
	uoa_ipopt_hook((struct net *)tb_ftrace_arg(1),
		       (struct sk_buff *)tb_ftrace_arg(3));
}

static struct ftrace_ops uoa_ftrace_ops = {
	.func = uoa_ftrace_hook,
	.flags = TB_FTRACE_FL_ARGS,
};

static bool uoa_hooked;

/* Waits for running callbacks (ftrace synchronizes on unregister). */
static void uoa_hooks_unregister(void)
{
	if (!uoa_hooked)
		return;
	unregister_ftrace_function(&uoa_ftrace_ops);
	tb_ftrace_free_filter(&uoa_ftrace_ops);
	uoa_hooked = false;
}

static int __init uoa_hooks_register(void)
{
	int err;

	err = ftrace_set_filter_ip(&uoa_ftrace_ops,
				   (unsigned long)ip_options_compile, 0, 0);
#if IS_ENABLED(CONFIG_IPV6)
	uoa_find_dstopt_rcv();
	if (!err && uoa_dstopt_rcv)
		err = ftrace_set_filter_ip(&uoa_ftrace_ops, uoa_dstopt_rcv, 0, 0);
#endif
	if (err) {
		pr_err("cannot hook ip_options_compile/ipv6_destopt_rcv: not traceable in this kernel (%d)\n",
		       err);
		goto free_filter;
	}
	err = register_ftrace_function(&uoa_ftrace_ops);
	if (err) {
		pr_err("cannot hook ip_options_compile/ipv6_destopt_rcv (%d)\n",
		       err);
		goto free_filter;
	}
	uoa_hooked = true;
	return 0;

free_filter:
	tb_ftrace_free_filter(&uoa_ftrace_ops);
	return err;
}

static void uoa_protocols_unregister(void)
{
#if IS_ENABLED(CONFIG_IPV6)
	inet6_del_protocol(&uoa_opp6_protocol, UOA_OPP_PROTO);
#endif
	/* Both wait for running handlers. */
	inet_del_protocol(&uoa_opp4_protocol, UOA_OPP_PROTO);
}

static int __init uoa_protocols_register(void)
{
	if (inet_add_protocol(&uoa_opp4_protocol, UOA_OPP_PROTO) < 0) {
		pr_err("IP protocol %d is taken (another UOA module?)\n",
		       UOA_OPP_PROTO);
		return -EBUSY;
	}
#if IS_ENABLED(CONFIG_IPV6)
	if (inet6_add_protocol(&uoa_opp6_protocol, UOA_OPP_PROTO) < 0) {
		inet_del_protocol(&uoa_opp4_protocol, UOA_OPP_PROTO);
		pr_err("IPv6 next header %d is taken (another UOA module?)\n",
		       UOA_OPP_PROTO);
		return -EBUSY;
	}
#endif
	return 0;
}

/*
 * Is @key's destination the local address and port of @sk? A socket may
 * ask only about datagrams it can have received itself: its own port,
 * and its own address unless it is bound to the wildcard. Without this
 * any local program could list the clients of every other service.
 */
static bool uoa_key_is_own(const struct sock *sk, const struct uoa_key *key)
{
	const struct inet_sock *inet = inet_sk(sk);

	if (!inet->inet_sport || key->dport != inet->inet_sport)
		return false;
#if IS_ENABLED(CONFIG_IPV6)
	if (sk->sk_family == AF_INET6) {
		const struct in6_addr *own = &tb_sk_v6_rcv_saddr(sk);

		if (ipv6_addr_any(own))
			return true;
		if (ipv6_addr_v4mapped(own))
			return key->af == AF_INET &&
			       !memcmp(&key->daddr, &own->s6_addr32[3], 4);
		return key->af == AF_INET6 && ipv6_addr_equal(own, &key->daddr);
	}
#endif
	if (key->af != AF_INET)
		return false;
	return !inet->inet_rcv_saddr ||
	       !memcmp(&key->daddr, &inet->inet_rcv_saddr, 4);
}

/*
 * getsockopt(IPPROTO_IP, UOA_SO_GET_LOOKUP) on an IPv4 or IPv6 socket,
 * for the socket's own datagrams (else ENOENT, as for no entry).
 */
static int uoa_getsockopt(struct sock *sk, int cmd, void __user *user,
			  int *len)
{
	static const u8 v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const struct net *net = sock_net(sk);
	struct uoa_net *un = uoa_pernet(net);
	struct uoa_param_map map;
	struct uoa_entry *e;
	struct uoa_real real;
	struct uoa_key key;
	bool found = false;

	if (cmd != UOA_SO_GET_LOOKUP)
		return -ENOPROTOOPT;
	if (*len < (int)sizeof(map)) {
		tb_stats_inc(&un->stats, UOA_ST_LOOKUP_INVALID);
		return -EINVAL;
	}
	if (copy_from_user(&map, user, sizeof(map)))
		return -EFAULT;

	memset(&key, 0, sizeof(key));
	key.sport = map.sport;
	key.dport = map.dport;
	if (map.af == AF_INET6 &&
	    !memcmp(&map.saddr.in6, v4mapped, sizeof(v4mapped)) &&
	    !memcmp(&map.daddr.in6, v4mapped, sizeof(v4mapped))) {
		/* An IPv4 peer seen through a dual-stack socket. */
		key.af = AF_INET;
		memcpy(&key.saddr, &map.saddr.in6.s6_addr[12], 4);
		memcpy(&key.daddr, &map.daddr.in6.s6_addr[12], 4);
	} else if (map.af == AF_INET) {
		key.af = AF_INET;
		memcpy(&key.saddr, &map.saddr.in, 4);
		memcpy(&key.daddr, &map.daddr.in, 4);
	} else if (map.af == AF_INET6) {
		key.af = AF_INET6;
		key.saddr = map.saddr.in6;
		key.daddr = map.daddr.in6;
	} else {
		tb_stats_inc(&un->stats, UOA_ST_LOOKUP_INVALID);
		return -EINVAL;
	}

	if (!uoa_key_is_own(sk, &key)) {
		tb_stats_inc(&un->stats, UOA_ST_LOOKUP_MISS);
		return -ENOENT;
	}
	rcu_read_lock();
	e = uoa_find(net, uoa_hash(net, &key), &key);
	if (e && time_before(jiffies, READ_ONCE(e->last_seen) +
			     uoa_timeout_jiffies())) {
		real = e->real;
		found = true;
	}
	rcu_read_unlock();
	if (!found) {
		tb_stats_inc(&un->stats, UOA_ST_LOOKUP_MISS);
		return -ENOENT;
	}
	tb_stats_inc(&un->stats, UOA_ST_LOOKUP_HIT);

	memset(&map.real_saddr, 0, sizeof(map.real_saddr));
	map.real_af = real.family == 4 ? AF_INET : AF_INET6;
	memcpy(&map.real_saddr, real.addr, real.family == 4 ? 4 : 16);
	map.real_sport = real.port_be;
	if (copy_to_user(user, &map, sizeof(map)))
		return -EFAULT;
	*len = sizeof(map);
	return 0;
}

static struct nf_sockopt_ops uoa_sockopts = {
	.pf = PF_INET,
	.get_optmin = UOA_SO_GET_LOOKUP,
	.get_optmax = UOA_SO_GET_LOOKUP + 1,
	.get = uoa_getsockopt,
	.owner = THIS_MODULE,
};

static int uoa_stats_show(struct seq_file *seq, void *v)
{
	struct uoa_net *un = uoa_pernet(seq->private);

	seq_printf(seq, "entries %u\n", READ_ONCE(un->count));
	seq_printf(seq, "map_max %u\n", READ_ONCE(map_max));
	seq_printf(seq, "map_timeout %u\n", READ_ONCE(map_timeout));
	tb_stats_show(seq, &un->stats);
	return 0;
}
TB_PROC_SINGLE_DATA(uoa_stats_show);

static void uoa_purge(struct uoa_net *un)
{
	spin_lock_bh(&un->lock);
	while (!list_empty(&un->age))
		uoa_unlink(un, list_first_entry(&un->age, struct uoa_entry,
						age));
	spin_unlock_bh(&un->lock);
}

static int __net_init uoa_net_init(struct net *net)
{
	struct uoa_net *un = uoa_pernet(net);

	spin_lock_init(&un->lock);
	INIT_LIST_HEAD(&un->age);
	un->count = 0;
	un->closing = false;
	INIT_DELAYED_WORK(&un->gc, uoa_gc_work);
	return tb_stats_init(&un->stats, uoa_stat_names, UOA_ST_COUNT);
}

/*
 * Namespaces go in batches: one grace period for all of them, not one or
 * two per namespace.
 */
static void __net_exit uoa_net_exit_batch(struct list_head *net_exit_list)
{
	struct net *net;

	/*
	 * The hooks are global: a late datagram of a dying namespace must
	 * not insert (or re-arm the GC) once it is purged.
	 */
	list_for_each_entry(net, net_exit_list, exit_list) {
		struct uoa_net *un = uoa_pernet(net);

		spin_lock_bh(&un->lock);
		un->closing = true;
		spin_unlock_bh(&un->lock);
	}
	/* Hooks that saw the namespace open have returned. */
	synchronize_net();
	list_for_each_entry(net, net_exit_list, exit_list) {
		struct uoa_net *un = uoa_pernet(net);

		cancel_delayed_work_sync(&un->gc);
		uoa_purge(un);
		tb_stats_free(&un->stats);
	}
}

static struct pernet_operations uoa_net_ops = {
	.init = uoa_net_init,
	.exit_batch = uoa_net_exit_batch,
	.id = &uoa_net_id,
	.size = sizeof(struct uoa_net),
};

/*
 * /proc/net/uoa_stats, registered apart from the namespace data so that
 * it appears after the hooks and goes before them.
 * remove_proc_entry() waits for running readers.
 */
static int __net_init uoa_proc_init(struct net *net)
{
	if (!tb_proc_create_single_data("uoa_stats", 0444, net->proc_net,
					uoa_stats_show, net))
		return -ENOMEM;
	return 0;
}

static void __net_exit uoa_proc_exit(struct net *net)
{
	remove_proc_entry("uoa_stats", net->proc_net);
}

static struct pernet_operations uoa_proc_ops = {
	.init = uoa_proc_init,
	.exit = uoa_proc_exit,
};

/*
 * Order: the map and the per-namespace data first, then what writes to
 * them (protocol 248 handlers, option hooks), then what users see
 * (/proc, the sockopt), so no user reaches a half-made module. Exit and
 * a failing init undo it in reverse; each unregister waits for its
 * running callers.
 */
static int __init uoa_init(void)
{
	unsigned int buckets;
	int err, pos, i;

	BUILD_BUG_ON(sizeof(struct uoa_param_map) != UOA_PARAM_MAP_SIZE);
	BUILD_BUG_ON(sizeof(struct uoa_key) % sizeof(u32));

	err = tb_cidr_list_parse(trusted_sources, &uoa_trusted, &pos);
	if (err) {
		pr_err("bad trusted_sources at offset %d: %s\n", pos,
		       tb_cidr_strerror(err));
		return -EINVAL;
	}

	buckets = roundup_pow_of_two(clamp(READ_ONCE(map_max) / 2,
					   UOA_BUCKETS_MIN, UOA_BUCKETS_MAX));
	uoa_table = vzalloc(sizeof(*uoa_table) * buckets);
	if (!uoa_table)
		return -ENOMEM;
	uoa_table_mask = buckets - 1;
	for (i = 0; i < UOA_LOCKS; i++)
		spin_lock_init(&uoa_bucket_locks[i]);
	get_random_bytes(&uoa_hash_seed, sizeof(uoa_hash_seed));

	err = register_pernet_subsys(&uoa_net_ops);
	if (err)
		goto free_table;
	err = uoa_protocols_register();
	if (err)
		goto unregister_pernet;
	err = uoa_hooks_register();
	if (err)
		goto unregister_protocols;
	err = register_pernet_subsys(&uoa_proc_ops);
	if (err)
		goto unregister_hooks;
	err = nf_register_sockopt(&uoa_sockopts);
	if (err)
		goto unregister_proc;
	pr_info("uoa loaded (map_max %u, map_max_total %u, map_timeout %u s, %d trusted sources)\n",
		map_max, map_max_total, map_timeout, uoa_trusted.count);
	if (!uoa_trusted.count)
		pr_warn("trusted_sources is empty: any host that can send UDP here can set the client address applications see; set trusted_sources to the balancers' CIDRs\n");
	return 0;

unregister_proc:
	unregister_pernet_subsys(&uoa_proc_ops);
unregister_hooks:
	uoa_hooks_unregister();
unregister_protocols:
	uoa_protocols_unregister();
unregister_pernet:
	unregister_pernet_subsys(&uoa_net_ops);
free_table:
	/* Entries are freed with kfree_rcu(); the table goes after them. */
	rcu_barrier();
	vfree(uoa_table);
	return err;
}

static void __exit uoa_exit(void)
{
	nf_unregister_sockopt(&uoa_sockopts);
	unregister_pernet_subsys(&uoa_proc_ops);
	uoa_hooks_unregister();
	uoa_protocols_unregister();
	unregister_pernet_subsys(&uoa_net_ops);
	/* Entries are freed with kfree_rcu(); the table goes after them. */
	rcu_barrier();
	vfree(uoa_table);
	pr_info("uoa unloaded\n");
}

module_init(uoa_init);
module_exit(uoa_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("UDP Option Address: real client addresses behind FullNAT balancers");
MODULE_AUTHOR("toa-build");
/* The toa-build release, as module/dkms.conf's PACKAGE_VERSION. */
MODULE_VERSION("0.1.0");
