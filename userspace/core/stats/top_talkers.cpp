// SPDX-License-Identifier: BSD-2-Clause
#include "core/stats/top_talkers.hpp"

#include <algorithm>
#include <cstring>
#include <map>

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
    auto as_bytes = [](const rl_bucket_key& k) {
        std::array<std::uint8_t, sizeof(rl_bucket_key)> b{};
        std::memcpy(b.data(), &k, sizeof k);
        return b;
    };
    std::map<std::array<std::uint8_t, sizeof(rl_bucket_key)>, const BucketSample*> old;
    for (const auto& s : before)
        old.emplace(as_bytes(s.key), &s);
    if (seconds <= 0)
        seconds = 1;
    std::vector<Talker> out;
    for (const auto& s : after) {
        std::uint32_t passed = s.passed, dropped = s.dropped;
        if (auto it = old.find(as_bytes(s.key)); it != old.end()) {
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
    std::sort(out.begin(), out.end(), [](const Talker& a, const Talker& b) {
        const double ta = a.passed_pps + a.dropped_pps, tb = b.passed_pps + b.dropped_pps;
        return ta != tb ? ta > tb : a.source < b.source;
    });
    if (out.size() > n)
        out.resize(n);
    return out;
}

}  // namespace rlgate::stats
