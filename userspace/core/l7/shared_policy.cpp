// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/shared_policy.hpp"

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
    return p;
}

}  // namespace rlgate::l7
