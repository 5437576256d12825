/* SPDX-License-Identifier: GPL-2.0 */
/*
 * toa: what the module's logic (toa_main.c: table, option parsing, store
 * rules, getsockopt, /proc, parameters, load and unload) and its hook
 * provider share. One provider is linked into toa.ko:
 *
 *   toa_hook_ftrace.c  ftrace and TCP tracepoints (the out-of-tree module
 *                      on 3.10 and later)
 *   toa_hook_tree.c    the hook points a kernel tree carrying TOA has in
 *                      its TCP code (include/net/toa_tree_hooks.h; the
 *                      2.6.32 trees of toa-build kernel)
 *
 * The provider calls the entry points below at the four places TOA needs
 * and nothing else; it registers at load and unregisters at unload.
 */
#ifndef TOA_H
#define TOA_H

#include <linux/types.h>
#include <linux/net.h>
#include <linux/skbuff.h>
#include <linux/tcp.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "compat.h"

/* Entries in the table: every hook skips it while none is stored. */
extern atomic_t toa_nr_entries;

static inline bool toa_table_empty(void)
{
	return !atomic_read(&toa_nr_entries);
}

/*
 * tcp_child_process(listener, child, skb), at its entry: @child is the
 * socket just created and @skb the ACK that completed its handshake.
 */
void toa_child(struct sock *child, const struct sk_buff *skb);

/* The segment carrying the first stream byte (toa_established() tells). */
void toa_first_data(struct sock *sk, const struct sk_buff *skb);

/*
 * tcp_rcv_established(sk, skb, ...), at its entry: runs for every
 * segment of every established socket, so the fast exits are inline here
 * and only the first data segment's call leaves the caller. Exits: no
 * options, no payload, not the first byte. Only the first byte's segment
 * clears the record of an accepted socket, so an option in any later one
 * (the client's own) finds none.
 */
static inline void toa_established(struct sock *sk, const struct sk_buff *skb)
{
	const struct tcphdr *th = tcp_hdr(skb);
	const struct tcp_skb_cb *cb = TCP_SKB_CB(skb);

	if (th->doff <= 5)
		return;
	if (cb->end_seq - cb->seq - th->fin == 0)
		return;
	if (!tb_tcp_first_byte(sk, cb->seq))
		return;
	toa_first_data(sk, skb);
}

/* tcp_v4_destroy_sock(sk) (IPv6 TCP calls it too): forget @sk. */
void toa_destroyed(struct sock *sk);

/*
 * inet_getname()/inet6_getname() asking for the peer, after they filled
 * @uaddr and succeeded: put the client's address there if @sock has one.
 */
void toa_rewrite_peer(struct socket *sock, struct sockaddr *uaddr);

/*
 * The provider: attach the four hooks (all or none), and detach them,
 * returning once no hook runs in this module's code any more (safe to
 * call when registering failed or never happened).
 */
int toa_hooks_register(void);
void toa_hooks_unregister(void);

#endif /* TOA_H */
