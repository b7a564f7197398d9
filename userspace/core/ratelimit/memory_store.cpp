// SPDX-License-Identifier: BSD-2-Clause
#include "core/ratelimit/memory_store.hpp"

#include <algorithm>
#include <bit>
#include <random>
#include <stdexcept>

#include "core/ratelimit/siphash.hpp"

namespace rlgate::ratelimit {

MemoryStore::MemoryStore(std::size_t max_keys, std::size_t shards, std::uint64_t seed)
    : per_shard_(std::max<std::size_t>(1, max_keys / std::max<std::size_t>(1, shards))), shards_(std::max<std::size_t>(1, shards)) {
    std::random_device rd;
    k0_ = seed ? seed : (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    k1_ = seed ? ~seed : (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    const std::size_t capacity = std::bit_ceil(per_shard_ * 2 + 1);
    for (auto& s : shards_)
        s.slots.resize(capacity);
}

// Backward-shift deletion keeps linear probing correct without tombstones.
void MemoryStore::erase(Shard& s, std::size_t pos) {
    const std::size_t mask = s.slots.size() - 1;
    std::size_t hole = pos;
    for (std::size_t next = (pos + 1) & mask; s.slots[next].tag != 0; next = (next + 1) & mask) {
        const std::size_t home = (s.slots[next].tag >> 8) & mask;
        // Move `next` into the hole if its home is not between the hole and it (cyclically).
        if (((next - home) & mask) >= ((next - hole) & mask)) {
            s.slots[hole] = std::move(s.slots[next]);
            hole = next;
        }
    }
    s.slots[hole] = Slot{};
    --s.count;
}

void MemoryStore::evict_one(Shard& s) {
    // Approximate LRU: the oldest of eight occupied slots near a moving cursor.
    const std::size_t mask = s.slots.size() - 1;
    std::size_t victim = s.slots.size();
    for (std::size_t seen = 0, i = s.cursor; seen < 8 && i < s.cursor + s.slots.size(); ++i) {
        const std::size_t p = i & mask;
        if (s.slots[p].tag == 0)
            continue;
        ++seen;
        if (victim == s.slots.size() || s.slots[p].last_used < s.slots[victim].last_used)
            victim = p;
    }
    s.cursor = (victim + 1) & mask;
    erase(s, victim);
    ++s.evictions;
}

Decision MemoryStore::decide(std::string_view key, std::span<const LimitSpec> specs, std::int64_t now_ns, std::uint64_t cost) {
    if (specs.size() > kMaxLimits)
        throw std::invalid_argument("at most " + std::to_string(kMaxLimits) + " limits per decision");
    const std::uint64_t tag = siphash13(key, k0_, k1_) | 1;
    auto& shard = shards_[(tag >> 48) % shards_.size()];
    std::lock_guard lock(shard.mu);
    const std::size_t mask = shard.slots.size() - 1;
    std::size_t pos = (tag >> 8) & mask;
    while (shard.slots[pos].tag != 0 && shard.slots[pos].tag != tag)
        pos = (pos + 1) & mask;
    if (shard.slots[pos].tag == 0) {
        if (shard.count >= per_shard_) {
            evict_one(shard);
            pos = (tag >> 8) & mask;  // the table moved under the probe: find the free slot again
            while (shard.slots[pos].tag != 0)
                pos = (pos + 1) & mask;
        }
        shard.slots[pos].tag = tag;
        ++shard.count;
    }
    Slot& slot = shard.slots[pos];
    slot.last_used = std::max(slot.last_used, now_ns);
    if (slot.limits != specs.size()) {  // new key, or the policy changed shape: start over
        slot.states = {};
        slot.limits = static_cast<std::uint32_t>(specs.size());
    }
    return ratelimit::decide(specs, std::span(slot.states.data(), specs.size()), now_ns, cost);
}

bool MemoryStore::contains(std::string_view key) const {
    const std::uint64_t tag = siphash13(key, k0_, k1_) | 1;
    const auto& shard = shards_[(tag >> 48) % shards_.size()];
    std::lock_guard lock(shard.mu);
    const std::size_t mask = shard.slots.size() - 1;
    for (std::size_t pos = (tag >> 8) & mask; shard.slots[pos].tag != 0; pos = (pos + 1) & mask)
        if (shard.slots[pos].tag == tag)
            return true;
    return false;
}

std::size_t MemoryStore::size() const {
    std::size_t n = 0;
    for (const auto& s : shards_) {
        std::lock_guard lock(s.mu);
        n += s.count;
    }
    return n;
}

std::uint64_t MemoryStore::evictions() const {
    std::uint64_t n = 0;
    for (const auto& s : shards_) {
        std::lock_guard lock(s.mu);
        n += s.evictions;
    }
    return n;
}

}  // namespace rlgate::ratelimit
