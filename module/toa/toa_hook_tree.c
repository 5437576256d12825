// SPDX-License-Identifier: GPL-2.0
/*
 * toa's hook provider for kernel trees carrying TOA (toa-build kernel:
 * the 2.6.32 trees, which have neither ftrace with registers nor TCP
 * tracepoints). The tree calls in at four hook points in its TCP code
 * (include/net/toa_tree_hooks.h, the patches under module/intree/), each
 * costing one pointer load and a branch while no module is attached:
 *
 *   tcp_child_process        first thing
 *   tcp_rcv_established      first thing
 *   inet_getname/inet6_getname  after a peer address was filled in
 *   tcp_v4_destroy_sock      first thing
 *
 * The same places, with the same arguments, as the ftrace provider's
 * hooks, so both behave alike. The kernel calls through an RCU-protected
 * pointer to our callbacks; detaching clears it and waits for an RCU grace
 * period, after which none of them runs (they never sleep).
 */
#define pr_fmt(fmt) "TOA: " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <net/sock.h>
#include <net/toa_tree_hooks.h>

#include "compat.h"
#include "toa.h"

#ifndef TB_TOA_TREE_HOOKS
#error "this kernel has no TOA hook points (CONFIG_TOA_TREE_HOOKS)"
#endif

static void toa_on_child(struct sock *child, const struct sk_buff *skb)
{
	toa_child(child, skb);
}

/* toa_established() is inline: its fast exits stay in this callback. */
static void toa_on_established(struct sock *sk, const struct sk_buff *skb)
{
	toa_established(sk, skb);
}

static void toa_on_getname(struct socket *sock, struct sockaddr *uaddr)
{
	if (!toa_table_empty())
		toa_rewrite_peer(sock, uaddr);
}

static void toa_on_destroy(struct sock *sk)
{
	toa_destroyed(sk);
}

static const struct toa_tree_hooks toa_tree_ops = {
	.child = toa_on_child,
	.established = toa_on_established,
	.getname = toa_on_getname,
	.destroy = toa_on_destroy,
};

int __init toa_hooks_register(void)
{
	int err = toa_tree_hooks_set(&toa_tree_ops);

	if (err) {
		pr_err("the kernel's TOA hook points are taken by another module (%d)\n",
		       err);
		return err;
	}
	pr_info("4 hook(s) on the kernel's TOA hook points\n");
	return 0;
}

void toa_hooks_unregister(void)
{
	toa_tree_hooks_clear(&toa_tree_ops);
}
