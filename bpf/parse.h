/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parser of the rlgate XDP program: Ethernet, up to two VLAN tags,
 * IPv4 (options, fragments), IPv6 (bounded extension-header walk), TCP, UDP,
 * ICMP/ICMPv6. Produces the source address (IPv4-mapped for v4), the L4 class
 * and the destination port. Every length is checked twice: against data_end
 * (for the verifier) and against the length the IP header claims (so bytes
 * beyond the datagram, e.g. Ethernet padding, are never parsed as headers).
 */
#ifndef RLGATE_BPF_PARSE_H
#define RLGATE_BPF_PARSE_H

#define RL_ETH_P_IP 0x0800
#define RL_ETH_P_IPV6 0x86DD
#define RL_ETH_P_8021Q 0x8100
#define RL_ETH_P_8021AD 0x88A8
#define RL_MAX_VLANS 2
#define RL_MAX_IPV6_EXTHDRS 6

#define RL_IPPROTO_HOPOPTS 0
#define RL_IPPROTO_ICMP 1
#define RL_IPPROTO_TCP 6
#define RL_IPPROTO_UDP 17
#define RL_IPPROTO_ROUTING 43
#define RL_IPPROTO_FRAGMENT 44
#define RL_IPPROTO_AH 51
#define RL_IPPROTO_ICMPV6 58
#define RL_IPPROTO_DSTOPTS 60

enum rl_parse_result {
	RL_PARSE_OK = 0,
	RL_PARSE_NON_IP = 1,
	RL_PARSE_MALFORMED = 2,
};

struct rl_pkt {
	union {
		__u8 addr[16]; /* source, IPv4-mapped for IPv4 */
		__u64 addr_w[2]; /* the same as two words: written and read whole, so
				  * that loads are forwarded from stores (bpf/rlgate.bpf.c) */
	};
	__u16 dport;   /* host order; 0 when the class has no ports */
	__u8 l4class;  /* enum rl_l4_class */
	__u8 is_v6;
};

struct rl_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* L4 header at `l4`, with `room` bytes left in the datagram the IP header
 * describes. Non-first fragments never reach here. */
static __always_inline int rl_parse_l4(void *l4, void *data_end, __u32 room, __u8 proto,
				       struct rl_pkt *pkt)
{
	if (proto == RL_IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > data_end || room < sizeof(*tcp))
			return RL_PARSE_MALFORMED;
		__u32 doff = tcp->doff * 4;
		if (doff < sizeof(*tcp) || doff > room)
			return RL_PARSE_MALFORMED;
		pkt->dport = bpf_ntohs(tcp->dest);
		pkt->l4class = (tcp->syn && !tcp->ack) ? RL_L4_TCP_SYN : RL_L4_TCP;
		return RL_PARSE_OK;
	}
	if (proto == RL_IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > data_end || room < sizeof(*udp))
			return RL_PARSE_MALFORMED;
		__u32 ulen = bpf_ntohs(udp->len);
		if (ulen < sizeof(*udp) || ulen > room)
			return RL_PARSE_MALFORMED;
		pkt->dport = bpf_ntohs(udp->dest);
		pkt->l4class = RL_L4_UDP;
		return RL_PARSE_OK;
	}
	if (proto == RL_IPPROTO_ICMP || proto == RL_IPPROTO_ICMPV6) {
		/* type, code, checksum and 4 bytes of rest-of-header */
		if (l4 + 8 > data_end || room < 8)
			return RL_PARSE_MALFORMED;
	}
	pkt->dport = 0;
	pkt->l4class = RL_L4_OTHER;
	return RL_PARSE_OK;
}

static __always_inline int rl_parse_ipv4(void *l3, void *data_end, struct rl_pkt *pkt)
{
	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > data_end)
		return RL_PARSE_MALFORMED;
	if (ip->version != 4)
		return RL_PARSE_MALFORMED;
	__u32 hdr_len = ip->ihl * 4;
	__u32 tot_len = bpf_ntohs(ip->tot_len);
	if (hdr_len < sizeof(*ip) || tot_len < hdr_len)
		return RL_PARSE_MALFORMED;
	if (l3 + hdr_len > data_end || l3 + tot_len > data_end)
		return RL_PARSE_MALFORMED; /* options or datagram truncated */

	/* ::ffff:a.b.c.d, little-endian words (the BPF target on x86 and arm64) */
	pkt->addr_w[0] = 0;
	pkt->addr_w[1] = 0xffff0000ULL | (__u64)ip->saddr << 32;
	pkt->is_v6 = 0;

	if (bpf_ntohs(ip->frag_off) & 0x1fff) { /* non-first fragment: no L4 header */
		pkt->dport = 0;
		pkt->l4class = RL_L4_OTHER;
		return RL_PARSE_OK;
	}
	return rl_parse_l4(l3 + hdr_len, data_end, tot_len - hdr_len, ip->protocol, pkt);
}

static __always_inline int rl_parse_ipv6(void *l3, void *data_end, struct rl_pkt *pkt)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > data_end)
		return RL_PARSE_MALFORMED;
	if (ip6->version != 6)
		return RL_PARSE_MALFORMED;
	__u32 payload_len = bpf_ntohs(ip6->payload_len);
	void *cur = (void *)(ip6 + 1);
	if (cur + payload_len > data_end)
		return RL_PARSE_MALFORMED;

	/* Word loads (unaligned packet access is allowed where XDP runs natively) */
	pkt->addr_w[0] = *(const __u64 *)&ip6->saddr;
	pkt->addr_w[1] = *((const __u64 *)&ip6->saddr + 1);
	pkt->is_v6 = 1;

	__u8 nexthdr = ip6->nexthdr;
	__u32 used = 0; /* bytes of payload consumed by extension headers */
#pragma unroll
	for (int i = 0; i < RL_MAX_IPV6_EXTHDRS; i++) {
		if (nexthdr == RL_IPPROTO_FRAGMENT) {
			struct frag_hdr *fh = cur;
			if ((void *)(fh + 1) > data_end || used + sizeof(*fh) > payload_len)
				return RL_PARSE_MALFORMED;
			if (bpf_ntohs(fh->frag_off) & ~0x7) { /* offset != 0 */
				pkt->dport = 0;
				pkt->l4class = RL_L4_OTHER;
				return RL_PARSE_OK;
			}
			nexthdr = fh->nexthdr;
			cur += sizeof(*fh);
			used += sizeof(*fh);
			continue;
		}
		if (nexthdr == RL_IPPROTO_HOPOPTS || nexthdr == RL_IPPROTO_ROUTING ||
		    nexthdr == RL_IPPROTO_DSTOPTS || nexthdr == RL_IPPROTO_AH) {
			struct ipv6_opt_hdr *opt = cur;
			if ((void *)(opt + 1) > data_end)
				return RL_PARSE_MALFORMED;
			__u32 len = nexthdr == RL_IPPROTO_AH ? ((__u32)opt->hdrlen + 2) * 4
							     : ((__u32)opt->hdrlen + 1) * 8;
			if (used + len > payload_len || cur + len > data_end)
				return RL_PARSE_MALFORMED;
			nexthdr = opt->nexthdr;
			cur += len;
			used += len;
			continue;
		}
		return rl_parse_l4(cur, data_end, payload_len - used, nexthdr, pkt);
	}
	/* RL_MAX_IPV6_EXTHDRS headers walked: the next one must be the upper layer. */
	if (nexthdr == RL_IPPROTO_FRAGMENT || nexthdr == RL_IPPROTO_HOPOPTS || nexthdr == RL_IPPROTO_ROUTING ||
	    nexthdr == RL_IPPROTO_DSTOPTS || nexthdr == RL_IPPROTO_AH)
		return RL_PARSE_MALFORMED; /* longer extension chain than we walk */
	return rl_parse_l4(cur, data_end, payload_len - used, nexthdr, pkt);
}

static __always_inline int rl_parse(struct xdp_md *ctx, struct rl_pkt *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return RL_PARSE_MALFORMED;

	void *cur = (void *)(eth + 1);
	__u16 proto = bpf_ntohs(eth->h_proto);
#pragma unroll
	for (int i = 0; i < RL_MAX_VLANS; i++) {
		if (proto != RL_ETH_P_8021Q && proto != RL_ETH_P_8021AD)
			break;
		struct rl_vlan_hdr *vlan = cur;
		if ((void *)(vlan + 1) > data_end)
			return RL_PARSE_MALFORMED;
		proto = bpf_ntohs(vlan->encap_proto);
		cur = (void *)(vlan + 1);
	}
	if (proto == RL_ETH_P_IP)
		return rl_parse_ipv4(cur, data_end, pkt);
	if (proto == RL_ETH_P_IPV6)
		return rl_parse_ipv6(cur, data_end, pkt);
	return RL_PARSE_NON_IP; /* ARP, LLDP, a third VLAN tag, ... */
}

#endif /* RLGATE_BPF_PARSE_H */
