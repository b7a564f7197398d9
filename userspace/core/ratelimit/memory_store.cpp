// SPDX-License-Identifier: BSD-2-Clause
#include "core/ratelimit/memory_store.hpp"

#include <algorithm>
#include <bit>
#include <memory>
#include <new>

#include <sys/mman.h>
#include <random>
#include <stdexcept>

#include "core/ratelimit/siphash.hpp"

namespace rlgate::ratelimit {
namespace {
constexpr std::size_t kHugePage = 2 * 1024 * 1024;
constexpr std::size_t kBatchWindow = 16;
}  // namespace

MemoryStore::MemoryStore(std::size_t max_keys, std::size_t shards, std::uint64_t seed)
    : per_shard_(std::max<std::size_t>(1, max_keys / std::max<std::size_t>(1, shards))), shards_(std::max<std::size_t>(1, shards)) {
    std::random_device rd;
    k0_ = seed ? seed : (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    k1_ = seed ? ~seed : (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    const std::size_t capacity = std::bit_ceil(per_shard_ * 2 + 1);
    const std::size_t count = capacity * shards_.size();
    const std::size_t bytes = (count * sizeof(Slot) + kHugePage - 1) / kHugePage * kHugePage;
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        throw std::bad_alloc();
    ::madvise(mem, bytes, MADV_HUGEPAGE);  // a hint: fine if refused
    Slot* slots = static_cast<Slot*>(mem);
    std::uninitialized_default_construct_n(slots, count);
    arena_ = std::unique_ptr<Slot[], ArenaDeleter>(slots, ArenaDeleter{bytes, count});
    for (std::size_t i = 0; i < shards_.size(); ++i)
        shards_[i].slots = std::span<Slot>(slots + i * capacity, capacity);
}

void MemoryStore::ArenaDeleter::operator()(Slot* p) const {
    std::destroy_n(p, count);
    ::munmap(p, bytes);
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

MemoryStore::Slot& MemoryStore::slot_for(Shard& shard, std::uint64_t tag, std::size_t limits, std::int64_t now_ns) {
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
    if (slot.limits != limits) {  // new key, or the policy changed shape: start over
        slot.states = {};
        slot.limits = static_cast<std::uint32_t>(limits);
    }
    return slot;
}

MemoryStore::Slot* MemoryStore::find(Shard& shard, std::uint64_t tag) {
    const std::size_t mask = shard.slots.size() - 1;
    for (std::size_t pos = (tag >> 8) & mask; shard.slots[pos].tag != 0; pos = (pos + 1) & mask)
        if (shard.slots[pos].tag == tag)
            return &shard.slots[pos];
    return nullptr;
}

Decision MemoryStore::decide(std::string_view key, std::span<const LimitSpec> specs, std::int64_t now_ns, std::uint64_t cost) {
    if (specs.size() > kMaxLimits)
        throw std::invalid_argument("at most " + std::to_string(kMaxLimits) + " limits per decision");
    const std::uint64_t tag = siphash13(key, k0_, k1_) | 1;
    auto& shard = shards_[(tag >> 48) % shards_.size()];
    std::lock_guard lock(shard.mu);
    Slot& slot = slot_for(shard, tag, specs.size(), now_ns);
    return ratelimit::decide(specs, std::span(slot.states.data(), specs.size()), now_ns, cost);
}

Decision MemoryStore::decide_keys(std::span<const KeyedLimits> keys, std::int64_t now_ns, std::uint64_t cost) {
    if (keys.size() > kMaxKeys)
        throw std::invalid_argument("at most " + std::to_string(kMaxKeys) + " keys per decision");
    if (keys.size() == 1)
        return decide(keys[0].key, keys[0].specs, now_ns, cost);
    std::array<std::uint64_t, kMaxKeys> tags{};
    std::array<std::size_t, kMaxKeys> shard_of{}, order{};
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (keys[i].specs.size() > kMaxLimits)
            throw std::invalid_argument("at most " + std::to_string(kMaxLimits) + " limits per decision");
        tags[i] = siphash13(keys[i].key, k0_, k1_) | 1;
        shard_of[i] = (tags[i] >> 48) % shards_.size();
        order[i] = i;
    }
    // Locks in shard order (each shard once), so two requests never deadlock.
    std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keys.size()),
              [&](std::size_t a, std::size_t b) { return shard_of[a] < shard_of[b]; });
    std::array<std::unique_lock<std::mutex>, kMaxKeys> locks;
    for (std::size_t j = 0, n = 0; j < keys.size(); ++j)
        if (j == 0 || shard_of[order[j]] != shard_of[order[j - 1]])
            locks[n++] = std::unique_lock(shards_[shard_of[order[j]]].mu);

    // Insert every key first, then look the slots up: an insertion may move
    // (or, with a tiny shard, evict) a slot found before it. An evicted one
    // is judged from a fresh state for this request.
    for (std::size_t i = 0; i < keys.size(); ++i)
        slot_for(shards_[shard_of[i]], tags[i], keys[i].specs.size(), now_ns);
    std::array<LimitState*, kMaxKeys> states{};
    std::array<std::array<LimitState, kMaxLimits>, kMaxKeys> fresh{};
    for (std::size_t i = 0; i < keys.size(); ++i) {
        Slot* slot = find(shards_[shard_of[i]], tags[i]);
        states[i] = slot && slot->limits == keys[i].specs.size() ? slot->states.data() : fresh[i].data();
    }

    Decision d;
    d.allowed = true;
    bool first = true;
    for (std::size_t i = 0; i < keys.size(); ++i)
        for (std::size_t j = 0; j < keys[i].specs.size(); ++j) {
            const auto v = check(keys[i].specs[j], states[i][j], now_ns, cost, false);
            if (first || is_tighter(v, d.tightest)) {
                d.tightest = v;
                d.tightest_group = i;
                d.tightest_index = j;
            }
            first = false;
            d.allowed = d.allowed && v.allowed;
        }
    if (d.allowed)
        for (std::size_t i = 0; i < keys.size(); ++i)
            for (std::size_t j = 0; j < keys[i].specs.size(); ++j)
                check(keys[i].specs[j], states[i][j], now_ns, cost, true);
    return d;
}

void MemoryStore::decide_batch(std::span<const std::string_view> keys, std::span<const LimitSpec> specs, std::int64_t now_ns,
                               std::uint64_t cost, std::span<Decision> out) {
    if (specs.size() > kMaxLimits)
        throw std::invalid_argument("at most " + std::to_string(kMaxLimits) + " limits per decision");
    if (out.size() < keys.size())
        throw std::invalid_argument("decide_batch: fewer results than keys");
    std::array<std::uint64_t, kBatchWindow> tags{};
    for (std::size_t base = 0; base < keys.size(); base += kBatchWindow) {
        const std::size_t n = std::min(kBatchWindow, keys.size() - base);
        for (std::size_t i = 0; i < n; ++i) {
            tags[i] = siphash13(keys[base + i], k0_, k1_) | 1;
            const auto& shard = shards_[(tags[i] >> 48) % shards_.size()];
            __builtin_prefetch(&shard.slots[(tags[i] >> 8) & (shard.slots.size() - 1)], 1);
        }
        for (std::size_t i = 0; i < n; ++i) {
            auto& shard = shards_[(tags[i] >> 48) % shards_.size()];
            std::lock_guard lock(shard.mu);
            Slot& slot = slot_for(shard, tags[i], specs.size(), now_ns);
            out[base + i] = ratelimit::decide(specs, std::span(slot.states.data(), specs.size()), now_ns, cost);
        }
    }
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
