// SPDX-License-Identifier: BSD-2-Clause
#include "dataplane/bucket_sets.hpp"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "dataplane/bpf_error.hpp"

namespace rlgate {
namespace {

constexpr rl_bucket_key kFreeKey{};

bool same_key(const rl_bucket_key& a, const rl_bucket_key& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::uint32_t map_sets(int fd) {
    bpf_map_info info{};
    std::uint32_t len = sizeof info;
    check_bpf(bpf_obj_get_info_by_fd(fd, &info, &len), "inspect rl_buckets");
    if (info.value_size != sizeof(rl_bucket_set))
        throw BpfError(EINVAL, "rl_buckets holds " + std::to_string(info.value_size) + "-byte values, not sets of " +
                                   std::to_string(sizeof(rl_bucket_set)) + ": another rlgate version");
    return info.max_entries;
}

}  // namespace

bool bucket_way_busy(const rl_bucket_set& set, std::uint32_t way) {
    std::uint64_t hi = 0;
    std::memcpy(&hi, reinterpret_cast<const std::uint8_t*>(&set.keys[way]) + 8, sizeof hi);
    return hi == RL_WAY_BUSY_HI;
}

bool bucket_way_used(const rl_bucket_set& set, std::uint32_t way) {
    return !same_key(set.keys[way], kFreeKey) && !bucket_way_busy(set, way);
}

std::uint32_t bucket_way_for(const rl_bucket_set& set, const rl_bucket_key& key) {
    std::uint32_t victim = 0;
    std::uint64_t victim_until = ~0ULL;
    for (std::uint32_t w = 0; w < RL_BUCKET_WAYS; ++w) {
        if (same_key(set.keys[w], key))
            return w;
        const std::uint64_t until = rl_bucket_way_score(bucket_way_used(set, w), &set.buckets[w]);
        if (until < victim_until) {
            victim = w;
            victim_until = until;
        }
    }
    return victim;
}

BucketSets::BucketSets(int map_fd, std::uint64_t seed) : fd_(map_fd), seed_(seed), sets_(map_sets(map_fd)) {}

BucketSets::BucketSets(UniqueFd owned, std::uint64_t seed)
    : owned_(std::move(owned)), fd_(owned_.get()), seed_(seed), sets_(map_sets(fd_)) {}

BucketSets BucketSets::open_pinned(const std::string& pin_dir) {
    UniqueFd ctl(bpf_obj_get((pin_dir + "/rl_ctl").c_str()));
    if (!ctl.valid())
        throw BpfError(errno, "open pinned " + pin_dir + "/rl_ctl");
    UniqueFd buckets(bpf_obj_get((pin_dir + "/rl_buckets").c_str()));
    if (!buckets.valid())
        throw BpfError(errno, "open pinned " + pin_dir + "/rl_buckets");
    rl_ctl c{};
    const std::uint32_t zero = 0;
    check_bpf(bpf_map_lookup_elem(ctl.get(), &zero, &c), "read pinned rl_ctl");
    return BucketSets(std::move(buckets), c.bucket_seed);
}

rl_bucket_set BucketSets::read_set(std::uint32_t index) const {
    rl_bucket_set set{};
    check_bpf(bpf_map_lookup_elem(fd_, &index, &set), "read rl_buckets");
    return set;
}

void BucketSets::write_set(std::uint32_t index, const rl_bucket_set& set) {
    check_bpf(bpf_map_update_elem(fd_, &index, &set, BPF_ANY), "write rl_buckets");
}

std::optional<rl_bucket> BucketSets::find(const rl_bucket_key& key) const {
    const rl_bucket_set set = read_set(set_of(key));
    for (std::uint32_t w = 0; w < RL_BUCKET_WAYS; ++w)
        if (same_key(set.keys[w], key))
            return set.buckets[w];
    return std::nullopt;
}

void BucketSets::put(const rl_bucket_key& key, const rl_bucket& value) {
    const std::uint32_t index = set_of(key);
    rl_bucket_set set = read_set(index);
    const std::uint32_t way = bucket_way_for(set, key);
    set.keys[way] = key;
    set.buckets[way] = value;
    write_set(index, set);
}

void BucketSets::put_all(std::span<const rl_bucket_key> keys, std::span<const rl_bucket> values) {
    std::vector<rl_bucket_set> all(sets_);
    std::vector<std::uint32_t> indices(sets_);
    for (std::uint32_t i = 0; i < sets_; ++i)
        indices[i] = i;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    std::uint32_t count = sets_;
    std::uint32_t cursor = 0;
    if (bpf_map_lookup_batch(fd_, nullptr, &cursor, indices.data(), all.data(), &count, &opts) != 0 &&
        errno != ENOENT)
        throw BpfError(errno, "read rl_buckets");
    for (std::size_t i = 0; i < keys.size() && i < values.size(); ++i) {
        rl_bucket_set& set = all[set_of(keys[i])];
        const std::uint32_t way = bucket_way_for(set, keys[i]);
        set.keys[way] = keys[i];
        set.buckets[way] = values[i];
    }
    count = sets_;
    check_bpf(bpf_map_update_batch(fd_, indices.data(), all.data(), &count, &opts), "write rl_buckets");
}

void BucketSets::clear() {
    const rl_bucket_set empty{};
    for (std::uint32_t i = 0; i < sets_; ++i)
        write_set(i, empty);
}

void BucketSets::for_each_chunk(
    const char* what, const std::function<void(std::span<const rl_bucket_key>, std::span<const rl_bucket>)>& fn) const {
    constexpr std::uint32_t kChunk = 2048;  // sets
    std::vector<std::uint32_t> indices(kChunk);
    std::vector<rl_bucket_set> sets(kChunk);
    std::vector<rl_bucket_key> keys;
    std::vector<rl_bucket> values;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    std::uint32_t cursor = 0;
    bool first = true;
    for (;;) {
        std::uint32_t count = kChunk;
        const int err =
            bpf_map_lookup_batch(fd_, first ? nullptr : &cursor, &cursor, indices.data(), sets.data(), &count, &opts);
        first = false;
        if (err != 0 && errno != ENOENT)
            throw BpfError(errno, what);
        keys.clear();
        values.clear();
        for (std::uint32_t s = 0; s < count; ++s)
            for (std::uint32_t w = 0; w < RL_BUCKET_WAYS; ++w)
                if (bucket_way_used(sets[s], w)) {
                    keys.push_back(sets[s].keys[w]);
                    values.push_back(sets[s].buckets[w]);
                }
        fn(keys, values);
        if (err != 0)  // ENOENT: that was the last chunk
            return;
    }
}

}  // namespace rlgate
