// SPDX-License-Identifier: GPL-2.0
/*
 * toa: hand the real client address carried in a TCP option (TOA) by a
 * FullNAT load balancer to applications, through getpeername(), accept()
 * and getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP).
 *
 * Hooks are kprobes/kretprobes only (ftrace-based at function entry where
 * the kernel has CONFIG_KPROBES_ON_FTRACE): no unexported symbol is
 * linked, no kernel text or read-only data is written, and the probed
 * functions are used by argument position only.
 *
 *   tcp_child_process        the new socket and the ACK that completed
 *                            the handshake
 *   tcp_rcv_established      options in data segments, until the
 *                            application has read data
 *   inet_getname/inet6_getname  rewrite the peer address (getpeername and
 *                            accept both call ops->getname)
 *   tcp_v4_destroy_sock      forget the socket (IPv6 TCP uses it too)
 *
 * State lives in this module's own RCU hash table keyed by socket pointer,
 * never in sk_user_data.
 */
#define pr_fmt(fmt) "TOA: " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/kprobes.h>
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

#include "compat.h"
#include "toa_opt.h"
#include "cidr.h"
#include "tb_stats.h"

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
static int nr_kinds = 1;
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
	struct hlist_node node;
	struct rcu_head rcu;
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
static atomic_t toa_nr_entries = ATOMIC_INIT(0);

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
	       e->dport == inet_sk(sk)->inet_dport &&
	       e->num == inet_sk(sk)->inet_num;
}

/* Copy the client of @sk into @client; caller holds no lock. */
static bool toa_lookup(const struct sock *sk, struct toa_client *client)
{
	struct toa_entry *e;
	bool found = false;

	rcu_read_lock();
	hlist_for_each_entry_rcu(e, &toa_table[toa_bucket(sk)], node) {
		if (toa_entry_matches(e, sk)) {
			*client = e->client;
			found = true;
			break;
		}
	}
	rcu_read_unlock();
	tb_stats_inc(&toa_stats, TOA_STAT_LOOKUPS);
	if (found)
		tb_stats_inc(&toa_stats, TOA_STAT_LOOKUP_HITS);
	return found;
}

/* Store (or replace) the client of @sk. Any context. */
static void toa_store(const struct sock *sk, const struct toa_client *client)
{
	u32 bucket = toa_bucket(sk);
	struct toa_entry *e, *old = NULL, *it;
	unsigned long flags;

	e = kmalloc(sizeof(*e), GFP_ATOMIC);
	if (!e) {
		tb_stats_inc(&toa_stats, TOA_STAT_ALLOC_FAILED);
		return;
	}
	e->sk = sk;
	e->conn_hash = sk->sk_hash;
	e->dport = inet_sk(sk)->inet_dport;
	e->num = inet_sk(sk)->inet_num;
	e->client = *client;

	spin_lock_irqsave(toa_lock(bucket), flags);
	hlist_for_each_entry(it, &toa_table[bucket], node) {
		if (it->sk == sk) {
			old = it;
			break;
		}
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
}

/* Drop the entry of @sk, if any. Any context. */
static void toa_forget(const struct sock *sk)
{
	u32 bucket = toa_bucket(sk);
	struct toa_entry *it, *old = NULL;
	unsigned long flags;

	spin_lock_irqsave(toa_lock(bucket), flags);
	hlist_for_each_entry(it, &toa_table[bucket], node) {
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
		hlist_for_each_entry_safe(e, tmp, &toa_table[i], node) {
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

/* ---- handshake: tcp_child_process ---- */

/*
 * tcp_child_process(listener, child, skb) runs on the new socket with the
 * ACK that completed the handshake (IPv4, IPv6, dual-stack and syncookie
 * paths alike). The child is already in the accept queue but still
 * bh-locked, and accept() takes lock_sock() on it before it reads its
 * address, so the entry stored here is visible to accept() and
 * getpeername(). An entry-only hook: no return trampoline per connection.
 */
static int toa_child_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct sock *child = (struct sock *)tb_probe_arg(regs, 2);
	struct sk_buff *skb = (struct sk_buff *)tb_probe_arg(regs, 3);
	struct toa_client client;

	if (toa_parse_skb(skb, &client)) {
		toa_store(child, &client);
		tb_stats_inc(&toa_stats, TOA_STAT_USED);
	} else if (atomic_read(&toa_nr_entries)) {
		/* A fresh socket never carries an older socket's entry. */
		toa_forget(child);
	}
	return 0;
}

/* ---- first data segments: tcp_rcv_established ---- */

static int toa_established_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct sock *sk = (struct sock *)tb_probe_arg(regs, 1);
	struct sk_buff *skb = (struct sk_buff *)tb_probe_arg(regs, 2);
	const struct tcphdr *th = tcp_hdr(skb);
	const struct tcp_skb_cb *cb = TCP_SKB_CB(skb);
	struct toa_client client, cur;

	/* Fast exits: no options, no payload, or the address is frozen. */
	if (th->doff <= 5)
		return 0;
	if (cb->end_seq - cb->seq - th->fin == 0)
		return 0;
	if (!tb_tcp_nothing_read(sk))
		return 0;
	if (!toa_parse_skb(skb, &client))
		return 0;
	if (atomic_read(&toa_nr_entries) && toa_lookup(sk, &cur) &&
	    !memcmp(&cur, &client, sizeof(cur)))
		return 0;
	toa_store(sk, &client);
	tb_stats_inc(&toa_stats, TOA_STAT_USED);
	return 0;
}

/* ---- getpeername()/accept(): inet_getname / inet6_getname ---- */

struct toa_getname_data {
	struct socket *sock;
	struct sockaddr *uaddr;
};

static int toa_getname_entry(struct kretprobe_instance *ri,
			     struct pt_regs *regs)
{
	struct toa_getname_data *d = (struct toa_getname_data *)ri->data;

	if (!tb_probe_arg(regs, TB_GETNAME_PEER_ARG) ||
	    !atomic_read(&toa_nr_entries))
		return 1;
	d->sock = (struct socket *)tb_probe_arg(regs, 1);
	d->uaddr = (struct sockaddr *)tb_probe_arg(regs, 2);
	return 0;
}

static int toa_getname_return(struct kretprobe_instance *ri,
			      struct pt_regs *regs)
{
	struct toa_getname_data *d = (struct toa_getname_data *)ri->data;
	struct toa_client client;
	struct sock *sk;

	if ((long)tb_probe_retval(regs) < 0)
		return 0;
	sk = d->sock->sk;
	if (!sk || !toa_lookup(sk, &client))
		return 0;

	if (d->uaddr->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)d->uaddr;

		/* NAT64: an IPv4 socket keeps the balancer; see getsockopt. */
		if (client.family != 4)
			return 0;
		sin->sin_port = client.port;
		memcpy(&sin->sin_addr.s_addr, client.addr, 4);
	} else if (d->uaddr->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)d->uaddr;

		sin6->sin6_port = client.port;
		if (client.family == 4) {
			ipv6_addr_set(&sin6->sin6_addr, 0, 0, htonl(0x0000ffff),
				      *(__be32 *)client.addr);
		} else {
			memcpy(sin6->sin6_addr.s6_addr, client.addr, 16);
		}
		sin6->sin6_flowinfo = 0;
		sin6->sin6_scope_id = 0;
	}
	return 0;
}

/* ---- socket destruction: tcp_v4_destroy_sock ---- */

static int toa_destroy_pre(struct kprobe *p, struct pt_regs *regs)
{
	if (atomic_read(&toa_nr_entries))
		toa_forget((struct sock *)tb_probe_arg(regs, 1));
	return 0;
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

/* ---- probes ---- */

static struct kretprobe toa_getname_v4_probe = {
	.kp.symbol_name = "inet_getname",
	.entry_handler = toa_getname_entry,
	.handler = toa_getname_return,
	.data_size = sizeof(struct toa_getname_data),
};

#if IS_ENABLED(CONFIG_IPV6)
static struct kretprobe toa_getname_v6_probe = {
	.kp.symbol_name = "inet6_getname",
	.entry_handler = toa_getname_entry,
	.handler = toa_getname_return,
	.data_size = sizeof(struct toa_getname_data),
};
#endif

static struct kretprobe *toa_kretprobes[] = {
	&toa_getname_v4_probe,
#if IS_ENABLED(CONFIG_IPV6)
	&toa_getname_v6_probe,
#endif
};

static struct kprobe toa_destroy_probe = {
	.symbol_name = "tcp_v4_destroy_sock",
	.pre_handler = toa_destroy_pre,
};

static struct kprobe toa_child_probe = {
	.symbol_name = "tcp_child_process",
	.pre_handler = toa_child_pre,
};

static struct kprobe toa_established_probe = {
	.symbol_name = "tcp_rcv_established",
	.pre_handler = toa_established_pre,
};

/* ---- /proc/net/toa_stats (in every network namespace) ---- */

static int toa_stats_show(struct seq_file *seq, void *v)
{
	unsigned long missed = 0;
	int i;

	tb_stats_show(seq, &toa_stats);
	for (i = 0; i < ARRAY_SIZE(toa_kretprobes); i++)
		missed += toa_kretprobes[i]->nmissed +
			  toa_kretprobes[i]->kp.nmissed;
	missed += toa_child_probe.nmissed + toa_established_probe.nmissed +
		  toa_destroy_probe.nmissed;
	seq_printf(seq, "entries %d\n", atomic_read(&toa_nr_entries));
	seq_printf(seq, "probe_missed %lu\n", missed);
	return 0;
}

static int __net_init toa_net_init(struct net *net)
{
	if (!tb_proc_create_single("toa_stats", 0444, net->proc_net,
				   toa_stats_show))
		return -ENOMEM;
	return 0;
}

static void __net_exit toa_net_exit(struct net *net)
{
	remove_proc_entry("toa_stats", net->proc_net);
}

static struct pernet_operations toa_net_ops = {
	.init = toa_net_init,
	.exit = toa_net_exit,
};

/* ---- load / unload ---- */

static int __init toa_parse_params(void)
{
	int i, err, pos;

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
	err = register_pernet_subsys(&toa_net_ops);
	if (err)
		goto free_stats;
	err = nf_register_sockopt(&toa_sockopts);
	if (err) {
		pr_err("getsockopt %d is taken by another module (%d)\n",
		       TOA_SO_GET_LOOKUP, err);
		goto unregister_net;
	}

	/* Forgetting must be in place before anything can be stored. */
	err = register_kprobe(&toa_destroy_probe);
	if (err) {
		pr_err("cannot probe %s (%d)\n", toa_destroy_probe.symbol_name,
		       err);
		goto unregister_sockopt;
	}
	for (i = 0; i < ARRAY_SIZE(toa_kretprobes); i++)
		toa_kretprobes[i]->maxactive =
			max_t(int, 64, 4 * num_possible_cpus());
	err = register_kretprobes(toa_kretprobes, ARRAY_SIZE(toa_kretprobes));
	if (err) {
		pr_err("cannot probe inet_getname/inet6_getname (%d)\n", err);
		goto unregister_destroy;
	}
	err = register_kprobe(&toa_established_probe);
	if (err) {
		pr_err("cannot probe %s (%d)\n",
		       toa_established_probe.symbol_name, err);
		goto unregister_kretprobes;
	}
	err = register_kprobe(&toa_child_probe);
	if (err) {
		pr_err("cannot probe %s (%d)\n", toa_child_probe.symbol_name,
		       err);
		goto unregister_established;
	}
	pr_info("toa loaded\n");
	return 0;

unregister_established:
	unregister_kprobe(&toa_established_probe);
unregister_kretprobes:
	unregister_kretprobes(toa_kretprobes, ARRAY_SIZE(toa_kretprobes));
unregister_destroy:
	unregister_kprobe(&toa_destroy_probe);
	toa_table_free_all();
unregister_sockopt:
	nf_unregister_sockopt(&toa_sockopts);
unregister_net:
	unregister_pernet_subsys(&toa_net_ops);
free_stats:
	tb_stats_free(&toa_stats);
	return err;
}

static void __exit toa_exit(void)
{
	/*
	 * Unregistering waits for running handlers (and, for kretprobes,
	 * disarms pending returns), so once all probes are gone nothing but
	 * getsockopt and /proc can reach the table; those go next.
	 */
	unregister_kprobe(&toa_child_probe);
	unregister_kprobe(&toa_established_probe);
	unregister_kretprobes(toa_kretprobes, ARRAY_SIZE(toa_kretprobes));
	unregister_kprobe(&toa_destroy_probe);
	nf_unregister_sockopt(&toa_sockopts);
	unregister_pernet_subsys(&toa_net_ops);
	synchronize_rcu();
	toa_table_free_all();
	tb_stats_free(&toa_stats);
	pr_info("toa unloaded\n");
}

module_init(toa_init);
module_exit(toa_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("TCP Option Address: real client addresses behind FullNAT load balancers");
MODULE_VERSION("0.1.0");
