// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rlgate XDP program: per-source rate limiting at the driver.
 *
 * Verdict order: parse -> allowlist -> denylist -> ban list -> tier + L4 rule
 * -> per-source bucket -> per-interface global bucket -> pass.
 *
 * The LPM tries are walked only when a source is first seen or when the
 * policy or ban generation changed: the result is cached in the source's entry
 * of rl_buckets, next to its token bucket, so the common path is one array
 * access with four key compares, one compare-and-swap and per-CPU counters.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "rlgate/abi.h"
#include "maps.h"
#include "parse.h"
#include "gcra.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern unsigned int CONFIG_HZ __kconfig;

/* Sets in rl_buckets; written by the loader before load. */
const volatile __u32 rl_bucket_sets = 1;
/* Slots in rl_seen - 1 (a power of two - 1), and log2 of a window in first
 * packets; written by the loader. A mask of 0 turns the filter off: every
 * source gets its bucket on its first packet. */
const volatile __u32 rl_seen_slots_mask = 0;
const volatile __u32 rl_seen_window_shift = 0;

/* rl time: jiffies in ns. bpf_ktime_get_ns() costs more than the rest of the
 * fast path here (docs/PERFORMANCE.md); a 1/HZ clock is exact on average and
 * GCRA keeps no rounding residue between packets. */
static __always_inline __u64 rl_ns_per_jiffy(void)
{
	return 1000000000ULL / CONFIG_HZ;
}

static __always_inline __u64 rl_now_ns(void)
{
	return bpf_jiffies64() * rl_ns_per_jiffy();
}

static __always_inline void rl_health_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&rl_health, &which);
	if (v)
		*v += 1;
}

static __always_inline void rl_count(__u32 ifindex, __u32 tier, __u32 rule, __u32 reason, __u32 verdict,
				     __u32 bytes)
{
	__u32 idx = rl_stats_index(tier, rule, reason, verdict);
	struct rl_counter *c = bpf_map_lookup_elem(&rl_stats, &idx);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
	/* The same packet once more, by interface: the two views never need joining. */
	idx = rl_if_stats_index(ifindex, reason, verdict);
	c = bpf_map_lookup_elem(&rl_if_stats, &idx);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

/* Drop verdicts become passes in dry-run; the reason is kept either way. */
static __always_inline int rl_drop(__u32 ifindex, const struct rl_policy *pol, __u32 tier, __u32 rule,
				   __u32 reason, __u32 bytes)
{
	if (pol->flags & RL_POLICY_DRY_RUN) {
		rl_count(ifindex, tier, rule, reason, RL_VERDICT_PASS, bytes);
		return XDP_PASS;
	}
	rl_count(ifindex, tier, rule, reason, RL_VERDICT_DROP, bytes);
	return XDP_DROP;
}

/* Keep the first `bits` of a 64-bit big-endian word (any int: clamped). */
static __always_inline __u64 rl_prefix_mask64(int bits)
{
	if (bits <= 0)
		return 0;
	if (bits >= 64)
		return ~0ULL;
	return ~0ULL << (64 - bits);
}

/* A bucket key with its two words: built and read whole (the set hash and
 * the way compares read words; a key written byte by byte and read as words
 * stalls store forwarding, several ns per packet). */
union rl_bkey {
	struct rl_bucket_key k;
	__u64 w[2];
};

/* Bucket key of the packet's source masked to prefix128 (128-bit space). The
 * words are little-endian views of the key bytes: {addr[0..7]},
 * {addr[8..13], prefixlen, rule}. */
static __always_inline void rl_make_bucket_key(union rl_bkey *key, const struct rl_pkt *pkt, __u32 prefix128,
					       __u32 rule, __u64 blind)
{
	__u64 a0 = pkt->addr_w[0], a1 = pkt->addr_w[1];
	if (prefix128 < 128) {
		a0 &= bpf_cpu_to_be64(rl_prefix_mask64((int)prefix128));
		a1 &= bpf_cpu_to_be64(rl_prefix_mask64((int)prefix128 - 64));
	}
	__u64 w0, w1;
	if (pkt->is_v6) {
		w0 = a0;
		w1 = (a1 & 0xffffffffffffULL) | (__u64)(prefix128 & 0xff) << 48 | (__u64)(rule & 0xff) << 56;
	} else {
		w0 = a1 >> 32; /* address bytes 12..15 -> key bytes 0..3 */
		w1 = (__u64)(prefix128 & 0xff) << 48 | (__u64)((rule | RL_BUCKET_KEY_V4) & 0xff) << 56;
	}
	/* x ^ b ^ b with b opaque to the compiler: no instruction saved, but the
	 * verifier no longer knows the words' bits, so IPv4 and IPv6 paths (and
	 * rules) merge into one verifier state again; otherwise loading the
	 * program takes twice as long. */
	__u64 b = blind, b2 = blind;
	asm volatile("" : "+r"(b2));
	key->w[0] = w0 ^ b ^ b2;
	key->w[1] = w1 ^ b ^ b2;
}

/* The 16-byte (IPv4-mapped) address a bucket key stands for. */
static __always_inline void rl_bucket_key_addr(const struct rl_bucket_key *key, __u8 *addr)
{
	__builtin_memset(addr, 0, 16);
	if (key->rule & RL_BUCKET_KEY_V4) {
		addr[10] = 0xff;
		addr[11] = 0xff;
		__builtin_memcpy(&addr[12], key->addr, 4);
	} else {
		__builtin_memcpy(addr, key->addr, 14);
	}
}

/* Event budget: a flood must never become a flood of events. */
static __always_inline bool rl_event_budget(struct rl_ctl *ctl, __u64 now_q)
{
	if (!ctl->event_interval_q)
		return true;
	return rl_gcra_take(&ctl->event_tat_q, now_q, ctl->event_interval_q, ctl->event_tolerance_q, 0) ==
	       RL_GCRA_CONFORM;
}

static __always_inline void rl_emit_autoban(struct rl_ctl *ctl, const struct rl_bucket_key *bkey,
					    __u32 tier, __u32 drops, __u64 now, __u64 ban_ns,
					    __u32 ifindex)
{
	if (!rl_event_budget(ctl, now << RL_Q_SHIFT)) {
		rl_health_inc(RL_HEALTH_EVENTS_SUPPRESSED);
		return;
	}
	struct rl_event *ev = bpf_ringbuf_reserve(&rl_events, sizeof(*ev), 0);
	if (!ev) {
		rl_health_inc(RL_HEALTH_EVENTS_SUPPRESSED);
		return;
	}
	ev->time_ns = now;
	ev->ban_ns = ban_ns;
	ev->type = RL_EVENT_AUTOBAN;
	ev->ifindex = ifindex;
	ev->drops = drops;
	rl_bucket_key_addr(bkey, ev->addr);
	ev->prefixlen = bkey->prefixlen;
	ev->tier = tier;
	ev->rule = bkey->rule & (RL_MAX_RULES - 1);
	ev->reason = RL_REASON_RATE;
	bpf_ringbuf_submit(ev, 0);
	rl_health_inc(RL_HEALTH_EVENTS_SENT);
}

/* A sample of the drops, for `rlctl events`. The budget test reads first and
 * writes only when a sample is due, so a flood does not bounce rl_ctl's cache
 * line between CPUs. */
static __always_inline void rl_sample_drop(struct rl_ctl *ctl, const struct rl_pkt *pkt, __u32 tier,
					   __u32 rule, __u32 reason, __u64 now, __u32 ifindex)
{
	__u64 interval = ctl->sample_interval_q;
	if (!interval)
		return;
	__u64 now_q = now << RL_Q_SHIFT;
	__u64 tat = *(volatile __u64 *)&ctl->sample_tat_q;
	if (tat > now_q + ctl->sample_tolerance_q)
		return;
	__u64 next = (tat > now_q ? tat : now_q) + interval;
	if (__sync_val_compare_and_swap(&ctl->sample_tat_q, tat, next) != tat)
		return; /* another CPU took this sample */
	struct rl_event *ev = bpf_ringbuf_reserve(&rl_events, sizeof(*ev), 0);
	if (!ev) {
		rl_health_inc(RL_HEALTH_EVENTS_SUPPRESSED);
		return;
	}
	ev->time_ns = now;
	ev->ban_ns = 0;
	ev->type = RL_EVENT_DROP;
	ev->ifindex = ifindex;
	ev->drops = 0;
	__builtin_memcpy(ev->addr, pkt->addr, 16);
	ev->prefixlen = 128;
	ev->tier = tier;
	ev->rule = rule;
	ev->reason = reason;
	bpf_ringbuf_submit(ev, 0);
}

/* Count a rate drop in the bucket's window; the drop that reaches the tier's
 * threshold (exactly one CPU sees ==) bans the bucket's prefix. */
static __always_inline void rl_autoban_account(struct rl_ctl *ctl, const struct rl_tier_params *tp,
					       struct rl_bucket *bucket,
					       const struct rl_bucket_key *bkey, __u32 tier, __u64 now,
					       __u32 ifindex)
{
	if (!tp->autoban_drops)
		return;
	__u64 start = bucket->window_start_ns;
	if (now - start > tp->autoban_window_ns) {
		bucket->window_start_ns = now;
		bucket->window_drops = 0;
	}
	__u32 drops = __sync_fetch_and_add(&bucket->window_drops, 1) + 1;
	if (drops != tp->autoban_drops)
		return;

	struct rl_lpm_key key = {};
	key.prefixlen = RL_LPM_SLOT_BITS + bkey->prefixlen;
	key.slot = (bkey->rule & RL_BUCKET_KEY_V4) ? RL_LPM_SLOT_V4 : 0;
	rl_bucket_key_addr(bkey, key.addr);
	struct rl_ban_value ban = {
		.expires_ns = now + tp->autoban_ban_ns,
		.created_ns = now,
		.origin = RL_ORIGIN_KERNEL,
		.tier = tier,
		.rule = bkey->rule & (RL_MAX_RULES - 1),
	};
	/* NOEXIST: never shorten or overwrite a ban an operator set ... */
	long err = bpf_map_update_elem(&rl_bans, &key, &ban, BPF_NOEXIST);
	if (err == -17 /* EEXIST */) {
		/* ... but an expired one, not yet reaped (no daemon running), is replaced. */
		struct rl_ban_value *old = bpf_map_lookup_elem(&rl_bans, &key);
		if (old && old->expires_ns && old->expires_ns <= now)
			err = bpf_map_update_elem(&rl_bans, &key, &ban, BPF_EXIST);
	}
	if (err == 0) {
		/* A new window: if this ban runs out before the old window would
		 * have, the source can be banned again at the threshold. */
		bucket->window_start_ns = now;
		bucket->window_drops = 0;
		__sync_fetch_and_add(&ctl->ban_gen, 1);
		rl_health_inc(RL_HEALTH_AUTOBAN);
		rl_emit_autoban(ctl, bkey, tier, drops, now, tp->autoban_ban_ns, ifindex);
	} else if (err != -17 /* EEXIST */) {
		rl_health_inc(RL_HEALTH_AUTOBAN_FAIL);
	}
}

/* Walk the tries for `src` and store the result in `entry`. */
static __always_inline void rl_classify(struct rl_bucket *entry, const struct rl_pkt *pkt,
					const struct rl_policy *pol, __u32 gen, __u32 ban_gen,
					__u32 cache_prefix, __u64 now)
{
	struct rl_lpm_key key = {};
	key.prefixlen = RL_LPM_SLOT_BITS + 128;
	__u8 family = pkt->is_v6 ? 0 : RL_LPM_SLOT_V4;
	key.slot = (gen & 1) | family;
	__builtin_memcpy(key.addr, pkt->addr, 16);

	__u8 tier = pol->default_tier;
	bool was_banned = entry->state == RL_STATE_BANNED;
	struct rl_class_value *cls = bpf_map_lookup_elem(&rl_class, &key);
	if (cls) {
		if (cls->klass == RL_CLASS_ALLOW) {
			entry->state = RL_STATE_ALLOWED;
			goto out;
		}
		if (cls->klass == RL_CLASS_DENY) {
			entry->state = RL_STATE_DENIED;
			goto out;
		}
		tier = cls->tier;
	}
	tier &= RL_MAX_TIERS - 1;
	entry->tier = tier;

	key.slot = family;
	struct rl_ban_value *ban = bpf_map_lookup_elem(&rl_bans, &key);
	if (ban && (ban->expires_ns == 0 || now < ban->expires_ns)) {
		/* While banned, the window counts the ban's hits; a ban is known by its
		 * creation time, so revalidating or extending it keeps the count. */
		if (!was_banned || entry->window_start_ns != ban->created_ns) {
			entry->window_start_ns = ban->created_ns;
			entry->window_drops = 0;
		}
		entry->state = RL_STATE_BANNED;
		entry->ban_expires_ns = ban->expires_ns;
		goto out;
	}

	const struct rl_tier_params *tp = &pol->tiers[tier];
	__u32 bucket_prefix = pkt->is_v6 ? tp->prefix_v6 : RL_V4_MAPPED_BITS + tp->prefix_v4;
	if (bucket_prefix >= cache_prefix) {
		entry->state = RL_STATE_LIMITED;
	} else {
		entry->state = RL_STATE_AGGREGATED;
		entry->bucket_prefix = bucket_prefix;
	}
out:
	if (was_banned && entry->state != RL_STATE_BANNED) { /* released: a fresh auto-ban window */
		entry->window_start_ns = now;
		entry->window_drops = 0;
	}
	entry->policy_gen = gen;
	entry->ban_gen = ban_gen;
	rl_health_inc(RL_HEALTH_RECLASSIFY);
}

/* Whether the source whose key hashes to `h` was seen in this window or the
 * last (abi.h, rl_seen_line); marks it seen in this one. A first packet is
 * counted, and every RL_SEEN_CLOCK_BATCH of them per CPU move the shared
 * clock on, which moves rl_ctl.seen_window when a window ends. The tag is
 * written only when its window changes, so a steady source costs a load,
 * not a store. */
static __always_inline bool rl_seen_before(struct rl_ctl *ctl, __u64 h)
{
	if (!rl_seen_slots_mask)
		return true;
	__u32 slot = rl_seen_slot_of_hash(h, rl_seen_slots_mask);
	__u32 line_idx = slot / RL_SEEN_LINE;
	struct rl_seen_line *line = bpf_map_lookup_elem(&rl_seen, &line_idx);
	if (!line)
		return true;
	__u32 window = *(volatile __u32 *)&ctl->seen_window;
	__u8 current = rl_seen_tag(window, h);
	__u8 previous = rl_seen_tag(window - 1, h);
	__u8 *tag = &line->tag[slot % RL_SEEN_LINE];
	__u8 old = *tag;
	if (old == current)
		return true;
	*tag = current;
	if (old == previous)
		return true;
	__u32 which = RL_HEALTH_FIRST_PACKETS, zero = 0;
	__u64 *count = bpf_map_lookup_elem(&rl_health, &which);
	if (!count || ++*count % RL_SEEN_CLOCK_BATCH)
		return false;
	struct rl_seen_clock *clock = bpf_map_lookup_elem(&rl_seen_clock, &zero);
	if (!clock)
		return false;
	__u64 total = __sync_fetch_and_add(&clock->first_packets, RL_SEEN_CLOCK_BATCH) + RL_SEEN_CLOCK_BATCH;
	__u32 now_window = (__u32)(total >> rl_seen_window_shift);
	__u32 known = *(volatile __u32 *)&ctl->seen_window;
	/* Rare (once per window); only ever raised, so a CPU late with an older
	 * window cannot move it back. */
	if (now_window > known)
		__sync_val_compare_and_swap(&ctl->seen_window, known, now_window);
	return false;
}

/* Where a source's entry lives: its bucket, and the two words of its key in
 * the set (to tell afterwards whether the way still belongs to the source). */
struct rl_way {
	struct rl_bucket *bucket;
	__u64 *key;
	bool created;
};

static __always_inline __u64 rl_load64(const __u64 *p)
{
	return *(const volatile __u64 *)p;
}

/* The entry of `key` in its set, or a new one in place of the entry that
 * loses least by being forgotten: a free way, else the one whose last packet
 * (or the end of its debt, for a source over its limit) is oldest. A flood of
 * new sources therefore evicts idle entries before a source being limited.
 * The way holding (keep_lo, keep_hi) is never chosen: an aggregated source's
 * shared bucket must not evict the source's own entry.
 *
 * Rekeying a way: claim it by compare-and-swap of its key's high word to
 * RL_WAY_BUSY_HI (no real key, and not the free key), reset the bucket,
 * write the low word, publish the high word last. Readers compare the high
 * word first; on x86 (TSO) a published high word implies the new low word.
 * A CPU that loses the claim looks again, once; then the packet fails closed
 * (map_full). */
static __always_inline bool rl_lookup_or_create(__u64 hash, const union rl_bkey *key, __u64 now,
						__u64 keep_lo, __u64 keep_hi, struct rl_way *out)
{
	__u64 lo = key->w[0], hi = key->w[1];
	__u32 idx = rl_bucket_set_of_hash(hash, rl_bucket_sets);
	struct rl_bucket_set *set = bpf_map_lookup_elem(&rl_buckets, &idx);
	if (!set)
		return false;
	__u64 *keys = (__u64 *)set->keys;
	out->created = false;
#pragma unroll
	for (int attempt = 0; attempt < 2; attempt++) {
		__u32 victim = RL_BUCKET_WAYS;
		__u64 victim_until = ~0ULL, victim_hi = 0;
#pragma unroll
		for (__u32 w = 0; w < RL_BUCKET_WAYS; w++) {
			__u64 whi = rl_load64(&keys[2 * w + 1]);
			__u64 wlo = rl_load64(&keys[2 * w]);
			if (whi == hi && wlo == lo) {
				set->buckets[w].last_ns = now;
				out->bucket = &set->buckets[w];
				out->key = &keys[2 * w];
				return true;
			}
			if (whi == RL_WAY_BUSY_HI || (keep_hi && whi == keep_hi && wlo == keep_lo))
				continue;
			__u64 until = rl_bucket_way_score((wlo | whi) != 0, &set->buckets[w]);
			if (until < victim_until) {
				victim = w;
				victim_until = until;
				victim_hi = whi;
			}
		}
		if (victim >= RL_BUCKET_WAYS)
			break; /* every way busy or kept */
		if (__sync_val_compare_and_swap(&keys[2 * victim + 1], victim_hi, RL_WAY_BUSY_HI) != victim_hi)
			continue; /* another CPU is rekeying that way */
		if (victim_until) {
			rl_health_inc(RL_HEALTH_BUCKET_EVICTIONS);
			if (victim_until > now)
				rl_health_inc(RL_HEALTH_BUCKET_EVICTIONS_OWING);
		}
		struct rl_bucket *b = &set->buckets[victim];
		__builtin_memset(b, 0, sizeof(*b)); /* policy_gen 0: classified on first use */
		b->last_ns = now;
		*(volatile __u64 *)&keys[2 * victim] = lo;
		asm volatile("" ::: "memory");
		*(volatile __u64 *)&keys[2 * victim + 1] = hi;
		rl_health_inc(RL_HEALTH_BUCKET_INSERTS);
		out->bucket = b;
		out->key = &keys[2 * victim];
		out->created = true;
		return true;
	}
	return false;
}

/* Whether a way still holds `key` after this CPU wrote into its entry. The
 * atomic read is a full barrier: the writes are visible before the check. */
static __always_inline bool rl_way_holds(__u64 *way_key, const union rl_bkey *key)
{
	return __sync_fetch_and_or(&way_key[1], 0) == key->w[1] && rl_load64(&way_key[0]) == key->w[0];
}

/* Both the packet and the byte budget must conform; a packet charged to one
 * and refused by the other is refunded. */
static __always_inline int rl_take(__u64 *pkt_tat, __u64 *byte_tat, const struct rl_limit *lim,
				   __u64 now_q, __u32 bytes, __u64 tick_q)
{
	int res = RL_GCRA_CONFORM;
	__u64 pkt_cost = lim->pkt_interval_q;
	if (pkt_cost) {
		res = rl_gcra_take(pkt_tat, now_q, pkt_cost, lim->pkt_tolerance_q, tick_q);
		if (res != RL_GCRA_CONFORM)
			return res;
	}
	if (lim->byte_interval_q) {
		__u64 cost = rl_byte_cost_q(bytes, lim->byte_interval_q);
		res = rl_gcra_take(byte_tat, now_q, cost, lim->byte_tolerance_q, tick_q);
		if (res != RL_GCRA_CONFORM && pkt_cost)
			rl_gcra_refund(pkt_tat, pkt_cost);
	}
	return res;
}

static __always_inline void rl_refund(__u64 *pkt_tat, __u64 *byte_tat, const struct rl_limit *lim,
				      __u32 bytes)
{
	if (lim->pkt_interval_q)
		rl_gcra_refund(pkt_tat, lim->pkt_interval_q);
	if (lim->byte_interval_q)
		rl_gcra_refund(byte_tat, rl_byte_cost_q(bytes, lim->byte_interval_q));
}

/* Global bucket of the interface, through this CPU's lease. A tier with a
 * share of the burst (priority shedding) skips the leases and may only take
 * from the shared bucket while it is that far from empty. */
static __always_inline bool rl_global_take(const struct rl_limit *glim, __u32 ifindex, __u64 now_q,
					   __u32 bytes, __u64 tick_q, __u8 share)
{
	__u32 slot = ifindex % RL_GLOBAL_SLOTS;
	if (share) {
		struct rl_global_bucket *gs = bpf_map_lookup_elem(&rl_global, &slot);
		if (!gs)
			return true;
		if (gs->ifindex == 0)
			__sync_val_compare_and_swap(&gs->ifindex, 0, ifindex);
		struct rl_limit part = *glim;
		part.pkt_tolerance_q = part.pkt_tolerance_q / 256 * share;
		part.byte_tolerance_q = part.byte_tolerance_q / 256 * share;
		return rl_take(&gs->pkt_tat_q, &gs->byte_tat_q, &part, now_q, bytes, tick_q) == RL_GCRA_CONFORM;
	}
	struct rl_global_lease *lease = bpf_map_lookup_elem(&rl_global_lease, &slot);
	if (!lease)
		return true;
	bool need_pkts = glim->pkt_interval_q != 0;
	bool need_bytes = glim->byte_interval_q != 0;
	if (lease->ifindex == ifindex && (!need_pkts || lease->pkts_left > 0) &&
	    (!need_bytes || lease->bytes_left >= bytes)) {
		lease->pkts_left -= need_pkts;
		lease->bytes_left -= need_bytes ? bytes : 0;
		return true;
	}

	struct rl_global_bucket *g = bpf_map_lookup_elem(&rl_global, &slot);
	if (!g)
		return true;
	if (g->ifindex == 0) /* first use of the slot: claim it */
		__sync_val_compare_and_swap(&g->ifindex, 0, ifindex);

	/* Renew the lease; near the limit, fall back to this packet alone. */
	struct rl_limit lease_cost = *glim;
	lease_cost.pkt_interval_q *= RL_GLOBAL_LEASE_PKTS;
	if (rl_take(&g->pkt_tat_q, &g->byte_tat_q, &lease_cost, now_q, RL_GLOBAL_LEASE_BYTES, tick_q) ==
	    RL_GCRA_CONFORM) {
		lease->ifindex = ifindex;
		lease->pkts_left = need_pkts ? RL_GLOBAL_LEASE_PKTS - 1 : 0;
		lease->bytes_left = need_bytes && bytes < RL_GLOBAL_LEASE_BYTES ? RL_GLOBAL_LEASE_BYTES - bytes : 0;
		return true;
	}
	return rl_take(&g->pkt_tat_q, &g->byte_tat_q, glim, now_q, bytes, tick_q) == RL_GCRA_CONFORM;
}

/* A new entry takes over the source's first packet, judged without a bucket
 * (rl_seen_before): charged now (at this packet's size, which is all we know)
 * and counted, so bursts and per-source counts stay exact. An aggregated
 * source's first packet was charged to its shared bucket already. The tag
 * that sent the source here carries 3 bits of its hash, so it is another
 * source's (and the charge one too many) only 1 time in 8 of slot
 * collisions (docs/architecture.md). */
static __always_inline void rl_account_first_packet(struct rl_bucket *entry, const struct rl_policy *pol,
						    __u32 rule, __u64 now, __u32 bytes)
{
	switch (entry->state) {
	case RL_STATE_LIMITED: {
		const struct rl_limit *lim = &pol->limits[entry->tier & (RL_MAX_TIERS - 1)][rule];
		if (rl_take(&entry->pkt_tat_q, &entry->byte_tat_q, lim, now << RL_Q_SHIFT, bytes,
			    rl_ns_per_jiffy() << RL_Q_SHIFT) == RL_GCRA_CONFORM)
			entry->passed = 1;
		else
			entry->dropped = 1;
		break;
	}
	case RL_STATE_ALLOWED:
		entry->passed = 1;
		break;
	case RL_STATE_BANNED:
		entry->window_drops = 1;
		entry->dropped = 1;
		break;
	case RL_STATE_DENIED:
		entry->dropped = 1;
		break;
	}
}

SEC("xdp")
int rl_xdp(struct xdp_md *ctx)
{
	__u32 bytes = ctx->data_end - ctx->data;
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 zero = 0;
	struct rl_ctl *ctl = bpf_map_lookup_elem(&rl_ctl, &zero);
	if (!ctl)
		return XDP_PASS;
	__u32 gen = *(volatile __u32 *)&ctl->policy_gen;
	__u32 slot = gen & 1;
	struct rl_policy *pol = bpf_map_lookup_elem(&rl_policy, &slot);
	if (!pol)
		return XDP_PASS;

	struct rl_pkt pkt;
	int parsed = rl_parse(ctx, &pkt);
	if (parsed == RL_PARSE_NON_IP) {
		rl_count(ifindex, RL_STATS_TIER_NONE, 0, RL_REASON_NON_IP, RL_VERDICT_PASS, bytes);
		return XDP_PASS;
	}
	if (parsed != RL_PARSE_OK) {
		if (gen && (pol->flags & RL_POLICY_DROP_MALFORMED)) /* dry-run: counted, passed */
			return rl_drop(ifindex, pol, RL_STATS_TIER_NONE, 0, RL_REASON_MALFORMED, bytes);
		rl_count(ifindex, RL_STATS_TIER_NONE, 0, RL_REASON_MALFORMED, RL_VERDICT_PASS, bytes);
		return XDP_PASS;
	}
	if (!gen) { /* loaded but no policy written yet: pass-through */
		rl_count(ifindex, RL_STATS_TIER_NONE, 0, RL_REASON_WITHIN_LIMIT, RL_VERDICT_PASS, bytes);
		return XDP_PASS;
	}

	__u32 ridx = (slot * RL_L4_CLASSES + pkt.l4class) * RL_PORTS + pkt.dport;
	__u8 *rulep = bpf_map_lookup_elem(&rl_rule_index, &ridx);
	__u32 rule = rulep ? (*rulep & (RL_MAX_RULES - 1)) : 0;

	__u32 cache_prefix = pkt.is_v6 ? pol->v6_class_prefix : 128;
	union rl_bkey key;
	rl_make_bucket_key(&key, &pkt, cache_prefix, rule, ctl->bucket_seed);

	__u64 now = rl_now_ns();
	__u64 hash = rl_bucket_hash(key.w[0], key.w[1], ctl->bucket_seed);
	__u32 ban_gen = *(volatile __u32 *)&ctl->ban_gen;
	struct rl_bucket fresh;
	struct rl_bucket *entry = &fresh;
	bool seen = rl_seen_before(ctl, hash);
	if (seen) {
		struct rl_way way;
		if (!rl_lookup_or_create(hash, &key, now, 0, 0, &way)) /* lost two creation races */
			return rl_drop(ifindex, pol, RL_STATS_TIER_NONE, rule, RL_REASON_MAP_FULL, bytes);
		entry = way.bucket;
		if (way.created || entry->policy_gen != gen || entry->ban_gen != ban_gen ||
		    (entry->state == RL_STATE_BANNED && entry->ban_expires_ns && now >= entry->ban_expires_ns)) {
			rl_classify(entry, &pkt, pol, gen, ban_gen, cache_prefix, now);
			/* Another CPU rekeyed the way meanwhile: what was just written is
			 * this source's class, not the new owner's; make the owner classify. */
			if (!rl_way_holds(way.key, &key))
				entry->policy_gen = 0;
			else if (way.created && rl_seen_slots_mask)
				rl_account_first_packet(entry, pol, rule, now, bytes);
		}
	} else {
		/* First packet: judged by a fresh bucket on the stack. */
		__builtin_memset(&fresh, 0, sizeof(fresh));
		rl_classify(&fresh, &pkt, pol, gen, ban_gen, cache_prefix, now);
	}

	__u32 state = entry->state;
	if (state == RL_STATE_ALLOWED) {
		entry->passed++;
		rl_count(ifindex, RL_STATS_TIER_NONE, 0, RL_REASON_ALLOW, RL_VERDICT_PASS, bytes);
		return XDP_PASS;
	}
	if (state == RL_STATE_DENIED) {
		entry->dropped++;
		rl_sample_drop(ctl, &pkt, RL_STATS_TIER_NONE, 0, RL_REASON_DENY, now, ctx->ingress_ifindex);
		return rl_drop(ifindex, pol, RL_STATS_TIER_NONE, 0, RL_REASON_DENY, bytes);
	}
	if (state == RL_STATE_BANNED) {
		entry->dropped++;
		entry->window_drops++; /* ban hits */
		rl_sample_drop(ctl, &pkt, RL_STATS_TIER_NONE, 0, RL_REASON_BAN, now, ctx->ingress_ifindex);
		return rl_drop(ifindex, pol, RL_STATS_TIER_NONE, 0, RL_REASON_BAN, bytes);
	}

	__u32 tier = entry->tier & (RL_MAX_TIERS - 1);
	struct rl_bucket *bucket = entry;
	struct rl_bucket_key *bkey = &key.k;
	union rl_bkey agg_key;
	if (state == RL_STATE_AGGREGATED) {
		rl_make_bucket_key(&agg_key, &pkt, entry->bucket_prefix, rule, ctl->bucket_seed);
		struct rl_way agg;
		__u64 agg_hash = rl_bucket_hash(agg_key.w[0], agg_key.w[1], ctl->bucket_seed);
		if (!rl_lookup_or_create(agg_hash, &agg_key, now, key.w[0], key.w[1], &agg))
			return rl_drop(ifindex, pol, tier, rule, RL_REASON_MAP_FULL, bytes);
		bucket = agg.bucket;
		bkey = &agg_key.k;
		if (bucket->state != RL_STATE_AGGREGATED) { /* label it for rlctl top and bpftool */
			bucket->state = RL_STATE_AGGREGATED;
			bucket->tier = tier;
		}
	}

	const struct rl_limit *lim = &pol->limits[tier][rule];
	__u64 now_q = now << RL_Q_SHIFT;
	__u64 tick_q = rl_ns_per_jiffy() << RL_Q_SHIFT;
	int res = rl_take(&bucket->pkt_tat_q, &bucket->byte_tat_q, lim, now_q, bytes, tick_q);
	if (res != RL_GCRA_CONFORM) {
		bucket->dropped++;
		rl_sample_drop(ctl, &pkt, tier, rule, RL_REASON_RATE, now, ctx->ingress_ifindex);
		if (res == RL_GCRA_EXCEED && !(pol->flags & RL_POLICY_DRY_RUN))
			rl_autoban_account(ctl, &pol->tiers[tier], bucket, bkey, tier, now,
					   ctx->ingress_ifindex);
		return rl_drop(ifindex, pol, tier, rule, RL_REASON_RATE, bytes);
	}

	const struct rl_limit *glim = &pol->global;
	if ((glim->pkt_interval_q || glim->byte_interval_q) &&
	    !rl_global_take(glim, ctx->ingress_ifindex, now_q, bytes, tick_q, pol->tiers[tier].global_share)) {
		rl_refund(&bucket->pkt_tat_q, &bucket->byte_tat_q, lim, bytes);
		bucket->dropped++;
		rl_sample_drop(ctl, &pkt, tier, rule, RL_REASON_GLOBAL, now, ctx->ingress_ifindex);
		return rl_drop(ifindex, pol, tier, rule, RL_REASON_GLOBAL, bytes);
	}
	bucket->passed++;

	rl_count(ifindex, tier, rule, RL_REASON_WITHIN_LIMIT, RL_VERDICT_PASS, bytes);
	return XDP_PASS;
}

/* Run by userspace with bpf_prog_test_run: reads the program's clock. */
SEC("xdp")
int rl_clock_probe(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct rl_clock_sample *s = bpf_map_lookup_elem(&rl_clock, &zero);
	if (!s)
		return XDP_ABORTED;
	s->jiffies = bpf_jiffies64();
	s->mono_ns = bpf_ktime_get_ns();
	s->ns_per_jiffy = rl_ns_per_jiffy();
	s->rl_now_ns = s->jiffies * s->ns_per_jiffy;
	return XDP_PASS;
}
