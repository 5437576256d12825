// SPDX-License-Identifier: GPL-2.0
/*
 * toa's hook provider for kernels without TOA hook points (3.10 and
 * later, out of tree): kernel tracepoints where one sits at the right
 * place (a direct call with the tracepoint's arguments, the cheapest hook
 * there is) and ftrace callbacks at function entry elsewhere (the
 * mechanism kprobes and livepatch use, without the kprobe layer's cost):
 * no unexported symbol is linked, no kernel text or read-only data is
 * written by this module, and the hooked functions are used by argument
 * position only.
 *
 *   tcp_child_process        ftrace
 *   tcp_rcv_established      its tcp_probe tracepoint; ftrace where there
 *                            is none
 *   inet_getname/inet6_getname  redirected to a wrapper that rewrites
 *                            the peer address (getpeername and accept
 *                            both call ops->getname; ftrace IPMODIFY)
 *   tcp_v4_destroy_sock      its tcp_destroy_sock tracepoint, or ftrace
 */
#define pr_fmt(fmt) "TOA: " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/ftrace.h>
#include <linux/delay.h>
#include <linux/percpu.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <net/sock.h>
#include <net/inet_common.h>
#include <net/ipv6.h>

#include "compat.h"
#include "toa.h"

#ifdef TB_TOA_TREE_HOOKS
#error "this kernel has TOA hook points: build toa_hook_tree.c instead"
#endif

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
	toa_child((struct sock *)tb_ftrace_arg(2),
		  (const struct sk_buff *)tb_ftrace_arg(3));
}

/* ---- the first data segment: tcp_rcv_established ---- */

/* toa_established() is inline: its fast exits stay in the callback. */
static TB_FTRACE_CALLBACK(toa_established_hook)
{
	toa_established((struct sock *)tb_ftrace_arg(1),
			(const struct sk_buff *)tb_ftrace_arg(2));
}

/* ---- socket destruction: tcp_v4_destroy_sock ---- */

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

	if (!tb_ftrace_arg(TB_GETNAME_PEER_ARG) || toa_table_empty())
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

/* ---- registration ---- */

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

static int __init toa_hook_register_one(struct toa_hook *h)
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
 * are waited for once, after the last tracepoint detached), then for the
 * getname wrappers still running (e.g. asleep in lock_sock() inside
 * inet_getname).
 */
void toa_hooks_unregister(void)
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
	toa_wait_redirects();
}

static int __init toa_nr_tracepoints(void)
{
	int i, n = 0;

	for (i = 0; i < ARRAY_SIZE(toa_hooks); i++)
		n += toa_hooks[i].tp != NULL;
	return n;
}

/* On failure the hooks registered so far stay: toa_hooks_unregister(). */
int __init toa_hooks_register(void)
{
	int i, err;

	for (i = 0; i < ARRAY_SIZE(toa_hooks); i++) {
		err = toa_hook_register_one(&toa_hooks[i]);
		if (err)
			return err;
		pr_debug("%s hooked through %s\n", toa_hooks[i].symbol,
			 toa_hooks[i].tp ? "its tracepoint" : "ftrace");
	}
	pr_info("%d hook(s) on tracepoints, %d on ftrace\n",
		toa_nr_tracepoints(),
		(int)ARRAY_SIZE(toa_hooks) - toa_nr_tracepoints());
	return 0;
}

