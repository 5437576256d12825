// SPDX-License-Identifier: GPL-2.0
/*
 * toa: hand the real client address carried in a TCP option (TOA) by a
 * FullNAT load balancer to applications, through getpeername(), accept()
 * and getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP).
 *
 * This file is the module's logic; how it is called is its hook
 * provider's business (toa.h): ftrace and tracepoints out of tree
 * (toa_hook_ftrace.c), explicit hook points in a kernel tree carrying
 * TOA (toa_hook_tree.c). Either way four places call in:
 *
 *   tcp_child_process        the new socket and the ACK that completed
 *                            the handshake: toa_child()
 *   tcp_rcv_established      the option in the segment carrying the
 *                            first stream byte, when the handshake ACK
 *                            had none: toa_established()
 *   inet_getname/inet6_getname  the peer address getpeername() and
 *                            accept() return: toa_rewrite_peer()
 *   tcp_v4_destroy_sock      forget the socket (IPv6 TCP uses it too):
 *                            toa_destroyed()
 *
 * Every hook runs for every TCP socket, so each one leaves within a few
 * instructions unless the segment carries options other than the usual
 * timestamps, or the table holds entries.
 *
 * State lives in this module's own RCU hash table keyed by socket pointer,
 * never in sk_user_data.
 *
 * Who may set the address: the option must come from a trusted source, on
 * a socket this host accepted (never one it connect()ed: there the remote
 * is a server, not our balancer), in the handshake ACK or, failing that,
 * in the segment carrying the first byte of the stream; and only once per
 * connection. Later segments are the client's own (a balancer inserts its
 * option into the first ones only), so an option there must not replace
 * the address, whether or not the application has read anything yet (in
 * SMTP, FTP or SSH the server speaks first and reads late).
 */
#define pr_fmt(fmt) "TOA: " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/rculist.h>
#include <linux/hash.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/netfilter.h>
#include <linux/uaccess.h>
#include <net/net_namespace.h>
#include <net/sock.h>
#include <net/inet_sock.h>
#include <net/tcp.h>
#include <net/inet_common.h>
#include <net/ipv6.h>

#include "compat.h"
#include "toa_opt.h"
#include "cidr.h"
#include "tb_stats.h"
#include "toa.h"

/* DPVS-compatible lookup for NAT64 (IPv6 client on an IPv4 socket). */
#define TOA_SO_BASE		4096
#define TOA_SO_GET_LOOKUP	(TOA_SO_BASE)
#define TOA_SO_GET_MAX		(TOA_SO_BASE)

struct toa_nat64_peer {
	struct in6_addr saddr;
	u16 port;		/* network byte order, as on the wire */
};

#define TOA_MAX_KINDS		16

static int kinds[TOA_MAX_KINDS] = { TOA_OPT_KIND_DEFAULT };
static unsigned int nr_kinds = 1;
module_param_array(kinds, int, &nr_kinds, 0444);
MODULE_PARM_DESC(kinds, "TCP option kinds carrying the client address (default 254)");

static char *trusted_sources = "";
module_param(trusted_sources, charp, 0444);
MODULE_PARM_DESC(trusted_sources,
		 "Comma-separated CIDRs of the load balancers; empty trusts every source");

static struct toa_kind_set toa_kinds;
static struct tb_cidr_list toa_trusted;

enum toa_stat {
	TOA_STAT_SEEN,
	TOA_STAT_USED,
	TOA_STAT_MALFORMED,
	TOA_STAT_UNTRUSTED,
	TOA_STAT_LOOKUPS,
	TOA_STAT_LOOKUP_HITS,
	TOA_STAT_ALLOC_FAILED,
	TOA_STAT_COUNT
};

static const char *const toa_stat_names[TOA_STAT_COUNT] = {
	"options_seen",
	"options_used",
	"malformed",
	"untrusted",
	"lookups",
	"lookup_hits",
	"alloc_failed",
};

static struct tb_stats toa_stats;

/* The client address recovered for one socket. */
struct toa_client {
	u8 family;		/* 4 or 6 */
	__be16 port;
	u8 addr[16];
};

/*
 * One socket's entry. Besides the pointer, the entry records the
 * connection's hash and ports: a lookup only matches the same connection,
 * so a socket allocated later at the same address can never inherit it
 * even if a free were ever missed (frees are hooked in destroy).
 */
struct toa_entry {
	struct rcu_head rcu;	/* first: see kfree_rcu() in compat.h */
	struct hlist_node node;
	const struct sock *sk;
	u32 conn_hash;
	__be16 dport;
	u16 num;
	struct toa_client client;
};

#define TOA_HASH_BITS	12
#define TOA_LOCK_BITS	8

static struct hlist_head toa_table[1 << TOA_HASH_BITS];
static spinlock_t toa_locks[1 << TOA_LOCK_BITS];
/* Lets every hook skip the table when nothing is stored (the usual case). */
atomic_t toa_nr_entries = ATOMIC_INIT(0);

static inline u32 toa_bucket(const struct sock *sk)
{
	return hash_ptr((void *)sk, TOA_HASH_BITS);
}

static inline spinlock_t *toa_lock(u32 bucket)
{
	return &toa_locks[bucket & ((1 << TOA_LOCK_BITS) - 1)];
}

static inline bool toa_entry_matches(const struct toa_entry *e,
				     const struct sock *sk)
{
	return e->sk == sk && e->conn_hash == sk->sk_hash &&
	       e->dport == tb_inet_dport(sk) &&
	       e->num == tb_inet_num(sk);
}

/* Copy the client of @sk into @client; caller holds no lock. */
static bool toa_lookup(const struct sock *sk, struct toa_client *client)
{
	struct toa_entry *e;
	bool found = false;

	/* Counted inside the read section: unloading waits for it. */
	rcu_read_lock();
	tb_hlist_for_each_entry_rcu(e, &toa_table[toa_bucket(sk)], node) {
		if (toa_entry_matches(e, sk)) {
			*client = e->client;
			found = true;
			break;
		}
	}
	tb_stats_inc(&toa_stats, TOA_STAT_LOOKUPS);
	if (found)
		tb_stats_inc(&toa_stats, TOA_STAT_LOOKUP_HITS);
	rcu_read_unlock();
	return found;
}

/*
 * Store the client of @sk. @fresh: @sk is a socket just created, so an
 * entry found under its pointer belongs to an older socket and is
 * replaced; otherwise an entry of this very connection is kept (the
 * address is set once) and false returned. Any context.
 */
static bool toa_store(const struct sock *sk, const struct toa_client *client,
		      bool fresh)
{
	u32 bucket = toa_bucket(sk);
	struct toa_entry *e, *old = NULL, *it;
	unsigned long flags;

	e = kmalloc(sizeof(*e), GFP_ATOMIC);
	if (!e) {
		tb_stats_inc(&toa_stats, TOA_STAT_ALLOC_FAILED);
		return false;
	}
	e->sk = sk;
	e->conn_hash = sk->sk_hash;
	e->dport = tb_inet_dport(sk);
	e->num = tb_inet_num(sk);
	e->client = *client;

	spin_lock_irqsave(toa_lock(bucket), flags);
	tb_hlist_for_each_entry(it, &toa_table[bucket], node) {
		if (it->sk == sk) {
			old = it;
			break;
		}
	}
	if (old && !fresh && toa_entry_matches(old, sk)) {
		spin_unlock_irqrestore(toa_lock(bucket), flags);
		kfree(e);
		return false;
	}
	if (old) {
		hlist_replace_rcu(&old->node, &e->node);
	} else {
		hlist_add_head_rcu(&e->node, &toa_table[bucket]);
		atomic_inc(&toa_nr_entries);
	}
	spin_unlock_irqrestore(toa_lock(bucket), flags);
	if (old)
		kfree_rcu(old, rcu);
	return true;
}

/* Drop the entry of @sk, if any. Any context. */
static void toa_forget(const struct sock *sk)
{
	u32 bucket = toa_bucket(sk);
	struct toa_entry *it, *old = NULL;
	unsigned long flags;

	spin_lock_irqsave(toa_lock(bucket), flags);
	tb_hlist_for_each_entry(it, &toa_table[bucket], node) {
		if (it->sk == sk) {
			old = it;
			hlist_del_rcu(&old->node);
			atomic_dec(&toa_nr_entries);
			break;
		}
	}
	spin_unlock_irqrestore(toa_lock(bucket), flags);
	if (old)
		kfree_rcu(old, rcu);
}

static void toa_table_free_all(void)
{
	struct toa_entry *e;
	struct hlist_node *tmp;
	int i;

	for (i = 0; i < (1 << TOA_HASH_BITS); i++) {
		tb_hlist_for_each_entry_safe(e, tmp, &toa_table[i], node) {
			hlist_del(&e->node);
			kfree(e);
		}
	}
	atomic_set(&toa_nr_entries, 0);
}

/* Is @skb's network source one of the trusted balancers? */
static bool toa_source_trusted(const struct sk_buff *skb)
{
	if (!toa_trusted.count)
		return true;
	if (skb->protocol == htons(ETH_P_IP))
		return tb_cidr_list_match(&toa_trusted, 4,
					  (const u8 *)&ip_hdr(skb)->saddr);
#if IS_ENABLED(CONFIG_IPV6)
	if (skb->protocol == htons(ETH_P_IPV6))
		return tb_cidr_list_match(&toa_trusted, 6,
					  ipv6_hdr(skb)->saddr.s6_addr);
#endif
	return false;
}

/* NOP, NOP, timestamp: the options of nearly every segment without TOA. */
#define TOA_TSTAMP_ALIGNED_WORD \
	((TCPOPT_NOP << 24) | (TCPOPT_NOP << 16) | \
	 (TCPOPT_TIMESTAMP << 8) | TCPOLEN_TIMESTAMP)

/*
 * Read the address option of a received segment whose TCP header is in
 * the linear area (tcp_v4_rcv/tcp_v6_rcv pulled doff * 4 bytes).
 */
static bool toa_parse_skb(const struct sk_buff *skb, struct toa_client *client)
{
	const struct tcphdr *th = tcp_hdr(skb);
	int optlen = th->doff * 4 - (int)sizeof(*th);
	struct toa_opt opt;
	int ret;

	if (optlen <= 0)
		return false;
	if (optlen == TCPOLEN_TSTAMP_ALIGNED &&
	    *(const __be32 *)(th + 1) == htonl(TOA_TSTAMP_ALIGNED_WORD))
		return false;
	ret = toa_opt_parse((const u8 *)(th + 1), optlen, &toa_kinds, &opt);
	if (opt.seen)
		tb_stats_inc(&toa_stats, TOA_STAT_SEEN);
	if (opt.malformed)
		tb_stats_inc(&toa_stats, TOA_STAT_MALFORMED);
	if (ret != TOA_OPT_FOUND)
		return false;
	if (!toa_source_trusted(skb)) {
		tb_stats_inc(&toa_stats, TOA_STAT_UNTRUSTED);
		return false;
	}
	client->family = opt.family;
	client->port = (__force __be16)opt.port_be;
	memcpy(client->addr, opt.addr, sizeof(client->addr));
	return true;
}

/* ---- passively opened sockets awaiting their first byte ---- */

/*
 * A late option is honoured only on a socket this host accepted. Nothing
 * in struct sock says how a TCP socket was opened, and an entry per
 * accepted connection would cost an allocation for every accept; so
 * tcp_child_process records the child's pointer here, in a small
 * set-associative array without locks, when its handshake ACK carried no
 * option, and the first byte or the socket's destruction clears it. A
 * connect()ed socket is never recorded. When all ways of a set are taken
 * (more than TOA_PASSIVE_WAYS accepted sockets of one set still waiting
 * for their first byte), one of them is overwritten and loses its late
 * option: the peer it shows is then the balancer, never someone else.
 */
#define TOA_PASSIVE_BITS	10
#define TOA_PASSIVE_WAYS	4

struct toa_passive_set {
	const struct sock *sk[TOA_PASSIVE_WAYS];
} __aligned(sizeof(void *) * TOA_PASSIVE_WAYS);

static struct toa_passive_set toa_passive[1 << TOA_PASSIVE_BITS];

static inline struct toa_passive_set *toa_passive_set(const struct sock *sk)
{
	return &toa_passive[hash_ptr((void *)sk, TOA_PASSIVE_BITS)];
}

static void toa_passive_mark(const struct sock *sk)
{
	struct toa_passive_set *set = toa_passive_set(sk);
	int i;

	for (i = 0; i < TOA_PASSIVE_WAYS; i++)
		if (!READ_ONCE(set->sk[i]) && !cmpxchg(&set->sk[i], NULL, sk))
			return;
	WRITE_ONCE(set->sk[hash_ptr((void *)sk, 2)], sk);
}

/* Clear @sk's record; true if there was one. */
static bool toa_passive_clear(const struct sock *sk)
{
	struct toa_passive_set *set = toa_passive_set(sk);
	int i;

	for (i = 0; i < TOA_PASSIVE_WAYS; i++)
		if (READ_ONCE(set->sk[i]) == sk &&
		    cmpxchg(&set->sk[i], sk, NULL) == sk)
			return true;
	return false;
}

/* ---- the entry points the hook provider calls (toa.h) ---- */

void toa_child(struct sock *child, const struct sk_buff *skb)
{
	struct toa_client client;

	if (toa_parse_skb(skb, &client)) {
		if (toa_store(child, &client, true))
			tb_stats_inc(&toa_stats, TOA_STAT_USED);
		return;
	}
	/* A fresh socket never carries an older socket's entry. */
	if (!toa_table_empty())
		toa_forget(child);
	toa_passive_mark(child);
}

void toa_first_data(struct sock *sk, const struct sk_buff *skb)
{
	struct toa_client client;

	if (!toa_passive_clear(sk))
		return;
	if (!toa_parse_skb(skb, &client))
		return;
	if (toa_store(sk, &client, false))
		tb_stats_inc(&toa_stats, TOA_STAT_USED);
}

void toa_destroyed(struct sock *sk)
{
	/* A socket allocated here later must not look accepted. */
	toa_passive_clear(sk);
	if (!toa_table_empty())
		toa_forget(sk);
}

void toa_rewrite_peer(struct socket *sock, struct sockaddr *uaddr)
{
	struct toa_client client;
	struct sock *sk = sock->sk;

	if (!sk || !toa_lookup(sk, &client))
		return;
	if (uaddr->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)uaddr;

		/* NAT64: an IPv4 socket keeps the balancer; see getsockopt. */
		if (client.family != 4)
			return;
		sin->sin_port = client.port;
		memcpy(&sin->sin_addr.s_addr, client.addr, 4);
	} else if (uaddr->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)uaddr;

		sin6->sin6_port = client.port;
		if (client.family == 4)
			ipv6_addr_set(&sin6->sin6_addr, 0, 0, htonl(0x0000ffff),
				      *(__be32 *)client.addr);
		else
			memcpy(sin6->sin6_addr.s6_addr, client.addr, 16);
		sin6->sin6_flowinfo = 0;
		sin6->sin6_scope_id = 0;
	}
}

/* ---- getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP) ---- */

static int toa_getsockopt(struct sock *sk, int cmd, void __user *user,
			  int *len)
{
	struct toa_nat64_peer peer;
	struct toa_client client;

	if (cmd != TOA_SO_GET_LOOKUP)
		return -ENOPROTOOPT;
	if (*len < (int)sizeof(peer))
		return -EINVAL;
	if (!toa_lookup(sk, &client))
		return -ENOENT;
	memset(&peer, 0, sizeof(peer));
	if (client.family == 4)
		ipv6_addr_set(&peer.saddr, 0, 0, htonl(0x0000ffff),
			      *(__be32 *)client.addr);
	else
		memcpy(peer.saddr.s6_addr, client.addr, 16);
	peer.port = (__force u16)client.port;
	if (copy_to_user(user, &peer, sizeof(peer)))
		return -EFAULT;
	*len = sizeof(peer);
	return 0;
}

static struct nf_sockopt_ops toa_sockopts = {
	.pf = PF_INET,
	.get_optmin = TOA_SO_BASE,
	.get_optmax = TOA_SO_GET_MAX + 1,
	.get = toa_getsockopt,
	.owner = THIS_MODULE,
};

/* ---- /proc/net/toa_stats (initial network namespace only) ---- */

/*
 * The counters and the table are the host's, for every namespace at once
 * (the options a namespace's sockets receive are not told apart), and
 * only the host sets the module's parameters. A container shown them
 * would read other tenants' traffic as its own, so the file exists in
 * the initial namespace only, where the host's operator looks.
 */
static int toa_stats_show(struct seq_file *seq, void *v)
{
	tb_stats_show(seq, &toa_stats);
	seq_printf(seq, "entries %d\n", atomic_read(&toa_nr_entries));
	return 0;
}

TB_PROC_SINGLE_DATA(toa_stats_show);

/* ---- load / unload ---- */

static int __init toa_parse_params(void)
{
	unsigned int i;
	int err, pos;

	toa_kind_set_clear(&toa_kinds);
	for (i = 0; i < nr_kinds; i++) {
		/* 0 and 1 are End-of-list and NOP, never an address option. */
		if (kinds[i] < 2 || kinds[i] > 255) {
			pr_err("kinds=%d is not a TCP option kind (2-255)\n",
			       kinds[i]);
			return -EINVAL;
		}
		toa_kind_set_add(&toa_kinds, (u8)kinds[i]);
	}

	err = tb_cidr_list_parse(trusted_sources, &toa_trusted, &pos);
	if (err) {
		pr_err("trusted_sources: %s at \"%s\"; expected CIDRs like 10.0.0.0/8,2001:db8::/32\n",
		       tb_cidr_strerror(err), trusted_sources + pos);
		return -EINVAL;
	}
	if (!toa_trusted.count)
		pr_info("trusted_sources is empty: trusting TOA options from every source\n");
	else
		pr_info("trusting TOA options from %d CIDR(s)\n",
			toa_trusted.count);
	return 0;
}

/*
 * Hooks first, the user-visible entry points (getsockopt, /proc) last;
 * removal in the reverse order, and the table and counters are freed only
 * once no hook, wrapper, getsockopt or /proc reader can reach them.
 */
static void toa_teardown(bool sockopt)
{
	if (sockopt)
		nf_unregister_sockopt(&toa_sockopts);
	/* Returns once no hook runs in this module's code. */
	toa_hooks_unregister();
	/* Then the getsockopt calls still inside an RCU read section. */
	synchronize_rcu();
	toa_table_free_all();
	/* Entries freed by kfree_rcu() where that is a callback of ours. */
	tb_rcu_barrier();
	tb_stats_free(&toa_stats);
}

static int __init toa_init(void)
{
	int i, err;

	for (i = 0; i < (1 << TOA_LOCK_BITS); i++)
		spin_lock_init(&toa_locks[i]);
	err = toa_parse_params();
	if (err)
		return err;
	err = tb_stats_init(&toa_stats, toa_stat_names, TOA_STAT_COUNT);
	if (err)
		return err;

	err = toa_hooks_register();
	if (err)
		goto teardown;
	err = nf_register_sockopt(&toa_sockopts);
	if (err) {
		pr_err("getsockopt %d is taken by another module (%d)\n",
		       TOA_SO_GET_LOOKUP, err);
		goto teardown;
	}
	if (!tb_proc_create_single_data("toa_stats", 0444, init_net.proc_net,
					toa_stats_show, NULL)) {
		err = -ENOMEM;
		toa_teardown(true);
		return err;
	}
	pr_info("toa loaded\n");
	return 0;

teardown:
	toa_teardown(false);
	return err;
}

static void __exit toa_exit(void)
{
	/* Waits for running readers of the file. */
	remove_proc_entry("toa_stats", init_net.proc_net);
	toa_teardown(true);
	pr_info("toa unloaded\n");
}

module_init(toa_init);
module_exit(toa_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TCP Option Address: real client addresses behind FullNAT load balancers");
MODULE_VERSION("0.1.0");
