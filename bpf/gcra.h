/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Token bucket in GCRA form: the whole state is one u64 "theoretical arrival
 * time" (TAT), so a compare-and-swap updates it atomically from any CPU. One
 * CAS on one word needs no lock, and a shared (not per-CPU) entry keeps a
 * source at its rate however many RX queues its flows hash to.
 *
 * A packet costing `cost` conforms when max(TAT, now) + cost - now <= tolerance,
 * with tolerance = burst * interval: a fresh bucket passes exactly `burst`
 * packets at one instant, then one per interval.
 */
#ifndef RLGATE_BPF_GCRA_H
#define RLGATE_BPF_GCRA_H

#define RL_CAS_TRIES 8

enum rl_gcra_result {
	RL_GCRA_CONFORM = 0,
	RL_GCRA_EXCEED = 1,
	RL_GCRA_CONTENDED = 2, /* lost RL_CAS_TRIES races in a row */
};

/* All arguments in 1/64 ns. `floor_tolerance_q` is one clock tick: with a
 * coarse clock a bucket shallower than a tick could never reach its rate. */
static __always_inline void rl_health_inc(__u32 which);

static __always_inline int rl_gcra_take(__u64 *tat, __u64 now_q, __u64 cost_q, __u64 tolerance_q,
				   __u64 floor_tolerance_q)
{
	if (tolerance_q < floor_tolerance_q)
		tolerance_q = floor_tolerance_q;
	for (int i = 0; i < RL_CAS_TRIES; i++) {
		__u64 old = *(volatile __u64 *)tat;
		__u64 base = old > now_q ? old : now_q;
		__u64 next = base + cost_q;
		if (next - now_q > tolerance_q)
			return RL_GCRA_EXCEED;
		if (__sync_val_compare_and_swap(tat, old, next) == old)
			return RL_GCRA_CONFORM;
		rl_health_inc(RL_HEALTH_CAS_RETRY);
	}
	rl_health_inc(RL_HEALTH_CAS_EXHAUSTED);
	return RL_GCRA_CONTENDED;
}

/* Give back a charge after a later stage dropped the packet. */
static __always_inline void rl_gcra_refund(__u64 *tat, __u64 cost_q)
{
	__sync_fetch_and_sub(tat, cost_q);
}

static __always_inline __u64 rl_byte_cost_q(__u32 bytes, __u64 byte_interval_q)
{
	return ((__u64)bytes * byte_interval_q) >> (RL_BYTE_Q_SHIFT - RL_Q_SHIFT);
}

#endif /* RLGATE_BPF_GCRA_H */
