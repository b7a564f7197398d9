// SPDX-License-Identifier: BSD-2-Clause
// Userspace view of rl_buckets, the set-associative bucket array the XDP
// program keeps (include/rlgate/abi.h): finds a source's entry the way the
// program does, and reads or writes whole sets. Reads race with the program
// harmlessly (a diagnostic may see an entry being replaced); writes are for
// tests, benchmarks and clearing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "dataplane/unique_fd.hpp"
#include "rlgate/abi.h"

namespace rlgate {

class BucketSets {
public:
    // Sets of `map_fd` (not owned), hashed with `seed` as rl_ctl holds it.
    BucketSets(int map_fd, std::uint64_t seed);
    // The pinned rl_buckets and rl_ctl under a daemon's pin directory.
    static BucketSets open_pinned(const std::string& pin_dir);

    [[nodiscard]] std::optional<rl_bucket> find(const rl_bucket_key& key) const;
    // Writes `value` as key's entry, in the way the program would use.
    void put(const rl_bucket_key& key, const rl_bucket& value);
    // Many entries at once (one read and one write of the whole map).
    void put_all(std::span<const rl_bucket_key> keys, std::span<const rl_bucket> values);
    void clear();
    // Every used entry, a chunk of sets at a time (the map can hold millions).
    void for_each_chunk(const char* what,
                        const std::function<void(std::span<const rl_bucket_key>, std::span<const rl_bucket>)>& fn) const;

    [[nodiscard]] std::uint32_t sets() const { return sets_; }
    [[nodiscard]] std::uint64_t capacity() const { return std::uint64_t{sets_} * RL_BUCKET_WAYS; }
    [[nodiscard]] std::uint32_t set_of(const rl_bucket_key& key) const {
        return rl_bucket_set_index(&key, seed_, sets_);
    }

private:
    BucketSets(UniqueFd owned, std::uint64_t seed);
    [[nodiscard]] rl_bucket_set read_set(std::uint32_t index) const;
    void write_set(std::uint32_t index, const rl_bucket_set& set);

    UniqueFd owned_;
    int fd_ = -1;
    std::uint64_t seed_ = 0;
    std::uint32_t sets_ = 0;
};

// The way the program gives `key` in `set`: its own, else a free one, else
// the one it would evict (rl_lookup_or_create in bpf/rlgate.bpf.c).
std::uint32_t bucket_way_for(const rl_bucket_set& set, const rl_bucket_key& key);
// Used: neither free nor being rekeyed by the program at this instant.
bool bucket_way_used(const rl_bucket_set& set, std::uint32_t way);
bool bucket_way_busy(const rl_bucket_set& set, std::uint32_t way);

}  // namespace rlgate
