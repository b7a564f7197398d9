/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * rlgate kernel/user ABI: every struct that crosses the boundary between the
 * XDP program (bpf/) and userspace (userspace/, tests/) is defined here, once.
 *
 * Included by bpf/rlgate.bpf.c (after vmlinux.h) and by C++ code (after
 * <linux/types.h>). Plain fixed-width __u* types, explicit padding, and size /
 * offset checks at the end so a layout drift fails the build on both sides.
 *
 * Time: "rl time" is bpf_jiffies64() scaled to nanoseconds (see
 * docs/PERFORMANCE.md for why jiffies and not bpf_ktime_get_ns()). Userspace
 * reads the same clock through the rl_clock_probe program.
 */
#ifndef RLGATE_ABI_H
#define RLGATE_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define RL_U32(x) static_cast<__u32>(x)
#define RL_U8(x) static_cast<__u8>(x)
#else
#define RL_U32(x) ((__u32)(x))
#define RL_U8(x) ((__u8)(x))
#endif

#define RL_MAX_TIERS 16   /* tier ids 0..15; 0 is the default tier */
#define RL_MAX_RULES 16   /* rule ids 1..15; 0 means "no L4 rule matched" */
#define RL_POLICY_SLOTS 2 /* double-buffered policy: slot = generation & 1 */

/* Dense destination-port → rule table, per slot and per L4 class. */
#define RL_PORTS 65536
enum rl_l4_class {
	RL_L4_TCP = 0,     /* TCP without SYN (or SYN+ACK) */
	RL_L4_TCP_SYN = 1, /* TCP SYN without ACK: connection attempts */
	RL_L4_UDP = 2,
	RL_L4_OTHER = 3, /* ICMP, ICMPv6, non-first fragments, other protos: port 0 */
	RL_L4_CLASSES = 4,
};
#define RL_RULE_INDEX_ENTRIES (RL_POLICY_SLOTS * RL_L4_CLASSES * RL_PORTS)

/* Why a packet got its verdict. Counters are kept per reason × verdict. */
enum rl_reason {
	RL_REASON_WITHIN_LIMIT = 0, /* classified, buckets had tokens */
	RL_REASON_ALLOW = 1,        /* allowlist */
	RL_REASON_NON_IP = 2,       /* not IPv4/IPv6: always passes */
	RL_REASON_MALFORMED = 3,    /* truncated / bogus header: configurable verdict */
	RL_REASON_DENY = 4,         /* static denylist */
	RL_REASON_BAN = 5,          /* ban list (manual, kernel auto-ban, L7, peer) */
	RL_REASON_RATE = 6,         /* per-source bucket empty */
	RL_REASON_GLOBAL = 7,       /* per-interface global bucket empty */
	RL_REASON_MAP_FULL = 8,     /* could not create a bucket: fail closed */
	RL_REASON_MAX = 9,
};

enum rl_verdict_index {
	RL_VERDICT_PASS = 0, /* dry-run drops are counted as PASS with a drop reason */
	RL_VERDICT_DROP = 1,
	RL_VERDICTS = 2,
};

/* Counters index: ((tier * RL_MAX_RULES + rule) * RL_REASON_MAX + reason) * 2 + verdict.
 * Verdicts reached before classification (non-IP, malformed, allow, deny, ban)
 * are counted under tier RL_STATS_TIER_NONE, rule 0. */
#define RL_STATS_TIER_NONE RL_MAX_TIERS
#define RL_STATS_ENTRIES ((RL_MAX_TIERS + 1) * RL_MAX_RULES * RL_REASON_MAX * RL_VERDICTS)

static inline __u32 rl_stats_index(__u32 tier, __u32 rule, __u32 reason, __u32 verdict)
{
	return ((tier * RL_MAX_RULES + rule) * RL_REASON_MAX + reason) * RL_VERDICTS + verdict;
}

/* Per-interface counters (PERCPU_ARRAY): by interface slot (ifindex modulo
 * RL_GLOBAL_SLOTS, the slot of the global bucket; the loader refuses two
 * attached interfaces sharing one), reason and verdict. */
#define RL_IF_SLOTS 1024
#define RL_IF_STATS_ENTRIES (RL_IF_SLOTS * RL_REASON_MAX * RL_VERDICTS)
static inline __u32 rl_if_stats_index(__u32 ifindex, __u32 reason, __u32 verdict)
{
	return ((ifindex % RL_IF_SLOTS) * RL_REASON_MAX + reason) * RL_VERDICTS + verdict;
}

struct rl_counter {
	__u64 packets;
	__u64 bytes;
};

/* Dataplane health counters (PERCPU_ARRAY, one slot each). */
enum rl_health {
	RL_HEALTH_BUCKET_INSERTS = 0,   /* new bucket entries */
	RL_HEALTH_BUCKET_EVICTIONS,     /* ... that replaced another source's entry */
	RL_HEALTH_CAS_RETRY,            /* lost a compare-and-swap race, retried */
	RL_HEALTH_CAS_EXHAUSTED,        /* gave up after RL_CAS_TRIES: packet dropped */
	RL_HEALTH_RECLASSIFY,           /* cached classification revalidated */
	RL_HEALTH_AUTOBAN,              /* bans inserted by the program itself */
	RL_HEALTH_AUTOBAN_FAIL,         /* ban map full */
	RL_HEALTH_EVENTS_SENT,          /* ring-buffer events emitted */
	RL_HEALTH_EVENTS_SUPPRESSED,    /* events dropped by the event budget or a full ring */
	RL_HEALTH_BUCKET_EVICTIONS_OWING, /* evictions of a bucket still in debt: rl_buckets is too small */
	RL_HEALTH_FIRST_PACKETS,        /* packets of sources not seen in the last two windows: judged without a bucket */
	RL_HEALTH_MAX,
};

/* Source/prefix key for every LPM trie. IPv4 is stored IPv4-mapped
 * (::ffff:a.b.c.d, prefix 96 + len) so one trie serves both families.
 * prefixlen counts bits of `slot` + `addr`: a policy entry for /N has
 * prefixlen = 8 + N, so a lookup for slot s only matches entries of slot s.
 * `slot` = policy slot (0 or 1; always 0 in the ban trie, bans are not
 * double-buffered) | RL_LPM_SLOT_V4 for IPv4. The family bit keeps the
 * families apart: an IPv6 prefix whose leading bits are zero (::/0, ::/48, an
 * aggregated ::/1 bucket banned by the kernel) would otherwise cover the
 * IPv4-mapped range and so every IPv4 source. */
struct rl_lpm_key {
	__u32 prefixlen;
	__u8 slot;
	__u8 addr[16];
	__u8 pad[3];
};
#define RL_LPM_SLOT_BITS 8
#define RL_LPM_SLOT_V4 0x80
#define RL_V4_MAPPED_BITS 96

/* Value of the classification trie (allow + deny + tier membership merged by
 * userspace so that one longest-prefix lookup yields the final class). */
enum rl_class {
	RL_CLASS_TIER = 0, /* member of `tier`; limits apply */
	RL_CLASS_ALLOW = 1,
	RL_CLASS_DENY = 2,
};
struct rl_class_value {
	__u8 klass; /* enum rl_class */
	__u8 tier;  /* valid for RL_CLASS_TIER */
	__u8 pad[2];
};

enum rl_ban_origin {
	RL_ORIGIN_MANUAL = 0,
	RL_ORIGIN_KERNEL = 1, /* auto-ban by the XDP program */
	RL_ORIGIN_L7 = 2,
	RL_ORIGIN_PEER = 3,   /* propagated from another host */
};

struct rl_ban_value {
	__u64 expires_ns; /* rl time; 0 = until removed */
	__u64 created_ns; /* rl time */
	__u32 reason;     /* daemon-defined code; the text lives in userspace */
	__u8 origin;      /* enum rl_ban_origin */
	__u8 tier;        /* tier of the source when auto-banned */
	__u8 rule;        /* L4 rule it was limited under when auto-banned */
	__u8 pad;
};

/* Token-bucket limit in GCRA form. Times are in 1/64 ns ("q6") so that rates
 * up to 100 Mpps keep sub-percent precision; see bpf/gcra.h. 0 = unlimited. */
#define RL_Q_SHIFT 6
#define RL_BYTE_Q_SHIFT 16 /* per-byte interval keeps 16 fractional bits */
struct rl_limit {
	__u64 pkt_interval_q;   /* 1/64 ns per packet (1e9 / pps << 6); 0 = no pps limit */
	__u64 pkt_tolerance_q;  /* burst_packets * pkt_interval_q */
	__u64 byte_interval_q;  /* 1/2^16 ns per byte; 0 = no byte limit */
	__u64 byte_tolerance_q; /* burst_bytes * byte interval, in 1/64 ns */
};

struct rl_tier_params {
	__u8 prefix_v4;      /* bucket aggregation, 1..32 (default 32) */
	__u8 prefix_v6;      /* bucket aggregation, 1..128 (default 64) */
	__u8 global_share;   /* share of the global limit's burst this tier may use, n/256; 0 = all.
			      * Over the global limit, tiers with smaller shares are shed first. */
	__u8 pad;
	__u32 autoban_drops; /* drops within autoban_window_ns that trigger a ban; 0 = off */
	__u64 autoban_window_ns;
	__u64 autoban_ban_ns; /* ban length for kernel auto-bans */
};

enum rl_policy_flags {
	RL_POLICY_DRY_RUN = 1u << 0,        /* count would-be drops, pass them */
	RL_POLICY_DROP_MALFORMED = 1u << 1, /* malformed frames: drop instead of pass */
};

/* One policy slot. Written whole by userspace into the inactive slot before
 * the generation flips; read by the program through rl_ctl.policy_gen. */
struct rl_policy {
	__u32 flags;          /* enum rl_policy_flags */
	__u8 default_tier;    /* tier of sources matching no tier prefix */
	__u8 v6_class_prefix; /* classification cache granularity for IPv6 (>= 64) */
	__u8 pad[2];
	struct rl_limit global; /* per interface; pkt/byte interval 0 = off */
	struct rl_tier_params tiers[RL_MAX_TIERS];
	struct rl_limit limits[RL_MAX_TIERS][RL_MAX_RULES]; /* [tier][rule] */
};

/* Live control block (ARRAY, one entry). */
struct rl_ctl {
	__u32 policy_gen; /* active slot = policy_gen & 1; 0 = no policy loaded yet */
	__u32 ban_gen;    /* bumped on every ban insert/delete; invalidates caches */
	__u64 event_tat_q; /* GCRA state of the event budget */
	__u64 event_interval_q;
	__u64 event_tolerance_q;
	__u32 abi_version; /* RL_ABI_VERSION of the loader that created the pinned maps */
	__u32 seen_window; /* current window of rl_seen: rl_seen_clock.first_packets >> rl_seen_window_shift,
			    * copied here when it changes so a packet reads it from a line it reads anyway */
	__u64 sample_tat_q; /* budget of drop samples (RL_EVENT_DROP), separate so */
	__u64 sample_interval_q; /* samples never crowd out auto-ban events */
	__u64 sample_tolerance_q;
	__u64 bucket_seed; /* secret hash seed of rl_buckets, set once when the map is created */
};

/* Bumped whenever a pinned map's layout or meaning changes: a daemon refuses
 * to adopt pinned maps of another version instead of misreading them. */
#define RL_ABI_VERSION 6

/* Bucket key: source masked to a prefix, plus the L4 rule.
 * The same map holds classification-cache entries (prefix = cache
 * granularity) and aggregated buckets (prefix = tier prefix).
 * 16 bytes, because the key is hashed on every packet (a 20-byte key costs
 * 6-7 ns more per lookup, docs/PERFORMANCE.md): IPv4 sources keep their 4
 * address bytes at addr[0..3]; IPv6 sources the first 14 bytes of the
 * address, which is why IPv6 policy prefixes stop at /112. The family bit in
 * `rule` keeps the two families from ever sharing a key. */
#define RL_BUCKET_KEY_V4 0x80
#define RL_MAX_V6_PREFIX 112
struct rl_bucket_key {
	__u8 addr[14];
	__u8 prefixlen; /* in the 128-bit space (v4 /32 = 128) */
	__u8 rule;      /* rule id | RL_BUCKET_KEY_V4 for IPv4 */
};

enum rl_bucket_state {
	RL_STATE_LIMITED = 0,   /* tier bucket; GCRA state below */
	RL_STATE_ALLOWED = 1,
	RL_STATE_DENIED = 2,
	RL_STATE_BANNED = 3,    /* until ban_expires_ns */
	RL_STATE_AGGREGATED = 4, /* bucket lives at the tier prefix: second lookup */
};

struct rl_bucket {
	__u64 pkt_tat_q;  /* GCRA theoretical arrival time, rl time in 1/64 ns */
	__u64 byte_tat_q;
	__u64 ban_expires_ns; /* RL_STATE_BANNED: rl time, 0 = until removed */
	__u64 window_start_ns; /* auto-ban drop window; RL_STATE_BANNED: created_ns of the ban */
	__u32 window_drops;    /* rate drops in the window; RL_STATE_BANNED: packets the ban dropped */
	__u32 policy_gen; /* classification below is valid for this generation */
	__u32 ban_gen;    /* ... and this ban generation */
	__u8 state;       /* enum rl_bucket_state */
	__u8 tier;
	__u8 bucket_prefix; /* RL_STATE_AGGREGATED: prefix of the shared bucket */
	__u8 pad;
	/* Packets seen by this entry (wrapping; plain increments, so concurrent
	 * CPUs may lose a few): the daemon diffs two snapshots for `rlctl top`. */
	__u32 passed;
	__u32 dropped;
	__u64 last_ns; /* rl time of the entry's last packet: eviction order */
};

/* rl_buckets is an array of sets of RL_BUCKET_WAYS entries, not a hash map:
 * a source lives in the set its key hashes to (with a secret seed, so that
 * nobody can aim a flood at one set), the four keys share one cache line and
 * each bucket has its own. Looking a source up is an inlined array access
 * and four compares instead of a hash-table walk, and a new source replaces
 * the entry of its set that lost least by being forgotten (docs/architecture.md).
 * An all-zero key marks a free way: real keys never are (IPv4 keys carry
 * RL_BUCKET_KEY_V4, IPv6 keys a prefix length >= 1). */
#define RL_BUCKET_WAYS 4
/* High key word (bytes 8..15, little-endian) of a way being rekeyed: rule
 * 0xff with prefix length 0, which no real key has. */
#define RL_WAY_BUSY_HI 0xff00000000000000ULL
struct rl_bucket_set {
	struct rl_bucket_key keys[RL_BUCKET_WAYS];
	struct rl_bucket buckets[RL_BUCKET_WAYS];
};

/* Keyed hash of a bucket key given as its two little-endian words (bytes
 * 0..7, 8..15); rl_bucket_set_of_hash and rl_seen_slot_of_hash pick from it. */
static inline __u64 rl_bucket_hash(__u64 lo, __u64 hi, __u64 seed)
{
	__u64 h = (lo ^ seed) * 0x9e3779b97f4a7c15ULL;
	h = (h ^ hi ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 32);
}

static inline __u32 rl_bucket_set_of_hash(__u64 h, __u32 sets)
{
	return RL_U32(((h & 0xffffffffULL) * sets) >> 32); /* range reduction without a modulo */
}

/* A multiply carries differences only upwards: the hash's high half alone
 * would not tell keys apart that differ in their last bytes (the rule). */
static inline __u32 rl_seen_slot_of_hash(__u64 h, __u32 slots_mask)
{
	return RL_U32((h * 0xd6e8feb86659fd93ULL) >> 32) & slots_mask;
}

static inline __u32 rl_bucket_set_of_words(__u64 lo, __u64 hi, __u64 seed, __u32 sets)
{
	return rl_bucket_set_of_hash(rl_bucket_hash(lo, hi, seed), sets);
}

static inline __u32 rl_bucket_set_index(const struct rl_bucket_key *key, __u64 seed, __u32 sets)
{
	__u64 w[2];
	__builtin_memcpy(w, key, sizeof(w));
	return rl_bucket_set_of_words(w[0], w[1], seed, sets);
}

/* The time after which forgetting a bucket loses nothing: its last packet,
 * or the end of its debt when it is over its limit. */
static inline __u64 rl_bucket_keep_until(const struct rl_bucket *b)
{
	__u64 until = b->last_ns;
	__u64 pkt = b->pkt_tat_q >> RL_Q_SHIFT, bytes = b->byte_tat_q >> RL_Q_SHIFT;
	if (pkt > until)
		until = pkt;
	if (bytes > until)
		until = bytes;
	return until;
}

/* Eviction order of a way: 0 when free (always taken first), else its
 * keep-until time, at least 1. The program and userspace both use this. */
static inline __u64 rl_bucket_way_score(int used, const struct rl_bucket *b)
{
	if (!used)
		return 0;
	__u64 until = rl_bucket_keep_until(b);
	return until ? until : 1;
}

/* Sources seen once (rl_seen). A source gets an entry in rl_buckets on its
 * second packet within a window, not its first: the first packet is judged
 * as a fresh bucket would judge it (same verdict, charged when the entry is
 * made) and leaves a one-byte tag in a slot picked by the key's hash. A spray
 * of spoofed one-packet sources therefore walks no bucket set and evicts no
 * entry. A tag holds the window it was written in: a window ends after
 * 2^rl_seen_window_shift first packets (counted in rl_seen_clock), and a tag
 * of the current or the previous window means "seen". */
#define RL_SEEN_TAG_VALID 0x80
#define RL_SEEN_LINE 64
/* Slots per bucket entry, and windows per table: at most 2 windows' tags are
 * live, so at most 1/8 of the slots, and a tag matches another source's 1
 * time in 8 of those: a new source is taken for seen at most 1 time in 64. */
#define RL_SEEN_SLOTS_PER_ENTRY 8
#define RL_SEEN_WINDOWS_PER_TABLE 16
/* ... but no more slots than this: every packet reads a tag, and with many
 * active sources a table of more pages than the TLB holds costs a page walk
 * per packet on top of the bucket's (docs/PERFORMANCE.md). */
#define RL_SEEN_MAX_SLOTS (1U << 21)
/* First packets a CPU counts before adding them to the shared clock. */
#define RL_SEEN_CLOCK_BATCH 64
struct rl_seen_line {
	__u8 tag[RL_SEEN_LINE]; /* 0 = never; else rl_seen_tag() */
};
struct rl_seen_clock {
	__u64 first_packets; /* all CPUs, in steps of RL_SEEN_CLOCK_BATCH; the window is in rl_ctl */
};

/* A tag: valid bit, the window's low 4 bits (a tag 16 windows old looks
 * current again; by then the source is long forgotten, and the worst it gets
 * is a bucket at once) and 3 bits of the key's hash not used for the slot, so
 * a source takes another source's tag in its slot for its own 1 time in 8. */
static inline __u8 rl_seen_tag(__u32 window, __u64 h)
{
	return RL_U8(RL_SEEN_TAG_VALID | (window & 15) << 3 | RL_U32(h >> 61));
}

enum rl_event_type {
	RL_EVENT_AUTOBAN = 1,
	RL_EVENT_DROP = 2, /* a sampled drop: reason says why */
};

struct rl_event {
	__u64 time_ns; /* rl time */
	__u64 ban_ns;  /* RL_EVENT_AUTOBAN: ban length */
	__u32 type;    /* enum rl_event_type */
	__u32 ifindex;
	__u32 drops;   /* drops in the window when the event fired */
	__u8 addr[16];
	__u8 prefixlen; /* 128-bit space */
	__u8 tier;
	__u8 rule;
	__u8 reason; /* enum rl_reason */
};

/* Global (per-interface) bucket and the per-CPU leases taken from it. A CPU
 * takes RL_GLOBAL_LEASE_PKTS packets (and RL_GLOBAL_LEASE_BYTES bytes) at a
 * time, so the limit can be exceeded by at most that much per CPU. */
#define RL_GLOBAL_SLOTS 1024
#define RL_GLOBAL_LEASE_PKTS 32
#define RL_GLOBAL_LEASE_BYTES (32 * 1514)
struct rl_global_bucket {
	__u32 ifindex; /* owner of the slot; 0 = unused */
	__u32 pad;
	__u64 pkt_tat_q;
	__u64 byte_tat_q;
};

struct rl_global_lease {
	__u32 ifindex;
	__u32 pkts_left;
	__u64 bytes_left;
};

/* Sample taken by rl_clock_probe: userspace's view of rl time. */
struct rl_clock_sample {
	__u64 jiffies;
	__u64 mono_ns;      /* bpf_ktime_get_ns() at the same instant */
	__u64 rl_now_ns;    /* jiffies * ns_per_jiffy: the program's clock */
	__u64 ns_per_jiffy; /* 1e9 / CONFIG_HZ */
};

#ifdef __cplusplus
#include <cstddef>
#define RL_ASSERT(cond, msg) static_assert(cond, msg)
#define RL_OFFSETOF(t, m) offsetof(t, m)
#else
#define RL_ASSERT(cond, msg) _Static_assert(cond, msg)
#define RL_OFFSETOF(t, m) __builtin_offsetof(t, m)
#endif

RL_ASSERT(sizeof(struct rl_counter) == 16, "rl_counter layout");
RL_ASSERT(sizeof(struct rl_lpm_key) == 24, "rl_lpm_key layout");
RL_ASSERT(RL_OFFSETOF(struct rl_lpm_key, slot) == 4, "rl_lpm_key.slot");
RL_ASSERT(RL_OFFSETOF(struct rl_lpm_key, addr) == 5, "rl_lpm_key.addr");
RL_ASSERT(sizeof(struct rl_class_value) == 4, "rl_class_value layout");
RL_ASSERT(sizeof(struct rl_ban_value) == 24, "rl_ban_value layout");
RL_ASSERT(RL_OFFSETOF(struct rl_ban_value, reason) == 16, "rl_ban_value.reason");
RL_ASSERT(sizeof(struct rl_limit) == 32, "rl_limit layout");
RL_ASSERT(sizeof(struct rl_tier_params) == 24, "rl_tier_params layout");
RL_ASSERT(RL_OFFSETOF(struct rl_policy, global) == 8, "rl_policy.global");
RL_ASSERT(RL_OFFSETOF(struct rl_policy, tiers) == 40, "rl_policy.tiers");
RL_ASSERT(RL_OFFSETOF(struct rl_policy, limits) == 40 + 24 * RL_MAX_TIERS, "rl_policy.limits");
RL_ASSERT(sizeof(struct rl_policy) == 40 + 24 * RL_MAX_TIERS + 32 * RL_MAX_TIERS * RL_MAX_RULES,
	  "rl_policy layout");
RL_ASSERT(sizeof(struct rl_ctl) == 72, "rl_ctl layout");
RL_ASSERT(RL_IF_SLOTS == RL_GLOBAL_SLOTS, "interface counters share the global limit's slots");
RL_ASSERT(RL_OFFSETOF(struct rl_ctl, abi_version) == 32, "rl_ctl.abi_version");
RL_ASSERT(sizeof(struct rl_bucket_key) == 16, "rl_bucket_key layout");
RL_ASSERT(RL_OFFSETOF(struct rl_bucket_key, prefixlen) == 14, "rl_bucket_key.prefixlen");
RL_ASSERT(sizeof(struct rl_bucket) == 64, "rl_bucket layout: one cache line");
RL_ASSERT(RL_OFFSETOF(struct rl_bucket, last_ns) == 56, "rl_bucket.last_ns");
RL_ASSERT(sizeof(struct rl_bucket_set) == 64 + 64 * RL_BUCKET_WAYS, "rl_bucket_set layout: keys in one line");
RL_ASSERT(RL_OFFSETOF(struct rl_bucket_set, buckets) == 64, "rl_bucket_set.buckets");
RL_ASSERT(RL_OFFSETOF(struct rl_bucket, passed) == 48, "rl_bucket.passed");
RL_ASSERT(RL_OFFSETOF(struct rl_bucket, window_drops) == 32, "rl_bucket.window_drops");
RL_ASSERT(RL_OFFSETOF(struct rl_bucket, state) == 44, "rl_bucket.state");
RL_ASSERT(sizeof(struct rl_event) == 48, "rl_event layout");
RL_ASSERT(sizeof(struct rl_seen_line) == RL_SEEN_LINE, "rl_seen_line layout: one cache line");
RL_ASSERT(sizeof(struct rl_seen_clock) == 8, "rl_seen_clock layout");
RL_ASSERT(RL_OFFSETOF(struct rl_event, addr) == 28, "rl_event.addr");
RL_ASSERT(sizeof(struct rl_global_bucket) == 24, "rl_global_bucket layout");
RL_ASSERT(sizeof(struct rl_global_lease) == 16, "rl_global_lease layout");
RL_ASSERT(sizeof(struct rl_clock_sample) == 32, "rl_clock_sample layout");

#endif /* RLGATE_ABI_H */
