/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-CPU event counters for the TOA and UOA modules: incremented without
 * any shared cache line on the packet path, summed only when /proc is read.
 */
#ifndef TB_STATS_H
#define TB_STATS_H

#include <linux/percpu.h>
#include <linux/seq_file.h>

/* this_cpu_inc() where the kernel lacks it */
#include "compat.h"

struct tb_stats {
	unsigned long __percpu *counters;
	const char *const *names;
	int count;
};

static inline int tb_stats_init(struct tb_stats *st, const char *const *names,
				int count)
{
	st->counters = __alloc_percpu(sizeof(unsigned long) * count,
				      sizeof(unsigned long));
	if (!st->counters)
		return -ENOMEM;
	st->names = names;
	st->count = count;
	return 0;
}

static inline void tb_stats_free(struct tb_stats *st)
{
	free_percpu(st->counters);
	st->counters = NULL;
}

static inline void tb_stats_inc(struct tb_stats *st, int idx)
{
	this_cpu_inc(st->counters[idx]);
}

static inline unsigned long tb_stats_sum(const struct tb_stats *st, int idx)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += *per_cpu_ptr(st->counters + idx, cpu);
	return sum;
}

/* One "name total" line per counter, then the per-CPU split. */
static inline void tb_stats_show(struct seq_file *seq,
				 const struct tb_stats *st)
{
	int i, cpu;

	for (i = 0; i < st->count; i++)
		seq_printf(seq, "%s %lu\n", st->names[i], tb_stats_sum(st, i));
	for_each_online_cpu(cpu) {
		seq_printf(seq, "cpu%d", cpu);
		for (i = 0; i < st->count; i++)
			seq_printf(seq, " %lu",
				   *per_cpu_ptr(st->counters + i, cpu));
		seq_putc(seq, '\n');
	}
}

#endif /* TB_STATS_H */
