// SPDX-License-Identifier: BSD-2-Clause
#include "core/stats/top_talkers.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace rlgate::stats {

net::Cidr source_of(const rl_bucket_key& key) {
    net::Cidr c;
    if (key.rule & RL_BUCKET_KEY_V4) {
        c.address = net::IpAddress::from_v4_bytes({key.addr[0], key.addr[1], key.addr[2], key.addr[3]});
        c.prefix = key.prefixlen >= 96 ? key.prefixlen - 96U : 0U;
    } else {
        std::memcpy(c.address.bytes.data(), key.addr, sizeof key.addr);
        c.address.v4 = false;
        c.prefix = key.prefixlen;
    }
    return c;
}

std::vector<Talker> top_talkers(std::span<const BucketSample> before, std::span<const BucketSample> after,
                                double seconds, std::size_t n) {
    // Up to a million entries: hash the 16-byte key as two words.
    struct KeyHash {
        std::size_t operator()(const rl_bucket_key& k) const {
            std::uint64_t w[2];
            std::memcpy(w, &k, sizeof w);
            return std::hash<std::uint64_t>{}(w[0] * 0x9e3779b97f4a7c15ULL ^ w[1]);
        }
    };
    struct KeyEq {
        bool operator()(const rl_bucket_key& a, const rl_bucket_key& b) const {
            return std::memcmp(&a, &b, sizeof a) == 0;
        }
    };
    std::unordered_map<rl_bucket_key, const BucketSample*, KeyHash, KeyEq> old;
    old.reserve(before.size());
    for (const auto& s : before)
        old.emplace(s.key, &s);
    if (seconds <= 0)
        seconds = 1;
    std::vector<Talker> out;
    for (const auto& s : after) {
        std::uint32_t passed = s.passed, dropped = s.dropped;
        if (auto it = old.find(s.key); it != old.end()) {
            passed -= it->second->passed;  // unsigned: wraps correctly
            dropped -= it->second->dropped;
        }
        if (passed == 0 && dropped == 0)
            continue;
        Talker t;
        t.source = source_of(s.key);
        t.rule = static_cast<std::uint8_t>(s.key.rule & (RL_MAX_RULES - 1));
        t.tier = s.tier;
        t.state = s.state;
        t.passed_pps = passed / seconds;
        t.dropped_pps = dropped / seconds;
        out.push_back(t);
    }
    const auto heavier = [](const Talker& a, const Talker& b) {
        const double ta = a.passed_pps + a.dropped_pps, tb = b.passed_pps + b.dropped_pps;
        return ta != tb ? ta > tb : a.source < b.source;
    };
    const auto keep = std::min(n, out.size());
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(keep), out.end(), heavier);
    out.resize(keep);
    return out;
}

}  // namespace rlgate::stats
