// SPDX-License-Identifier: GPL-2.0
/*
 * toa: hand the real client address carried in a TCP option (TOA) by a
 * FullNAT load balancer to applications, through getpeername(), accept()
 * and getsockopt(IPPROTO_IP, TOA_SO_GET_LOOKUP).
 *
 * Hooks are kernel tracepoints where one sits at the right place (a
 * direct call with the tracepoint's arguments, the cheapest hook there
 * is) and ftrace callbacks at function entry elsewhere (the mechanism
 * kprobes and livepatch use, without the kprobe layer's cost): no
 * unexported symbol is linked, no kernel text or read-only data is
 * written by this module, and the hooked functions are used by argument
 * position only.
 *
 *   tcp_child_process        the new socket and the ACK that completed
 *                            the handshake (ftrace)
 *   tcp_rcv_established      the option in the segment carrying the
 *                            first stream byte, when the handshake ACK
 *                            had none (its tcp_probe tracepoint; ftrace
 *                            where there is none)
 *   inet_getname/inet6_getname  redirected to a wrapper that rewrites
 *                            the peer address (getpeername and accept
 *                            both call ops->getname; ftrace IPMODIFY)
 *   tcp_v4_destroy_sock      forget the socket (IPv6 TCP uses it too;
 *                            its tcp_destroy_sock tracepoint, or ftrace)
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
#include <linux/ftrace.h>
#include <linux/delay.h>
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

	/* Counted inside the read section: unloading waits for it. */
	rcu_read_lock();
	hlist_for_each_entry_rcu(e, &toa_table[toa_bucket(sk)], node) {
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

/* ---- handshake: tcp_child_process ---- */

/*
 * tcp_child_process(listener, child, skb) runs on the new socket with the
 * ACK that completed the handshake (IPv4, IPv6, dual-stack and syncookie
 * paths alike). The child is already in the accept queue but still
 * bh-locked, and accept() takes lock_sock() on it before it reads its
 * address, so the entry stored here is visible to accept() and
 * getpeername(). An entry-only hook: no return trampoline per connection.
 */
static TB_FTRACE_CALLBACK(toa_child_hook)
{
	struct sock *child = (struct sock *)tb_ftrace_arg(2);
	struct sk_buff *skb = (struct sk_buff *)tb_ftrace_arg(3);
	struct toa_client client;

	if (toa_parse_skb(skb, &client)) {
		if (toa_store(child, &client, true))
			tb_stats_inc(&toa_stats, TOA_STAT_USED);
		return;
	}
	/* A fresh socket never carries an older socket's entry. */
	if (atomic_read(&toa_nr_entries))
		toa_forget(child);
	toa_passive_mark(child);
}

/* ---- the first data segment: tcp_rcv_established ---- */

static void toa_established(struct sock *sk, const struct sk_buff *skb)
{
	const struct tcphdr *th = tcp_hdr(skb);
	const struct tcp_skb_cb *cb = TCP_SKB_CB(skb);
	struct toa_client client;

	/*
	 * Fast exits: no options, no payload, not the first byte. Only the
	 * first byte's segment clears the record of an accepted socket, so
	 * an option in any later one (the client's own) finds none.
	 */
	if (th->doff <= 5)
		return;
	if (cb->end_seq - cb->seq - th->fin == 0)
		return;
	if (!tb_tcp_first_byte(sk, cb->seq))
		return;
	if (!toa_passive_clear(sk))
		return;
	if (!toa_parse_skb(skb, &client))
		return;
	if (toa_store(sk, &client, false))
		tb_stats_inc(&toa_stats, TOA_STAT_USED);
}

static TB_FTRACE_CALLBACK(toa_established_hook)
{
	toa_established((struct sock *)tb_ftrace_arg(1),
			(const struct sk_buff *)tb_ftrace_arg(2));
}

/* ---- socket destruction: tcp_v4_destroy_sock ---- */

static inline void toa_destroyed(struct sock *sk)
{
	/* A socket allocated here later must not look accepted. */
	toa_passive_clear(sk);
	if (atomic_read(&toa_nr_entries))
		toa_forget(sk);
}

static TB_FTRACE_CALLBACK(toa_destroy_hook)
{
	toa_destroyed((struct sock *)tb_ftrace_arg(1));
}

#ifdef TB_HAVE_TCP_TRACEPOINTS
/* The same, as tracepoint probes: TP_PROTO with the probe's data first. */
static void toa_established_probe(void *data, struct sock *sk,
				  const struct sk_buff *skb)
{
	toa_established(sk, skb);
}

static void toa_destroy_probe(void *data, struct sock *sk)
{
	toa_destroyed(sk);
}
#define TOA_TP(tp_name, fn)	.tracepoint = (tp_name), .probe = (void *)(fn)
#else
#define TOA_TP(tp_name, fn)	.tracepoint = NULL
#endif

/* ---- getpeername()/accept(): inet_getname / inet6_getname ---- */

/*
 * When the table holds entries, a call of inet_getname()/inet6_getname()
 * asking for the peer is redirected (ftrace IPMODIFY, as livepatch does)
 * to a wrapper here that calls the real function and then rewrites the
 * address. Calls asking for the local name, and every call while the
 * table is empty, cost only the ftrace callback. Wrappers in flight are
 * counted so unloading waits for them to leave this module's code.
 */
static DEFINE_PER_CPU(long, toa_redirects);

static void toa_rewrite_peer(struct socket *sock, struct sockaddr *uaddr)
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

/*
 * The callback redirects only calls asking for the peer; @peer is checked
 * again here so that getsockname() is never rewritten, whatever reaches
 * the wrapper.
 */
static void toa_getname_done(int ret, struct socket *sock,
			     struct sockaddr *uaddr, int peer)
{
	if (ret >= 0 && peer)
		toa_rewrite_peer(sock, uaddr);
	this_cpu_dec(toa_redirects);
}

TB_GETNAME_WRAPPER(toa_inet_getname, inet_getname, toa_getname_done)
#if IS_ENABLED(CONFIG_IPV6)
TB_GETNAME_WRAPPER(toa_inet6_getname, inet6_getname, toa_getname_done)
#endif

/*
 * Both functions are hooked by one ftrace_ops (each ops costs RCU-tasks
 * grace periods when unregistered); @ip tells which one was called.
 */
static unsigned long toa_getname_wrapper(unsigned long ip)
{
#if IS_ENABLED(CONFIG_IPV6)
	if (tb_ftrace_ip_in(ip, (unsigned long)inet6_getname,
			    (unsigned long)inet_getname))
		return (unsigned long)toa_inet6_getname;
#endif
	return (unsigned long)toa_inet_getname;
}

static TB_FTRACE_CALLBACK(toa_getname_hook)
{
	struct pt_regs *regs;

	if (!tb_ftrace_arg(TB_GETNAME_PEER_ARG) ||
	    !atomic_read(&toa_nr_entries))
		return;
	/* The wrapper's own call of the real function. */
	if (tb_within_module(parent_ip, THIS_MODULE))
		return;
	regs = tb_ftrace_regs();
	if (!regs)
		return;
	this_cpu_inc(toa_redirects);
	instruction_pointer_set(regs, toa_getname_wrapper(ip));
}

static void toa_wait_redirects(void)
{
	for (;;) {
		long in_flight = 0;
		int cpu;

		for_each_possible_cpu(cpu)
			in_flight += per_cpu(toa_redirects, cpu);
		if (!in_flight)
			break;
		msleep(20);
	}
	/* Let the last wrappers execute their final instructions. */
	synchronize_rcu_tasks();
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

/* ---- hooks ---- */

static struct ftrace_ops toa_child_ops = {
	.func = toa_child_hook,
	.flags = TB_FTRACE_FL_ARGS,
};

static struct ftrace_ops toa_established_ops = {
	.func = toa_established_hook,
	.flags = TB_FTRACE_FL_ARGS,
};

static struct ftrace_ops toa_destroy_ops = {
	.func = toa_destroy_hook,
	.flags = TB_FTRACE_FL_ARGS,
};

static struct ftrace_ops toa_getname_ops = {
	.func = toa_getname_hook,
	.flags = TB_FTRACE_FL_REGS,
};

struct toa_hook {
	const char *symbol;		/* ftrace: the function's entry */
	struct ftrace_ops *ops;
	/*
	 * Set for functions exported on every kernel: ftrace filters on the
	 * address at once, where a name means reading the name of every
	 * traceable function (~65 ms per hook in a TCG guest). Up to two
	 * functions share one ops.
	 */
	unsigned long addr[2];
	const char *tracepoint;		/* preferred where the kernel has it */
	void *probe;
	struct tracepoint *tp;		/* attached to this tracepoint */
	bool registered;
};

/* Registered in this order; forgetting first, storing last. */
static struct toa_hook toa_hooks[] = {
	{ "tcp_v4_destroy_sock", &toa_destroy_ops,
	  TOA_TP("tcp_destroy_sock", toa_destroy_probe) },
	{ "inet_getname/inet6_getname", &toa_getname_ops,
	  .addr = { (unsigned long)inet_getname,
#if IS_ENABLED(CONFIG_IPV6)
		    (unsigned long)inet6_getname,
#endif
	  } },
	{ "tcp_rcv_established", &toa_established_ops,
	  TOA_TP("tcp_probe", toa_established_probe) },
	{ "tcp_child_process", &toa_child_ops },
};

#ifdef TB_HAVE_TCP_TRACEPOINTS
static void __init toa_tp_match(struct tracepoint *tp, void *priv)
{
	struct toa_hook *h = priv;

	if (!h->tp && !strcmp(tp->name, h->tracepoint))
		h->tp = tp;
}

/* Attach @h to its tracepoint; false: use ftrace instead. */
static bool __init toa_hook_attach_tp(struct toa_hook *h)
{
	int err;

	if (!h->tracepoint)
		return false;
	for_each_kernel_tracepoint(toa_tp_match, h);
	if (!h->tp)
		return false;
	err = tracepoint_probe_register(h->tp, h->probe, NULL);
	if (err) {
		pr_info("tracepoint %s unusable (%d), hooking %s instead\n",
			h->tracepoint, err, h->symbol);
		h->tp = NULL;
		return false;
	}
	return true;
}

static bool toa_hook_detach_tp(struct toa_hook *h)
{
	if (!h->tp)
		return false;
	tracepoint_probe_unregister(h->tp, h->probe, NULL);
	h->tp = NULL;
	return true;
}

static void toa_tp_sync(void)
{
	tracepoint_synchronize_unregister();
}
#else
static bool __init toa_hook_attach_tp(struct toa_hook *h)
{
	return false;
}

static bool toa_hook_detach_tp(struct toa_hook *h)
{
	return false;
}

static void toa_tp_sync(void)
{
}
#endif

static int __init toa_hook_register(struct toa_hook *h)
{
	int i, err = 0;

	if (toa_hook_attach_tp(h)) {
		h->registered = true;
		return 0;
	}
	if (!h->addr[0])
		err = ftrace_set_filter(h->ops, (unsigned char *)h->symbol,
					strlen(h->symbol), 1);
	for (i = 0; i < ARRAY_SIZE(h->addr) && h->addr[i] && !err; i++)
		err = ftrace_set_filter_ip(h->ops, h->addr[i], 0, 0);
	if (err) {
		tb_ftrace_free_filter(h->ops);
		pr_err("cannot hook %s: not traceable in this kernel (%d)\n",
		       h->symbol, err);
		return err;
	}
	err = register_ftrace_function(h->ops);
	if (err) {
		tb_ftrace_free_filter(h->ops);
		pr_err("cannot hook %s (%d)\n", h->symbol, err);
		return err;
	}
	h->registered = true;
	return 0;
}

/*
 * Waits for running callbacks (ftrace synchronizes on unregister; probes
 * are waited for once, after the last tracepoint detached).
 */
static void toa_hooks_unregister(void)
{
	bool tracepoints = false;
	int i;

	for (i = ARRAY_SIZE(toa_hooks) - 1; i >= 0; i--) {
		struct toa_hook *h = &toa_hooks[i];

		if (!h->registered)
			continue;
		h->registered = false;
		if (toa_hook_detach_tp(h)) {
			tracepoints = true;
			continue;
		}
		unregister_ftrace_function(h->ops);
		tb_ftrace_free_filter(h->ops);
	}
	if (tracepoints)
		toa_tp_sync();
}

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

static int __init toa_nr_tracepoints(void)
{
	int i, n = 0;

	for (i = 0; i < ARRAY_SIZE(toa_hooks); i++)
		n += toa_hooks[i].tp != NULL;
	return n;
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
	/* Waits for running callbacks. */
	toa_hooks_unregister();
	/*
	 * Wrappers still running (e.g. asleep in lock_sock() inside
	 * inet_getname) are waited for, then the getsockopt calls and
	 * wrappers still inside an RCU read section.
	 */
	toa_wait_redirects();
	synchronize_rcu();
	toa_table_free_all();
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

	for (i = 0; i < ARRAY_SIZE(toa_hooks); i++) {
		err = toa_hook_register(&toa_hooks[i]);
		if (err)
			goto teardown;
		pr_debug("%s hooked through %s\n", toa_hooks[i].symbol,
			 toa_hooks[i].tp ? "its tracepoint" : "ftrace");
	}
	err = nf_register_sockopt(&toa_sockopts);
	if (err) {
		pr_err("getsockopt %d is taken by another module (%d)\n",
		       TOA_SO_GET_LOOKUP, err);
		goto teardown;
	}
	if (!tb_proc_create_single("toa_stats", 0444, init_net.proc_net,
				   toa_stats_show)) {
		err = -ENOMEM;
		toa_teardown(true);
		return err;
	}
	pr_info("%d hook(s) on tracepoints, %d on ftrace\n",
		toa_nr_tracepoints(),
		(int)ARRAY_SIZE(toa_hooks) - toa_nr_tracepoints());
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
