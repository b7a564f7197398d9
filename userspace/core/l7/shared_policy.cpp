// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/shared_policy.hpp"

#include <algorithm>
#include <cmath>

#include <algorithm>

namespace rlgate::l7 {

bool SharedPolicy::allows(const net::IpAddress& a) const {
    return std::any_of(allow.begin(), allow.end(), [&](const net::Cidr& c) { return c.contains(a); });
}

const std::string* SharedPolicy::tier_of(const net::IpAddress& a) const {
    const std::pair<net::Cidr, std::string>* best = nullptr;
    for (const auto& m : members)
        if (m.first.contains(a) && (!best || m.first.prefix128() > best->first.prefix128()))
            best = &m;
    return best ? &best->second : nullptr;
}

std::optional<SharedPolicy> parse_shared_policy(const nlohmann::json& result, std::string* error) {
    auto bad = [&](const std::string& why) -> std::optional<SharedPolicy> {
        if (error)
            *error = why;
        return std::nullopt;
    };
    if (!result.is_object() || !result.contains("allow") || !result["allow"].is_array() || !result.contains("members") ||
        !result["members"].is_array())
        return bad("expected {generation, allow[], members[]}");
    SharedPolicy p;
    p.generation = result.value("generation", std::uint64_t{0});
    for (const auto& a : result["allow"]) {
        if (!a.is_string())
            return bad("allow: expected CIDR strings");
        auto c = net::Cidr::parse(a.get<std::string>());
        if (!c)
            return bad("allow: bad CIDR " + a.dump());
        p.allow.push_back(*c);
    }
    for (const auto& m : result["members"]) {
        if (!m.is_object() || !m.contains("cidr") || !m["cidr"].is_string() || !m.contains("tier") || !m["tier"].is_string())
            return bad("members: expected {cidr, tier}");
        auto c = net::Cidr::parse(m["cidr"].get<std::string>());
        if (!c)
            return bad("members: bad CIDR " + m["cidr"].dump());
        p.members.emplace_back(*c, m["tier"].get<std::string>());
    }
    if (result.contains("factors")) {
        const auto& f = result["factors"];
        if (!f.is_object())
            return bad("factors: expected {tier: factor}");
        for (const auto& [tier, v] : f.items()) {
            if (!v.is_number() || !(v.get<double>() > 0) || v.get<double>() > 1000)
                return bad("factors: " + tier + " is not a factor in (0, 1000]");
            p.factors[tier] = v.get<double>();
        }
    }
    return p;
}

L7Config scale_tiers(const L7Config& base, const std::map<std::string, double>& factors) {
    L7Config out = base;
    const auto scale = [](std::vector<ratelimit::LimitSpec>& specs, double f) {
        for (auto& s : specs) {
            s.limit = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(static_cast<double>(s.limit) * f)));
            if (s.burst)
                s.burst = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(static_cast<double>(s.burst) * f)));
        }
    };
    for (const auto& [name, f] : factors) {
        const auto it = out.tiers.find(name);
        if (it == out.tiers.end() || f == 1.0)
            continue;
        scale(it->second.limits, f);
        for (auto& [endpoint, specs] : it->second.endpoint_limits)
            scale(specs, f);
    }
    return out;
}

}  // namespace rlgate::l7
