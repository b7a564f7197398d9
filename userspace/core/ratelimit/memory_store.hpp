// SPDX-License-Identifier: BSD-2-Clause
// Limiter state in memory: sharded (one mutex per shard), each shard a flat
// open-addressing table keyed by a keyed 64-bit hash of the client key
// (siphash.hpp), with the limits' states inline, so a decision touches one
// or two cache lines. Bounded: at most `max_keys` keys; when a shard is full
// the least recently used of a few sampled keys goes, so a client spraying
// random keys costs bounded memory and evicts idle keys first.
#pragma once

#include <array>
#include <memory>
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

    static constexpr std::size_t kMaxKeys = 4;    // keys decided together per request

    // Throws std::invalid_argument for more than kMaxLimits specs.
    Decision decide(std::string_view key, std::span<const LimitSpec> specs, std::int64_t now_ns, std::uint64_t cost);

    // One request against the limits of several keys at once (the caller's
    // API key, its endpoint, the global limit ...): admitted only if every
    // key's limits admit it, charged to all of them then, to none otherwise.
    // The keys' shards are locked together (in shard order), so concurrent
    // decisions never charge half a request. Throws std::invalid_argument
    // for more than kMaxKeys keys or kMaxLimits specs in a key.
    struct KeyedLimits {
        std::string_view key;
        std::span<const LimitSpec> specs;
    };
    Decision decide_keys(std::span<const KeyedLimits> keys, std::int64_t now_ns, std::uint64_t cost);

    // Many requests with the same limits (e.g. one per key), decided in
    // order: keys are hashed and their slots prefetched a window ahead, so
    // the memory latency of one key overlaps the work on the others.
    void decide_batch(std::span<const std::string_view> keys, std::span<const LimitSpec> specs, std::int64_t now_ns,
                      std::uint64_t cost, std::span<Decision> out);
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
        std::span<Slot> slots;  // in arena_; power of two, at most half full
        std::size_t count = 0;
        std::size_t cursor = 0;   // where eviction sampling goes on
        std::uint64_t evictions = 0;
    };
    static void erase(Shard& s, std::size_t pos);
    // The slot of `tag`, inserted (evicting if full) when absent; caller holds the lock.
    Slot& slot_for(Shard& s, std::uint64_t tag, std::size_t limits, std::int64_t now_ns);
    static Slot* find(Shard& s, std::uint64_t tag);
    void evict_one(Shard& s);

    std::uint64_t k0_, k1_;
    std::size_t per_shard_;
    std::vector<Shard> shards_;
    // All shards' slots in one allocation, on transparent huge pages where
    // the kernel allows: random keys then cost a cache miss, not also a TLB miss.
    struct ArenaDeleter {
        std::size_t bytes;
        std::size_t count;  // slots constructed
        void operator()(Slot* p) const;
    };
    std::unique_ptr<Slot[], ArenaDeleter> arena_;
};

}  // namespace rlgate::ratelimit
