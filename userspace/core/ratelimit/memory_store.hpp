// SPDX-License-Identifier: BSD-2-Clause
// Limiter state in memory: sharded (one mutex per shard), each shard a flat
// open-addressing table keyed by a keyed 64-bit hash of the client key
// (siphash.hpp), with the limits' states inline, so a decision touches one
// or two cache lines. Bounded: at most `max_keys` keys; when a shard is full
// the least recently used of a few sampled keys goes, so a client spraying
// random keys costs bounded memory and evicts idle keys first.
#pragma once

#include <array>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "core/ratelimit/decision.hpp"

namespace rlgate::ratelimit {

class MemoryStore {
public:
    static constexpr std::size_t kMaxLimits = 4;  // limits checked together per key

    // `seed`: the hash key; 0 draws one from the OS.
    explicit MemoryStore(std::size_t max_keys, std::size_t shards = 64, std::uint64_t seed = 0);

    // Throws std::invalid_argument for more than kMaxLimits specs.
    Decision decide(std::string_view key, std::span<const LimitSpec> specs, std::int64_t now_ns, std::uint64_t cost);
    [[nodiscard]] std::size_t size() const;
    [[nodiscard]] bool contains(std::string_view key) const;
    [[nodiscard]] std::uint64_t evictions() const;

private:
    struct Slot {
        std::uint64_t tag = 0;  // keyed hash | 1; 0 = empty
        std::int64_t last_used = 0;
        std::uint32_t limits = 0;
        std::array<LimitState, kMaxLimits> states{};
    };
    struct Shard {
        mutable std::mutex mu;
        std::vector<Slot> slots;  // power of two, at most half full
        std::size_t count = 0;
        std::size_t cursor = 0;   // where eviction sampling goes on
        std::uint64_t evictions = 0;
    };
    static void erase(Shard& s, std::size_t pos);
    void evict_one(Shard& s);

    std::uint64_t k0_, k1_;
    std::size_t per_shard_;
    std::vector<Shard> shards_;
};

}  // namespace rlgate::ratelimit
