/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the rlgate XDP program. Names carry the rl_ prefix and are what
 * userspace pins under /sys/fs/bpf/rlgate/; every map has BTF for its key and
 * value so `bpftool map dump` prints named fields. Sizes marked "sized by the
 * loader" are overridden from config before load.
 */
#ifndef RLGATE_BPF_MAPS_H
#define RLGATE_BPF_MAPS_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE); /* userspace updates fields atomically in place */
	__type(key, __u32);
	__type(value, struct rl_ctl);
} rl_ctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RL_POLICY_SLOTS);
	__type(key, __u32);
	__type(value, struct rl_policy);
} rl_policy SEC(".maps");

/* [slot][l4 class][destination port] -> rule id */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RL_RULE_INDEX_ENTRIES);
	__type(key, __u32);
	__type(value, __u8);
} rl_rule_index SEC(".maps");

/* allow + deny + tier membership, both slots; sized by the loader */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rl_lpm_key);
	__type(value, struct rl_class_value);
} rl_class SEC(".maps");

/* bans, slot 0 only; sized by the loader */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rl_lpm_key);
	__type(value, struct rl_ban_value);
} rl_bans SEC(".maps");

/* per-source buckets + classification cache, RL_BUCKET_WAYS per set; the
 * loader sets the number of sets (and rl_bucket_sets to match). Not
 * mmapable: a plain array may be backed by huge pages, which measurably cut
 * TLB misses when many sources are active (docs/PERFORMANCE.md). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 18);
	__type(key, __u32);
	__type(value, struct rl_bucket_set);
} rl_buckets SEC(".maps");

/* One-byte tags of sources seen once (abi.h, rl_seen_line); the loader sets
 * the number of lines (and rl_seen_slots_mask to match). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 15);
	__type(key, __u32);
	__type(value, struct rl_seen_line);
} rl_seen SEC(".maps");

/* The window clock of rl_seen, apart from rl_ctl: it is written every
 * RL_SEEN_CLOCK_BATCH first packets per CPU, rl_ctl's line once per window. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rl_seen_clock);
} rl_seen_clock SEC(".maps");

/* Per-interface global bucket, slot = ifindex % RL_GLOBAL_SLOTS (the loader
 * refuses to attach two interfaces that share a slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RL_GLOBAL_SLOTS);
	__type(key, __u32);
	__type(value, struct rl_global_bucket);
} rl_global SEC(".maps");

/* Tokens each CPU leased from its interface's global bucket: the shared
 * cache line is touched once per lease, not once per packet. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RL_GLOBAL_SLOTS);
	__type(key, __u32);
	__type(value, struct rl_global_lease);
} rl_global_lease SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RL_STATS_ENTRIES);
	__type(key, __u32);
	__type(value, struct rl_counter);
} rl_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RL_IF_STATS_ENTRIES);
	__type(key, __u32);
	__type(value, struct rl_counter);
} rl_if_stats SEC(".maps");

/* Per-CPU health counters (enum rl_health). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RL_HEALTH_MAX);
	__type(key, __u32);
	__type(value, __u64);
} rl_health SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rl_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rl_clock_sample);
} rl_clock SEC(".maps");

#endif /* RLGATE_BPF_MAPS_H */
