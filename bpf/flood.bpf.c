// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP program of rlgate-flood, the traffic generator. It is never attached:
 * rlgate-flood runs it with BPF_PROG_TEST_RUN and BPF_F_TEST_XDP_LIVE_FRAMES,
 * the kernel hands it copies of one template frame, and every frame it
 * returns XDP_TX for is transmitted out of the device named in the run's
 * xdp_md context.
 *
 * Per frame it rewrites one 32-bit word of the source address to
 * base + i, i cycling over [0, nsources) per CPU, and patches the IPv4
 * header checksum and the TCP/UDP checksum incrementally (RFC 1624) so that
 * the receiving stack accepts the frames.
 *
 * The live-frame page pool recycles pages without copying the template
 * again, so a frame may still hold the address an earlier frame got: the
 * checksum delta is taken from the word found in the frame, never from the
 * template.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Offsets are in bytes from the start of the frame; masking them gives the
 * verifier a bound even if they were not load-time constants. */
#define FLOOD_OFF_MASK 0x3ff
#define FLOOD_MAX_CPUS 512

/* Set by rlgate-flood between open and load. */
const volatile __u32 nsources = 1;     /* >= 1 */
const volatile __u32 src_base = 0;     /* first value of the varied word, host order */
const volatile __u32 src_off = 0;      /* varied 32-bit word of the source address */
const volatile __u32 ip4_csum_off = 0; /* IPv4 header checksum; 0 = IPv6 (none) */
const volatile __u32 l4_csum_off = 0;  /* TCP/UDP checksum; 0 = none to patch */
const volatile __u8 l4_is_udp = 0;     /* UDP: 0 means "no checksum", 0xffff stands for 0 */

/* Per-CPU state: row [cpu], column 0; the other columns pad each row to a
 * cache line of its own, as the generator threads run on different CPUs and
 * would otherwise bounce shared lines on every frame. Separate named arrays
 * rather than a struct so that the skeleton describes them completely;
 * userspace reads them through the mmapped .bss after the run. */
#define FLOOD_PAD64 8
#define FLOOD_PAD32 16
#define FLOOD_PER_CPU __attribute__((aligned(64)))
__u32 flood_next[FLOOD_MAX_CPUS][FLOOD_PAD32] FLOOD_PER_CPU;     /* index of the next source */
__u64 flood_frames[FLOOD_MAX_CPUS][FLOOD_PAD64] FLOOD_PER_CPU;   /* frames returned XDP_TX */
__u64 flood_first_ns[FLOOD_MAX_CPUS][FLOOD_PAD64] FLOOD_PER_CPU; /* bpf_ktime_get_ns() of the first */
__u64 flood_last_ns[FLOOD_MAX_CPUS][FLOOD_PAD64] FLOOD_PER_CPU;  /* ... and of the last */

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for a 32-bit field seen as two
 * 16-bit words. One's-complement sums do not depend on byte order, so the
 * words are used exactly as they lie in memory. */
static __always_inline __u16 csum_replace32(__u16 check, const __u16 old[2], const __u16 new[2])
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~old[0];
	sum += (__u16)~old[1];
	sum += new[0];
	sum += new[1];
	return (__u16)~csum_fold(sum);
}

SEC("xdp")
int flood(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 cpu = bpf_get_smp_processor_id();

	if (cpu >= FLOOD_MAX_CPUS)
		return XDP_ABORTED;

	__u16 *src = data + (src_off & FLOOD_OFF_MASK);
	if ((void *)(src + 2) > data_end)
		return XDP_ABORTED;

	__u32 i = flood_next[cpu][0];
	flood_next[cpu][0] = i + 1 >= nsources ? 0 : i + 1;

	__be32 addr = bpf_htonl(src_base + i);
	__u16 new[2], old[2] = {src[0], src[1]};
	__builtin_memcpy(new, &addr, sizeof(new));
	src[0] = new[0];
	src[1] = new[1];

	if (ip4_csum_off) {
		__u16 *check = data + (ip4_csum_off & FLOOD_OFF_MASK);
		if ((void *)(check + 1) > data_end)
			return XDP_ABORTED;
		*check = csum_replace32(*check, old, new);
	}

	if (l4_csum_off) {
		__u16 *check = data + (l4_csum_off & FLOOD_OFF_MASK);
		if ((void *)(check + 1) > data_end)
			return XDP_ABORTED;
		if (!(l4_is_udp && *check == 0)) {
			__u16 c = csum_replace32(*check, old, new);
			*check = l4_is_udp && c == 0 ? 0xffff : c;
		}
	}

	/* A test run's wall time includes the kernel's setup and teardown (two
	 * RCU grace periods); timestamps of the frames themselves give the
	 * sending time. One TSC read per frame. */
	__u64 now = bpf_ktime_get_ns();
	if (!flood_first_ns[cpu][0])
		flood_first_ns[cpu][0] = now;
	flood_last_ns[cpu][0] = now;
	flood_frames[cpu][0]++;
	return XDP_TX;
}
