// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Reference programs for rlgate-bench, loaded next to rlgate in the same run:
 *  - bench_pass: the floor (an empty XDP_PASS program);
 *  - bench_drop: the fastest possible drop, for the end-to-end comparison;
 *  - bench_churn: rewrites the IPv4 source to the next of `churn_sources`
 *    addresses, then tail-calls the program in bench_progs[0]. BPF_PROG_TEST_RUN
 *    reuses one buffer across repetitions, so this turns one crafted frame
 *    into a stream of distinct sources. Its own cost is measured by
 *    tail-calling bench_pass and reported separately.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 churn_sources = 1000000;
const volatile __u32 churn_base = 0x0b000000; /* 11.0.0.0, host order */
const volatile __u32 saddr_offset = 14 + 12;  /* untagged IPv4 */

__u64 churn_counter = 0;
/* Each source sends 2^churn_repeat_shift packets in a row (set between
 * scenarios): 1 makes every second packet a source's second one. */
__u32 churn_repeat_shift = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_progs SEC(".maps");

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bench_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int bench_churn(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = saddr_offset;
	if (off > 128)
		return XDP_ABORTED;
	__be32 *saddr = data + off;
	if ((void *)(saddr + 1) > data_end)
		return XDP_ABORTED;
	/* A multiplicative step spreads consecutive packets over the range. */
	__u64 n = churn_counter++ >> (churn_repeat_shift & 7);
	__u32 idx = (__u32)((n * 2654435761ULL) % churn_sources);
	*saddr = bpf_htonl(churn_base + idx);
	bpf_tail_call(ctx, &bench_progs, 0);
	return XDP_ABORTED;
}

/* References: what one LRU lookup costs by itself, by key size (the source
 * address goes into the key; a miss inserts, as rl_xdp does). */
#include "rlgate/abi.h"

#define BENCH_LRU(name, key_t)                                                      \
	struct {                                                                    \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                                \
		__uint(max_entries, 262144);                                        \
		__type(key, key_t);                                                 \
		__type(value, struct rl_bucket);                                    \
	} name SEC(".maps")

/* Looks the IPv4 source up in `map`; `then` runs with the entry in `b`. */
#define BENCH_LOOKUP_PROG(prog, map, key_t, then)                                   \
	SEC("xdp")                                                                  \
	int prog(struct xdp_md *ctx)                                                \
	{                                                                           \
		void *data = (void *)(long)ctx->data;                               \
		void *data_end = (void *)(long)ctx->data_end;                       \
		if (data + 34 > data_end)                                           \
			return XDP_ABORTED;                                         \
		key_t key = {};                                                     \
		__builtin_memcpy((__u8 *)&key + sizeof(key) - 8, data + 26, 4);     \
		struct rl_bucket *b = bpf_map_lookup_elem(&map, &key);              \
		if (!b) {                                                           \
			struct rl_bucket z = {};                                    \
			bpf_map_update_elem(&map, &key, &z, BPF_NOEXIST);           \
			return XDP_PASS;                                            \
		}                                                                   \
		then;                                                               \
	}

struct bench_key8 { __u8 b[8]; };
struct bench_key12 { __u8 b[12]; };
struct bench_key16 { __u8 b[16]; };
struct bench_key20 { __u8 b[20]; };
BENCH_LRU(bench_lru8, struct bench_key8);
BENCH_LRU(bench_lru12, struct bench_key12);
BENCH_LRU(bench_lru16, struct bench_key16);
BENCH_LRU(bench_lru20, struct bench_key20);

#define BENCH_READ_ENTRY return b->state == 7 ? XDP_DROP : XDP_PASS
BENCH_LOOKUP_PROG(bench_lookup8, bench_lru8, struct bench_key8, BENCH_READ_ENTRY)
BENCH_LOOKUP_PROG(bench_lookup12, bench_lru12, struct bench_key12, BENCH_READ_ENTRY)
BENCH_LOOKUP_PROG(bench_lookup16, bench_lru16, struct bench_key16, BENCH_READ_ENTRY)
BENCH_LOOKUP_PROG(bench_lookup, bench_lru20, struct bench_key20, BENCH_READ_ENTRY)
BENCH_LOOKUP_PROG(bench_lookup_cas, bench_lru8, struct bench_key8, {
	__u64 old = b->pkt_tat_q;
	__u64 now = bpf_jiffies64();
	__u64 next = (old > now ? old : now) + 1;
	return __sync_val_compare_and_swap(&b->pkt_tat_q, old, next) == old ? XDP_PASS : XDP_DROP;
})

/* References: the clocks a bucket could read. */
__u64 clock_sink = 0;

SEC("xdp")
int bench_ktime(struct xdp_md *ctx)
{
	clock_sink += bpf_ktime_get_ns();
	return XDP_PASS;
}

SEC("xdp")
int bench_coarse(struct xdp_md *ctx)
{
	clock_sink += bpf_ktime_get_coarse_ns();
	return XDP_PASS;
}

SEC("xdp")
int bench_jiffies(struct xdp_md *ctx)
{
	clock_sink += bpf_jiffies64();
	return XDP_PASS;
}

/* Reference: a 4-way set-associative array of buckets instead of an LRU hash
 * (keys of a set in one cache line, buckets after it). */
#define BENCH_WAYS 4
struct bench_set {
	struct bench_key16 keys[BENCH_WAYS];
	struct rl_bucket b[BENCH_WAYS];
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 262144 / BENCH_WAYS);
	__type(key, __u32);
	__type(value, struct bench_set);
} bench_sets SEC(".maps");

const volatile __u64 bench_seed = 0x243f6a8885a308d3ULL;

SEC("xdp")
int bench_set4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (data + 34 > data_end)
		return XDP_ABORTED;
	__u64 k[2] = {0, 0};
	__builtin_memcpy(&k[1], data + 26, 4);
	__u32 idx = rl_bucket_set_of_words(k[0], k[1], bench_seed, 262144 / BENCH_WAYS); /* rl_xdp's hash */
	struct bench_set *s = bpf_map_lookup_elem(&bench_sets, &idx);
	if (!s)
		return XDP_ABORTED;
	for (int w = 0; w < BENCH_WAYS; w++) {
		__u64 *kw = (__u64 *)&s->keys[w];
		if (kw[0] == k[0] && kw[1] == k[1]) {
			struct rl_bucket *b = &s->b[w];
			__u64 old = b->pkt_tat_q;
			__u64 now = bpf_jiffies64();
			__u64 next = (old > now ? old : now) + 1;
			return __sync_val_compare_and_swap(&b->pkt_tat_q, old, next) == old ? XDP_PASS : XDP_DROP;
		}
	}
	__u32 victim = idx & (BENCH_WAYS - 1);
	__u64 *kv = (__u64 *)&s->keys[victim];
	kv[0] = k[0];
	kv[1] = k[1];
	__builtin_memset(&s->b[victim], 0, sizeof(s->b[victim]));
	return XDP_PASS;
}
