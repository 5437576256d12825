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
 * removes the private header and gives the datagram back to UDP. No
 * netfilter hook: one would put every packet of the host on netfilter's
 * slow path. Each records, in the namespace of the receiving device,
 *
 *	(netns, af, saddr, daddr, sport, dport as the socket sees them)
 *		-> (real af, address, port)
 *
 * in a hash table that applications query with
 * getsockopt(IPPROTO_IP, UOA_SO_GET_LOOKUP) (see uoa.h).
 *
 * Map: one global table (buckets are RCU lists, writers take a per-bucket
 * spinlock), each network namespace keeps its own entries on an age list
 * (oldest first) under its own lock, with its own count, bound and stats.
 * Lookups and datagrams without an option take no lock. When a namespace
 * holds map_max entries, a new entry evicts the oldest one: the newest
 * client is always served, memory stays bounded (counted as "evicted").
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
#include <linux/netfilter.h>
#include <linux/ftrace.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>
#include <net/ip.h>
#include <net/protocol.h>
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
	UOA_ST_OPP_UNTOUCHED,	/* private-protocol header unusable, left */
	UOA_ST_MALFORMED,	/* broken option, ignored */
	UOA_ST_UNTRUSTED,	/* option from an untrusted source, ignored */
	UOA_ST_SAVED,		/* new entry */
	UOA_ST_REFRESHED,	/* same entry seen again */
	UOA_ST_REPLACED,	/* same key, new real client */
	UOA_ST_EVICTED,		/* oldest entry dropped for a new one */
	UOA_ST_EXPIRED,		/* entry freed after map_timeout */
	UOA_ST_NOMEM,		/* entry allocation failed */
	UOA_ST_LOOKUP_HIT,
	UOA_ST_LOOKUP_MISS,
	UOA_ST_LOOKUP_INVALID,
	UOA_ST_COUNT
};

static const char *const uoa_stat_names[UOA_ST_COUNT] = {
	"found_ipopt", "found_dstopt", "found_opp", "opp_stripped",
	"opp_untouched", "malformed", "untrusted", "saved", "refreshed",
	"replaced", "evicted", "expired", "nomem", "lookup_hit",
	"lookup_miss", "lookup_invalid",
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
static unsigned int uoa_net_id __read_mostly;

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
		      uoa_hash_seed ^ net_hash_mix(net));
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
		tb_stats_inc(&un->stats, UOA_ST_REPLACED);
	} else {
		tb_stats_inc(&un->stats, UOA_ST_SAVED);
	}
	max = READ_ONCE(map_max);
	if (!max)
		max = 1;
	while (un->count >= max && !list_empty(&un->age)) {
		uoa_unlink(un, list_first_entry(&un->age, struct uoa_entry,
						age));
		tb_stats_inc(&un->stats, UOA_ST_EVICTED);
	}
	spin_lock(bl);
	hlist_add_head_rcu(&n->hnode, &uoa_table[hash & uoa_table_mask]);
	spin_unlock(bl);
	list_add_tail(&n->age, &un->age);
	if (un->count++ == 0)
		uoa_gc_schedule(un, uoa_timeout_jiffies());
	spin_unlock_bh(&un->lock);
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

/* Acts on the result of a parse: counts it and records a found option. */
static void uoa_handle(const struct net *net, struct uoa_net *un,
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
	uoa_record(net, un, &key, real);
}

/*
 * Remove @hlen bytes of private-protocol header that follow the @nhlen
 * bytes of IP header: the IP header (and the link header in front of it)
 * move up by @hlen, so the UDP header follows the IP header as if the
 * balancer had never inserted anything. The caller fixes the IP header.
 */
static bool uoa_strip(struct sk_buff *skb, unsigned int nhlen,
		      unsigned int hlen)
{
	unsigned int mac_len = 0;
	u8 *from;

	if (tb_skb_ensure_writable(skb, nhlen + hlen))
		return false;
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
	/*
	 * A device checksum covered the removed bytes: let UDP verify in
	 * software (its checksum never covered the private header).
	 */
	skb->ip_summed = CHECKSUM_NONE;
	return true;
}

/*
 * The private-protocol header after @nhlen bytes of IP header, @avail
 * bytes of payload, with skb->data at the IP header: parse it and remove
 * it. Returns the parse result of the option inside, or -1 when the
 * packet was left as it is.
 */
static int uoa_opp(struct sk_buff *skb, unsigned int nhlen,
		   unsigned int avail, struct uoa_real *real)
{
	u8 buf[UOA_OPP_HDR_LEN + 40];
	unsigned int hlen;
	const u8 *p;
	int result;

	if (skb_network_offset(skb) != 0 || avail > skb->len - nhlen)
		return -1;
	p = skb_header_pointer(skb, nhlen, UOA_OPP_HDR_LEN, buf);
	if (!p)
		return -1;
	hlen = (p[2] << 8) | p[3];
	if (hlen < UOA_OPP_HDR_LEN || hlen > sizeof(buf) || hlen > avail)
		return -1;
	p = skb_header_pointer(skb, nhlen, hlen, buf);
	if (!p)
		return -1;
	/* Reads only the header's own hlen bytes, checks the rest fits. */
	result = uoa_parse_opp(p, avail, real, &hlen);
	if (!hlen || !uoa_strip(skb, nhlen, hlen))
		return -1;
	return result;
}

/*
 * Protocol 248 handlers. The kernel calls them with skb->data at the
 * private header (just after the IP header): step back to the IP header,
 * remove the private header as if the balancer had never inserted it, and
 * hand the datagram back to the kernel as UDP. Only these packets pay:
 * nothing runs for any other protocol. A header that cannot be removed
 * is dropped, as the kernel drops protocols nobody handles.
 */
static int uoa_opp4_rcv(struct sk_buff *skb)
{
	struct net *net = dev_net(skb->dev);
	struct uoa_net *un = uoa_pernet(net);
	unsigned int ihl = skb_network_header_len(skb);
	unsigned int before;
	struct uoa_real real;
	struct iphdr *iph;
	int result;

	__skb_push(skb, -skb_network_offset(skb));
	before = skb->len;
	result = uoa_opp(skb, ihl, ntohs(ip_hdr(skb)->tot_len) - ihl, &real);
	if (result < 0) {
		tb_stats_inc(&un->stats, UOA_ST_OPP_UNTOUCHED);
		kfree_skb(skb);
		return 0;
	}
	iph = ip_hdr(skb);
	iph->protocol = IPPROTO_UDP;
	iph->tot_len = htons(ntohs(iph->tot_len) - (before - skb->len));
	ip_send_check(iph);
	tb_stats_inc(&un->stats, UOA_ST_OPP_STRIPPED);
	uoa_handle(net, un, skb, ihl, result, UOA_ST_OPP, &real);
	__skb_pull(skb, ihl);
	skb_reset_transport_header(skb);
	return -IPPROTO_UDP;	/* deliver again, as UDP */
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
 * Other callers pass no skb (setsockopt) or a bridged packet.
 */
static void uoa_ipopt_hook(struct net *net, struct sk_buff *skb)
{
	const struct iphdr *iph;
	struct uoa_real real;
	int result;

	if (!skb || !net)
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
	unsigned int before;
	struct uoa_real real;
	struct ipv6hdr *ip6h;
	int result = -1;

	/* Only right after the fixed header (extension headers: left). */
	if (skb_network_header_len(skb) == sizeof(*ip6h)) {
		__skb_push(skb, sizeof(*ip6h));
		before = skb->len;
		result = uoa_opp(skb, sizeof(*ip6h),
				 ntohs(ipv6_hdr(skb)->payload_len), &real);
	}
	if (result < 0) {
		tb_stats_inc(&un->stats, UOA_ST_OPP_UNTOUCHED);
		kfree_skb(skb);
		return -1;
	}
	ip6h = ipv6_hdr(skb);
	ip6h->nexthdr = IPPROTO_UDP;
	ip6h->payload_len = htons(ntohs(ip6h->payload_len) -
				  (before - skb->len));
	tb_stats_inc(&un->stats, UOA_ST_OPP_STRIPPED);
	uoa_handle(net, un, skb, sizeof(*ip6h), result, UOA_ST_OPP, &real);
	/* Like an extension header: the next header is the fixed header's. */
	__skb_pull(skb, sizeof(*ip6h));
	skb_reset_transport_header(skb);
	IP6CB(skb)->nhoff = offsetof(struct ipv6hdr, nexthdr);
	return 1;
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
	unsigned int off, len, l4_off;
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

static int __init uoa_find_dstopt_rcv(void)
{
	const struct inet6_protocol *proto;

	rcu_read_lock();
	proto = rcu_dereference(inet6_protos[IPPROTO_DSTOPTS]);
	if (proto)
		uoa_dstopt_rcv = (unsigned long)proto->handler;
	rcu_read_unlock();
	if (!uoa_dstopt_rcv) {
		pr_err("no IPv6 destination-options handler is registered\n");
		return -ENOENT;
	}
	return 0;
}
#endif

/*
 * One ftrace_ops for both functions: unregistering an ops costs RCU-tasks
 * grace periods, so rmmod pays them once; @ip tells which was called.
 */
static TB_FTRACE_CALLBACK(uoa_ftrace_hook)
{
#if IS_ENABLED(CONFIG_IPV6)
	if (tb_ftrace_ip_in(ip, uoa_dstopt_rcv,
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
	if (!err)
		err = uoa_find_dstopt_rcv();
	if (!err)
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

/* getsockopt(IPPROTO_IP, UOA_SO_GET_LOOKUP) on an IPv4 or IPv6 socket. */
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
	int err;

	spin_lock_init(&un->lock);
	INIT_LIST_HEAD(&un->age);
	un->count = 0;
	un->closing = false;
	INIT_DELAYED_WORK(&un->gc, uoa_gc_work);
	err = tb_stats_init(&un->stats, uoa_stat_names, UOA_ST_COUNT);
	if (err)
		return err;
	if (!tb_proc_create_single_data("uoa_stats", 0444, net->proc_net,
					uoa_stats_show, net)) {
		err = -ENOMEM;
		goto free_stats;
	}
	return 0;

free_stats:
	tb_stats_free(&un->stats);
	return err;
}

static void __net_exit uoa_net_exit(struct net *net)
{
	struct uoa_net *un = uoa_pernet(net);

	/*
	 * The hooks are global: a late datagram of this namespace must not
	 * insert (or re-arm the GC) once it is purged.
	 */
	spin_lock_bh(&un->lock);
	un->closing = true;
	spin_unlock_bh(&un->lock);
	synchronize_net();
	cancel_delayed_work_sync(&un->gc);
	uoa_purge(un);
	remove_proc_entry("uoa_stats", net->proc_net);
	/* getsockopt() callers use the stats under RCU. */
	synchronize_rcu();
	tb_stats_free(&un->stats);
}

static struct pernet_operations uoa_net_ops = {
	.init = uoa_net_init,
	.exit = uoa_net_exit,
	.id = &uoa_net_id,
	.size = sizeof(struct uoa_net),
};

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
	err = nf_register_sockopt(&uoa_sockopts);
	if (err)
		goto unregister_pernet;
	err = uoa_protocols_register();
	if (err)
		goto unregister_sockopt;
	err = uoa_hooks_register();
	if (err)
		goto unregister_protocols;
	pr_info("uoa loaded (map_max %u, map_timeout %u s, %d trusted sources)\n",
		map_max, map_timeout, uoa_trusted.count);
	return 0;

unregister_protocols:
	uoa_protocols_unregister();
unregister_sockopt:
	nf_unregister_sockopt(&uoa_sockopts);
unregister_pernet:
	unregister_pernet_subsys(&uoa_net_ops);
free_table:
	vfree(uoa_table);
	return err;
}

static void __exit uoa_exit(void)
{
	uoa_hooks_unregister();
	uoa_protocols_unregister();
	nf_unregister_sockopt(&uoa_sockopts);
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
