/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TOA hook points in the TCP code (toa-build kernel puts this file in a
 * tree as include/net/toa_tree_hooks.h).
 *
 * The TOA module (net/toa/) hands applications the client address a
 * FullNAT load balancer carries in a TCP option. It needs four places:
 *
 *   tcp_child_process()     the socket just created by a handshake and
 *                           the ACK that completed it
 *   tcp_rcv_established()   each segment of an established socket
 *   inet_getname(), inet6_getname()  a peer address just filled in
 *   tcp_v4_destroy_sock()   a TCP socket going away (IPv6 TCP calls it)
 *
 * Each calls the inline wrapper below, which costs one load of
 * toa_tree_hooks_active and a branch while no module is attached; the
 * rest is out of line (net/ipv4/toa_tree_hooks.c). One module at a time
 * attaches a struct toa_tree_hooks (all four callbacks set, none of them
 * sleeping) with toa_tree_hooks_set() and detaches it with
 * toa_tree_hooks_clear(), which returns once no callback of it runs.
 */
#ifndef _NET_TOA_TREE_HOOKS_H
#define _NET_TOA_TREE_HOOKS_H

#include <linux/compiler.h>

struct sock;
struct sk_buff;
struct socket;
struct sockaddr;

struct toa_tree_hooks {
	void (*child)(struct sock *child, const struct sk_buff *skb);
	void (*established)(struct sock *sk, const struct sk_buff *skb);
	void (*getname)(struct socket *sock, struct sockaddr *uaddr);
	void (*destroy)(struct sock *sk);
};

#ifdef CONFIG_TOA_TREE_HOOKS

/* RCU-protected; set and cleared only through the two calls below. */
extern const struct toa_tree_hooks *toa_tree_hooks_active;

int toa_tree_hooks_set(const struct toa_tree_hooks *hooks);
void toa_tree_hooks_clear(const struct toa_tree_hooks *hooks);

void __toa_tree_child(struct sock *child, const struct sk_buff *skb);
void __toa_tree_established(struct sock *sk, const struct sk_buff *skb);
void __toa_tree_getname(struct socket *sock, struct sockaddr *uaddr);
void __toa_tree_destroy(struct sock *sk);

static inline void toa_tree_child(struct sock *child,
				  const struct sk_buff *skb)
{
	if (unlikely(ACCESS_ONCE(toa_tree_hooks_active)))
		__toa_tree_child(child, skb);
}

static inline void toa_tree_established(struct sock *sk,
					const struct sk_buff *skb)
{
	if (unlikely(ACCESS_ONCE(toa_tree_hooks_active)))
		__toa_tree_established(sk, skb);
}

/* After getname() filled @uaddr with the peer (@peer set) or not. */
static inline void toa_tree_getname(struct socket *sock,
				    struct sockaddr *uaddr, int peer)
{
	if (unlikely(ACCESS_ONCE(toa_tree_hooks_active)) && peer)
		__toa_tree_getname(sock, uaddr);
}

static inline void toa_tree_destroy(struct sock *sk)
{
	if (unlikely(ACCESS_ONCE(toa_tree_hooks_active)))
		__toa_tree_destroy(sk);
}

#else /* !CONFIG_TOA_TREE_HOOKS */

static inline void toa_tree_child(struct sock *child,
				  const struct sk_buff *skb)
{
}

static inline void toa_tree_established(struct sock *sk,
					const struct sk_buff *skb)
{
}

static inline void toa_tree_getname(struct socket *sock,
				    struct sockaddr *uaddr, int peer)
{
}

static inline void toa_tree_destroy(struct sock *sk)
{
}

#endif /* CONFIG_TOA_TREE_HOOKS */

#endif /* _NET_TOA_TREE_HOOKS_H */
