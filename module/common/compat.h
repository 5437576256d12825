/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one place where kernel differences live (3.10 to 7.x out of tree;
 * 2.6.32 for the TOA of kernel trees carrying it, see "TOA's hook
 * provider").
 *
 * Prefer feature tests (a macro or Kconfig symbol the feature defines, a
 * header that exists) over version numbers: distribution kernels (Debian
 * stable updates, RHEL) backport APIs without changing LINUX_VERSION_CODE;
 * RHEL 7 says 3.10.0 and carries years of later code. Where a change left
 * nothing to test for (a struct member, a function, a signature), the test
 * is the upstream release that brought it or, for RHEL 6 and 7, the minor
 * release whose tree was read to have it (TB_RHEL6_MINOR, TB_RHEL7_MINOR);
 * each such use says what was checked. RHEL 6 trees read: 6.2's
 * (2.6.32-220, the LVS "rs" tree) and 6.8's (2.6.32-642): 6.8 backports
 * much that 6.2 lacks, so a 2.6.32 fallback is chosen by what the kernel
 * defines wherever there is something to test.
 *
 * Topics, in this order: versions and compiler; TOA's hook provider;
 * module and RCU; lists and per-CPU counters; argument registers and
 * ftrace; tracepoints; TCP (TOA); /proc files; UOA: protocol handlers and
 * skbs, namespaces, sockets.
 */
#ifndef TB_COMPAT_H
#define TB_COMPAT_H

#include <linux/version.h>
#include <linux/module.h>
#include <linux/ptrace.h>
#include <linux/rcupdate.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/percpu.h>
#include <linux/irqflags.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/tcp.h>
#include <net/sock.h>
#include <net/inet_sock.h>

/* ---- versions and compiler ---- */

/*
 * RHEL kernels keep LINUX_VERSION_CODE at their base release and define
 * RHEL_MAJOR and RHEL_MINOR (linux/version.h). RHEL 8 and later are based
 * on kernels past every release compared with TB_RHEL7_MINOR here.
 */
#if defined(RHEL_MAJOR) && RHEL_MAJOR == 7
#define TB_RHEL7_MINOR	RHEL_MINOR
#else
#define TB_RHEL7_MINOR	(-1)
#endif

#if defined(RHEL_MAJOR) && RHEL_MAJOR == 6
#define TB_RHEL6_MINOR	RHEL_MINOR
#else
#define TB_RHEL6_MINOR	(-1)
#endif

/*
 * IS_ENABLED() (3.1, include/linux/kconfig.h; RHEL 6.8 has it, 6.2 not):
 * 1 when a Kconfig symbol is y or m. Without it, the same from the
 * definitions autoconf.h makes (CONFIG_X 1 or CONFIG_X_MODULE 1): a
 * symbol defined as 1 turns TB_CONFIG_ON_##1 into "0," and so shifts 1
 * into the second argument taken; an undefined one leaves a lone token.
 * (The parameter's name keeps checkpatch's IS_ENABLED_CONFIG test quiet.)
 */
#ifndef IS_ENABLED
#define TB_CONFIG_ON_1				0,
#define tb_config_second(ignored, val, ...)	val
#define tb_config_on(x)				tb_config_on_(x)
#define tb_config_on_(val)			tb_config_on__(TB_CONFIG_ON_##val)
#define tb_config_on__(arg)			tb_config_second(arg 1, 0, 0)
#define IS_ENABLED(CONFIG_sym) \
	(tb_config_on(CONFIG_sym) || tb_config_on(CONFIG_sym##_MODULE))
#endif

/*
 * module_init()/module_exit() alias init_module/cleanup_module to our
 * functions, before 5.0 without copying their attributes (the fix came
 * with __copy, compiler_attributes.h; RHEL 7.9's include/linux/init.h
 * has neither), and gcc 9+ warns that the alias lacks the __init
 * function's "cold". The module loader calls the alias once: only the
 * warning needs silencing, for what follows this header.
 */
#if !defined(__copy) && !defined(__clang__) && __GNUC__ >= 9
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif

/* ---- TOA's hook provider ---- */

/*
 * A kernel tree carrying TOA (toa-build kernel puts it in as net/toa/)
 * has explicit hook points in its TCP code: include/net/toa_tree_hooks.h,
 * built in where CONFIG_TOA_TREE_HOOKS is set (CONFIG_TOA selects it).
 * toa.ko then uses them (toa_hook_tree.c) instead of ftrace and
 * tracepoints (toa_hook_ftrace.c), which such kernels (2.6.32) lack; the
 * Kbuild files pick the provider's file by the same symbol.
 */
#ifdef CONFIG_TOA_TREE_HOOKS
#define TB_TOA_TREE_HOOKS	1
#endif

/* ---- module and RCU ---- */

/*
 * Tasks RCU (3.18) waits until no task runs in a trampoline or wrapper.
 * Kernels that have it declare synchronize_rcu_tasks() (CONFIG_TASKS_RCU)
 * or define it as a macro for the plain grace period; older ones have
 * neither (RHEL 7.9: not in include/linux/rcupdate.h). There a sched
 * grace period serves: it ends once every CPU has scheduled, which a task
 * running our last instructions (none of them sleeps) does only after it
 * left them, as long as the kernel does not preempt kernel code
 * (CONFIG_PREEMPT; RHEL 7 is PREEMPT_VOLUNTARY).
 */
#if !defined(CONFIG_TASKS_RCU) && !defined(synchronize_rcu_tasks)
#define synchronize_rcu_tasks()	synchronize_sched()
#endif

#ifndef READ_ONCE
#define READ_ONCE(x)	ACCESS_ONCE(x)
#endif

#ifndef WRITE_ONCE
#define WRITE_ONCE(x, val)	(ACCESS_ONCE(x) = (val))
#endif

/*
 * kfree_rcu() (3.0; a macro: RHEL 6.8 has it, 6.2 not). Without it the
 * object is freed by an RCU callback of ours, which finds the object from
 * its rcu_head: that must be the object's first member, and unloading
 * waits for the callbacks still pending (tb_rcu_barrier()) before the
 * module's code goes away. kfree() itself needs no such wait.
 */
#ifdef kfree_rcu
#define tb_rcu_barrier()	do { } while (0)
#else
static inline void tb_kfree_rcu_first(struct rcu_head *head)
{
	kfree(head);
}

#define kfree_rcu(ptr, field)						\
	do {								\
		BUILD_BUG_ON(offsetof(typeof(*(ptr)), field) != 0);	\
		call_rcu(&(ptr)->field, tb_kfree_rcu_first);		\
	} while (0)
#define tb_rcu_barrier()	rcu_barrier()
#endif

/* ---- lists and per-CPU counters ---- */

/*
 * hlist iterators: since 3.9 they take no struct hlist_node cursor (the
 * 3.9 change added hlist_entry_safe(), which tells; RHEL 6.8 keeps the
 * old ones). tb_hlist_for_each_entry*() have the new arguments
 * everywhere; the _safe one's @n is a struct hlist_node *.
 */
#ifdef hlist_entry_safe
#define tb_hlist_for_each_entry(pos, head, member) \
	hlist_for_each_entry(pos, head, member)
#define tb_hlist_for_each_entry_rcu(pos, head, member) \
	hlist_for_each_entry_rcu(pos, head, member)
#define tb_hlist_for_each_entry_safe(pos, n, head, member) \
	hlist_for_each_entry_safe(pos, n, head, member)
#else
#define tb_hlist_entry_or_null(ptr, type, member)			\
	({								\
		struct hlist_node *tb_node_ = (ptr);			\
		tb_node_ ? hlist_entry(tb_node_, type, member) : NULL;	\
	})
#define tb_hlist_for_each_entry(pos, head, member)			\
	for (pos = tb_hlist_entry_or_null((head)->first,		\
					  typeof(*(pos)), member);	\
	     pos;							\
	     pos = tb_hlist_entry_or_null((pos)->member.next,		\
					  typeof(*(pos)), member))
#define tb_hlist_for_each_entry_rcu(pos, head, member)			\
	for (pos = tb_hlist_entry_or_null(rcu_dereference((head)->first), \
					  typeof(*(pos)), member);	\
	     pos;							\
	     pos = tb_hlist_entry_or_null(				\
			rcu_dereference((pos)->member.next),		\
			typeof(*(pos)), member))
#define tb_hlist_for_each_entry_safe(pos, n, head, member)		\
	for (pos = tb_hlist_entry_or_null((head)->first,		\
					  typeof(*(pos)), member);	\
	     pos && ({ n = (pos)->member.next; 1; });			\
	     pos = tb_hlist_entry_or_null(n, typeof(*(pos)), member))
#endif

/*
 * this_cpu_inc() (2.6.33; a macro: RHEL 6.8 has it, 6.2 has only
 * this_cpu_ptr()). Counters are bumped from softirqs and from process
 * context on the same CPU, so the fallback keeps interrupts off for the
 * increment, as the x86 instruction this_cpu_inc() is cannot be split.
 */
#ifndef this_cpu_inc
#define this_cpu_inc(pcp)						\
	do {								\
		unsigned long tb_flags_;				\
									\
		local_irq_save(tb_flags_);				\
		(*this_cpu_ptr(&(pcp)))++;				\
		local_irq_restore(tb_flags_);				\
	} while (0)
#endif

/*
 * Argument registers and ftrace: the out-of-tree hooks (toa_hook_ftrace.c,
 * UOA). Kernels with TOA hook points in their tree need neither.
 */
#if defined(CONFIG_DYNAMIC_FTRACE_WITH_REGS) || !defined(TB_TOA_TREE_HOOKS)

/* ---- argument registers ---- */

/*
 * Function arguments from saved registers at function entry, by position
 * (1-based). Hooks read only leading arguments, which stay put where
 * later ones were added (syn_recv_sock grew a seventh in 6.1.192 and
 * 7.2), so nothing here depends on a full signature. regs_get_kernel_argument()
 * is a plain inline function (no macro to test for) and only exists since
 * 4.20, so the two common ABIs read the registers directly.
 */
#if defined(CONFIG_X86_64)
static inline unsigned long tb_probe_arg(struct pt_regs *regs, int n)
{
	switch (n) {
	case 1: return regs->di;
	case 2: return regs->si;
	case 3: return regs->dx;
	case 4: return regs->cx;
	case 5: return regs->r8;
	default: return regs->r9;
	}
}
#elif defined(CONFIG_ARM64)
static inline unsigned long tb_probe_arg(struct pt_regs *regs, int n)
{
	return regs->regs[n - 1];
}
#else
static inline unsigned long tb_probe_arg(struct pt_regs *regs, int n)
{
	return regs_get_kernel_argument(regs, n - 1);
}
#endif

/* ---- ftrace ---- */

/*
 * Is @addr in @mod's code or data? within_module() is 3.17+ (RHEL 7.9 has
 * only its two halves, include/linux/module.h); the halves are static
 * inlines on every kernel.
 */
static inline bool tb_within_module(unsigned long addr,
				    const struct module *mod)
{
	return within_module_core(addr, mod) || within_module_init(addr, mod);
}

/*
 * ftrace callbacks. Before 5.11 they received pt_regs (only with
 * FTRACE_OPS_FL_SAVE_REGS); since 5.11 a struct ftrace_regs, which holds
 * the argument registers even without SAVE_REGS, and since 6.12 is opaque
 * behind accessor macros. The callback type has nothing to test for; the
 * Kconfig symbol HAVE_DYNAMIC_FTRACE_WITH_ARGS came with ftrace_regs and
 * tells where the architecture sets it (x86_64), the version elsewhere.
 * RHEL 7.9 has the pt_regs form and RECURSION_SAFE (include/linux/ftrace.h:
 * ftrace_func_t); a wrong guess does not build cleanly (the ops' .func).
 * The accessors are feature-tested.
 *
 *   TB_FTRACE_CALLBACK(name)   defines a callback; inside it:
 *   tb_ftrace_arg(n)           argument n (1-based)
 *   tb_ftrace_regs()           full pt_regs (ops with TB_FTRACE_FL_REGS)
 *   TB_FTRACE_FL_ARGS          flags for an ops that reads arguments only
 *   TB_FTRACE_FL_REGS          flags for an ops that changes the IP
 * Our callbacks never call a function they trace (except through the
 * getname redirection, which checks its caller), so they need no
 * recursion protection from ftrace.
 */
#include <linux/ftrace.h>

#ifndef CONFIG_DYNAMIC_FTRACE_WITH_REGS
#error "toa-build modules need CONFIG_DYNAMIC_FTRACE_WITH_REGS"
#endif

/*
 * FTRACE_OPS_FL_IPMODIFY (3.19) makes ftrace refuse a second ops that
 * changes the IP of the same function (livepatch, kpatch, a kprobe on
 * ftrace) instead of letting one silently undo the other; older kernels
 * honour a changed IP without it. It is an enum member, but livepatch
 * needs it, and the Kconfig symbol HAVE_LIVEPATCH (4.0, set by the
 * architecture whether or not livepatch is built) tells. RHEL 7.9 has
 * both (include/linux/ftrace.h, kernel/livepatch/Kconfig).
 */
#if defined(CONFIG_HAVE_LIVEPATCH) || \
	LINUX_VERSION_CODE >= KERNEL_VERSION(3, 19, 0)
#define TB_FL_IPMODIFY		FTRACE_OPS_FL_IPMODIFY
#else
#define TB_FL_IPMODIFY		0
#endif

#if !defined(CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS) && \
	LINUX_VERSION_CODE < KERNEL_VERSION(5, 11, 0)
#define TB_FTRACE_CALLBACK(name)					\
	void name(unsigned long ip, unsigned long parent_ip,		\
		  struct ftrace_ops *op, struct pt_regs *tb_regs_)
#define tb_ftrace_regs()	(tb_regs_)
#define tb_ftrace_arg(n)	tb_probe_arg(tb_regs_, n)
#define TB_FTRACE_FL_ARGS	(FTRACE_OPS_FL_SAVE_REGS | \
				 FTRACE_OPS_FL_RECURSION_SAFE)
#define TB_FTRACE_FL_REGS	(FTRACE_OPS_FL_SAVE_REGS | \
				 FTRACE_OPS_FL_RECURSION_SAFE | TB_FL_IPMODIFY)
#else
#define TB_FTRACE_CALLBACK(name)					\
	void name(unsigned long ip, unsigned long parent_ip,		\
		  struct ftrace_ops *op, struct ftrace_regs *tb_fregs_)
#define tb_ftrace_regs()	ftrace_get_regs(tb_fregs_)
#ifdef ftrace_regs_get_argument
#define tb_ftrace_arg(n)	ftrace_regs_get_argument(tb_fregs_, (n) - 1)
#else
/* 5.11-6.11: struct ftrace_regs is a pt_regs with the argument registers. */
#define tb_ftrace_arg(n)	tb_probe_arg(&tb_fregs_->regs, n)
#endif
#ifdef CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS
#define TB_FTRACE_FL_ARGS	0
#else
#define TB_FTRACE_FL_ARGS	FTRACE_OPS_FL_SAVE_REGS
#endif
#define TB_FTRACE_FL_REGS	(FTRACE_OPS_FL_SAVE_REGS | TB_FL_IPMODIFY)
#endif

/*
 * Which of two functions hooked by one ftrace_ops a callback's @ip is in.
 * ftrace calls from a function's first instruction, or from the one after
 * its ENDBR where IBT is on (so @ip is not the address C gives the
 * function): the function is the one whose start is nearest at or below
 * @ip.
 */
static inline bool tb_ftrace_ip_in(unsigned long ip, unsigned long fn,
				   unsigned long other_fn)
{
	return ip - fn < ip - other_fn;
}

/*
 * Drop an ftrace_ops' filter after unregistering it. ftrace_free_filter()
 * is not exported on every kernel (not on 5.10); resetting the filter to
 * empty frees the same memory through an exported call everywhere.
 */
static inline void tb_ftrace_free_filter(struct ftrace_ops *ops)
{
	ftrace_set_filter(ops, NULL, 0, 1);
}

#endif /* ftrace hooks */

/* ---- tracepoints ---- */

/*
 * Tracepoints: a module may attach a probe to any core-kernel tracepoint
 * through exported calls only (for_each_kernel_tracepoint() finds it by
 * name, tracepoint_probe_register() attaches), no symbol of the
 * tracepoint itself needed. A probe is a direct call with the
 * tracepoint's arguments: much cheaper than an ftrace callback, above all
 * before 5.11 where reading arguments in ftrace means saving every
 * register. The TCP tracepoints used here (tcp_probe, first thing in
 * tcp_rcv_established; tcp_destroy_sock, first thing in
 * tcp_v4_destroy_sock) are declared in <trace/events/tcp.h> (4.15; tcp_probe
 * 4.16), whose existence also promises that registration API (3.15).
 * RHEL 7.9 has neither the header nor the API (include/linux/tracepoint.h
 * registers by name). Compilers without __has_include (gcc < 5, such as
 * RHEL 7's own 4.8) go by tcp_probe's version. Which tracepoints exist is
 * found at load time: a missing one falls back to ftrace. Under kCFI a
 * probe's type would have to match the tracepoint's exactly (const
 * qualifiers moved between versions), so CFI kernels use ftrace.
 */
#if defined(CONFIG_TRACEPOINTS) && \
	!defined(CONFIG_CFI_CLANG) && !defined(CONFIG_CFI)
#ifdef __has_include
#if __has_include("trace/events/tcp.h")
#define TB_HAVE_TCP_TRACEPOINTS	1
#endif
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(4, 16, 0)
#define TB_HAVE_TCP_TRACEPOINTS	1
#endif
#endif
#ifdef TB_HAVE_TCP_TRACEPOINTS
#include <linux/tracepoint.h>
#endif

/* ---- TCP (TOA) ---- */

/*
 * proto_ops->getname: before 4.17 it was (sock, addr, int *len, peer)
 * returning 0; since 4.17 it is (sock, addr, peer) returning the length.
 * The function-pointer type cannot be feature-tested, hence the version;
 * a wrong guess fails to build (TB_GETNAME_WRAPPER calls the real
 * function). RHEL 7.9 keeps the old form (include/net/inet_common.h).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(4, 17, 0)
#define TB_GETNAME_PEER_ARG	4
#else
#define TB_GETNAME_PEER_ARG	3
#endif

/*
 * Define @name, a function with the getname() signature of this kernel
 * that calls @real and then @done(ret, sock, uaddr, peer).
 */
#if TB_GETNAME_PEER_ARG == 4
#define TB_GETNAME_WRAPPER(name, real, done)				\
static int name(struct socket *sock, struct sockaddr *uaddr,		\
		int *uaddr_len, int peer)				\
{									\
	int ret = real(sock, uaddr, uaddr_len, peer);			\
	done(ret, sock, uaddr, peer);					\
	return ret;							\
}
#else
#define TB_GETNAME_WRAPPER(name, real, done)				\
static int name(struct socket *sock, struct sockaddr *uaddr, int peer) \
{									\
	int ret = real(sock, uaddr, peer);				\
	done(ret, sock, uaddr, peer);					\
	return ret;							\
}
#endif

/*
 * Is a received segment starting at @seq the one that carries the first
 * byte of the stream? It is when nothing was received in order yet
 * (bytes_received, every in-order byte advances it and rcv_nxt) and the
 * segment starts at rcv_nxt: a retransmission of the first segment once
 * it was received, and any later segment, are not. bytes_received is a
 * struct member (nothing to test for) added in 4.1; RHEL 7.9 has it too
 * (include/linux/tcp.h, struct tcp_sock; tcp_rcv_nxt_update() advances
 * it), and so has RHEL 6.8 (include/linux/tcp.h, the same
 * tcp_rcv_nxt_update() in net/ipv4/tcp_input.c); RHEL 6.2 has not. Kernels
 * without it cannot tell, and answer no: the late option is ignored and
 * the peer stays the balancer.
 */
static inline bool tb_tcp_first_byte(const struct sock *sk, u32 seq)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 1, 0) || TB_RHEL7_MINOR >= 9 || \
	TB_RHEL6_MINOR >= 8
	const struct tcp_sock *tp = tcp_sk(sk);

	return !tp->bytes_received && seq == tp->rcv_nxt;
#else
	return false;
#endif
}

/*
 * struct inet_sock's members got their inet_ prefix in 2.6.33 (member
 * names, nothing to test for); RHEL 6 keeps the old ones (6.2 and 6.8:
 * include/net/inet_sock.h).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(2, 6, 33)
#define tb_inet_dport(sk)	(inet_sk(sk)->dport)
#define tb_inet_num(sk)		(inet_sk(sk)->num)
#else
#define tb_inet_dport(sk)	(inet_sk(sk)->inet_dport)
#define tb_inet_num(sk)		(inet_sk(sk)->inet_num)
#endif

/* ---- /proc files ---- */

/*
 * A /proc file's private data: PDE_DATA() (3.10, a function; RHEL 6.8
 * has it too), PDE()->data before (every 2.6.32 tree has PDE()).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(3, 10, 0)
#define tb_pde_data(inode)	(PDE(inode)->data)
#else
#define tb_pde_data(inode)	PDE_DATA(inode)
#endif

/*
 * A /proc file showing @show with private data (proc_create_single_data,
 * 4.18+, tested through its companion macro proc_create_single). Before
 * it, TB_PROC_SINGLE_DATA(show) defines the file_operations.
 */
#ifdef proc_create_single
#define TB_PROC_SINGLE_DATA(show)
#define tb_proc_create_single_data(name, mode, parent, show, data) \
	proc_create_single_data(name, mode, parent, show, data)
#else
#define TB_PROC_SINGLE_DATA(show)					\
static int show##_open(struct inode *inode, struct file *file)		\
{									\
	return single_open(file, show, tb_pde_data(inode));		\
}									\
static const struct file_operations show##_fops = {			\
	.owner = THIS_MODULE,						\
	.open = show##_open,						\
	.read = seq_read,						\
	.llseek = seq_lseek,						\
	.release = single_release,					\
}
#define tb_proc_create_single_data(name, mode, parent, show, data) \
	proc_create_data(name, mode, parent, &show##_fops, data)
#endif

/* ---- UOA: protocol handlers and skbs ---- */

/*
 * inet_add_protocol() refused a struct net_protocol without netns_ok set
 * until the member was removed (5.14): a struct member, nothing to test
 * for, hence the version. RHEL 7.9 has it and refuses without it
 * (include/net/protocol.h, net/ipv4/protocol.c).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 14, 0)
#define TB_INET_PROTOCOL_NETNS_OK	.netns_ok = 1,
#else
#define TB_INET_PROTOCOL_NETNS_OK
#endif

/*
 * skb_ensure_writable() (3.19) replaced skb_make_writable() (gone in
 * 5.4); functions, nothing to test. RHEL 7.9 has both
 * (include/linux/skbuff.h, exported by net/core/skbuff.c).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(3, 19, 0) && TB_RHEL7_MINOR < 9
#define tb_skb_ensure_writable(skb, len) \
	(skb_make_writable(skb, len) ? 0 : -ENOMEM)
#else
#define tb_skb_ensure_writable(skb, len)	skb_ensure_writable(skb, len)
#endif

/*
 * nf_reset() was renamed nf_reset_ct() (5.4): an inline, nothing to test.
 * RHEL 7.9 has nf_reset() only (include/linux/skbuff.h).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 4, 0)
#define nf_reset_ct(skb)	nf_reset(skb)
#endif

/*
 * system_power_efficient_wq (3.11) is a variable, nothing to test; RHEL
 * 7.9 has it (include/linux/workqueue.h).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(3, 11, 0) && TB_RHEL7_MINOR < 9
#define system_power_efficient_wq	system_wq
#endif

/* ---- UOA: namespaces ---- */

/*
 * struct pernet_operations.id pointed to an int before it pointed to an
 * unsigned int (RHEL 7.9: int *, include/net/net_namespace.h): the id is
 * declared with the type the member points to.
 */
#define TB_PERNET_ID_TYPE	typeof(*((struct pernet_operations *)NULL)->id)

/*
 * net_hash_mix() took a struct net * before it took a const one (RHEL
 * 7.9: include/net/netns/hash.h); it only reads it.
 */
static inline u32 tb_net_hash_mix(const struct net *net)
{
	return net_hash_mix((struct net *)net);
}

/* ---- UOA: sockets ---- */

#if IS_ENABLED(CONFIG_IPV6)
#ifdef sk_v6_rcv_saddr
#define tb_sk_v6_rcv_saddr(sk)	((sk)->sk_v6_rcv_saddr)
#else
#define tb_sk_v6_rcv_saddr(sk)	(inet6_sk(sk)->rcv_saddr)
#endif
#endif


/*
 * Does a UDP socket of @net receive this 4-tuple? udp4_lib_lookup() and
 * udp6_lib_lookup() (they take a reference, under the RCU read lock) are
 * exported only for the netfilter socket match and TPROXY: since 4.17 and
 * 4.18 under the cores those select, NF_SOCKET_IPV4/6 and NF_TPROXY_IPV4/6
 * (the IPv6 ones only with IP6_NF_IPTABLES), before under the xtables
 * options themselves (RHEL 7.9: net/ipv4/udp.c, net/ipv6/udp.c). Kconfig
 * symbols, so either name tells. Without them every datagram counts as
 * having a socket.
 */
#include <net/udp.h>
#if IS_ENABLED(CONFIG_NF_TPROXY_IPV4) || IS_ENABLED(CONFIG_NF_SOCKET_IPV4) || \
	IS_ENABLED(CONFIG_NETFILTER_XT_MATCH_SOCKET) || \
	IS_ENABLED(CONFIG_NETFILTER_XT_TARGET_TPROXY)
static inline bool tb_udp4_socket_exists(struct net *net, __be32 saddr,
					 __be16 sport, __be32 daddr,
					 __be16 dport, int dif)
{
	struct sock *sk;

	rcu_read_lock();
	sk = udp4_lib_lookup(net, saddr, sport, daddr, dport, dif);
	rcu_read_unlock();
	if (!sk)
		return false;
	sock_put(sk);
	return true;
}
#else
static inline bool tb_udp4_socket_exists(struct net *net, __be32 saddr,
					 __be16 sport, __be32 daddr,
					 __be16 dport, int dif)
{
	return true;
}
#endif

#if IS_ENABLED(CONFIG_IPV6) && \
	(IS_ENABLED(CONFIG_NF_TPROXY_IPV6) || IS_ENABLED(CONFIG_NF_SOCKET_IPV6) || \
	 (IS_ENABLED(CONFIG_IP6_NF_IPTABLES) && \
	  (IS_ENABLED(CONFIG_NETFILTER_XT_MATCH_SOCKET) || \
	   IS_ENABLED(CONFIG_NETFILTER_XT_TARGET_TPROXY))))
static inline bool tb_udp6_socket_exists(struct net *net,
					 const struct in6_addr *saddr,
					 __be16 sport,
					 const struct in6_addr *daddr,
					 __be16 dport, int dif)
{
	struct sock *sk;

	rcu_read_lock();
	sk = udp6_lib_lookup(net, saddr, sport, daddr, dport, dif);
	rcu_read_unlock();
	if (!sk)
		return false;
	sock_put(sk);
	return true;
}
#else
static inline bool tb_udp6_socket_exists(struct net *net,
					 const struct in6_addr *saddr,
					 __be16 sport,
					 const struct in6_addr *daddr,
					 __be16 dport, int dif)
{
	return true;
}
#endif

#endif /* TB_COMPAT_H */
