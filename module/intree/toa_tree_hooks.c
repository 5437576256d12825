// SPDX-License-Identifier: GPL-2.0
/*
 * TOA hook points: the built-in half (toa-build kernel puts this file in
 * a tree as net/ipv4/toa_tree_hooks.c). See include/net/toa_tree_hooks.h.
 *
 * The callbacks are reached through one RCU-protected pointer. A caller
 * that saw it set enters an RCU read section, loads it again and calls
 * through it if it is still set; clearing it and waiting for a grace
 * period (toa_tree_hooks_clear()) therefore leaves no caller inside the
 * module's callbacks, and the module may go away.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/spinlock.h>
#include <linux/rcupdate.h>
#include <net/toa_tree_hooks.h>

const struct toa_tree_hooks *toa_tree_hooks_active;
/* ipv6 may be a module when another option selects the hooks. */
EXPORT_SYMBOL_GPL(toa_tree_hooks_active);

static DEFINE_SPINLOCK(toa_tree_hooks_lock);

/* Attach @hooks; -EBUSY while another set is attached. */
int toa_tree_hooks_set(const struct toa_tree_hooks *hooks)
{
	int err = -EBUSY;

	if (!hooks->child || !hooks->established || !hooks->getname ||
	    !hooks->destroy)
		return -EINVAL;
	spin_lock(&toa_tree_hooks_lock);
	if (!toa_tree_hooks_active) {
		rcu_assign_pointer(toa_tree_hooks_active, hooks);
		err = 0;
	}
	spin_unlock(&toa_tree_hooks_lock);
	return err;
}
EXPORT_SYMBOL_GPL(toa_tree_hooks_set);

/* Detach @hooks if attached; returns once none of its callbacks runs. */
void toa_tree_hooks_clear(const struct toa_tree_hooks *hooks)
{
	spin_lock(&toa_tree_hooks_lock);
	if (toa_tree_hooks_active == hooks)
		rcu_assign_pointer(toa_tree_hooks_active, NULL);
	spin_unlock(&toa_tree_hooks_lock);
	synchronize_rcu();
}
EXPORT_SYMBOL_GPL(toa_tree_hooks_clear);

void __toa_tree_child(struct sock *child, const struct sk_buff *skb)
{
	const struct toa_tree_hooks *hooks;

	rcu_read_lock();
	hooks = rcu_dereference(toa_tree_hooks_active);
	if (hooks)
		hooks->child(child, skb);
	rcu_read_unlock();
}

void __toa_tree_established(struct sock *sk, const struct sk_buff *skb)
{
	const struct toa_tree_hooks *hooks;

	rcu_read_lock();
	hooks = rcu_dereference(toa_tree_hooks_active);
	if (hooks)
		hooks->established(sk, skb);
	rcu_read_unlock();
}

void __toa_tree_getname(struct socket *sock, struct sockaddr *uaddr)
{
	const struct toa_tree_hooks *hooks;

	rcu_read_lock();
	hooks = rcu_dereference(toa_tree_hooks_active);
	if (hooks)
		hooks->getname(sock, uaddr);
	rcu_read_unlock();
}
EXPORT_SYMBOL_GPL(__toa_tree_getname);

void __toa_tree_destroy(struct sock *sk)
{
	const struct toa_tree_hooks *hooks;

	rcu_read_lock();
	hooks = rcu_dereference(toa_tree_hooks_active);
	if (hooks)
		hooks->destroy(sk);
	rcu_read_unlock();
}
