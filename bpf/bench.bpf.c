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
	__u64 n = churn_counter++;
	__u32 idx = (__u32)((n * 2654435761ULL) % churn_sources);
	*saddr = bpf_htonl(churn_base + idx);
	bpf_tail_call(ctx, &bench_progs, 0);
	return XDP_ABORTED;
}
