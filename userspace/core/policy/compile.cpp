// SPDX-License-Identifier: BSD-2-Clause
#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "core/policy/policy.hpp"

namespace rlgate::policy {
namespace {

constexpr std::uint64_t kMaxPps = 1'000'000'000ULL;          // 1 Gpps per bucket
constexpr std::uint64_t kMaxBytesPerSec = 1'000'000'000'000ULL;  // 8 Tbit/s
constexpr double kMaxTolerance = static_cast<double>(1ULL << 60);
constexpr double kQ = static_cast<double>(1U << RL_Q_SHIFT);
constexpr double kByteQ = static_cast<double>(1U << RL_BYTE_Q_SHIFT);

std::uint64_t clamp_tolerance(double v) {
    return static_cast<std::uint64_t>(std::min(v, kMaxTolerance));
}

// Merge allow, deny and tier prefixes into one longest-prefix table whose
// lookup gives the answer of "allow, then deny, then most specific tier".
// For any address, the prefixes containing it form a chain, so the value of
// the longest one, computed over everything that contains it, is the answer.
std::vector<ClassEntry> merge_classes(const Policy& p, const std::map<std::string, std::uint8_t>& tier_ids) {
    using Key = std::pair<net::IpAddress, unsigned>;  // masked address, prefix128
    std::set<Key> allow, deny;
    std::map<Key, std::uint8_t> tiers;
    auto key_of = [](const net::Cidr& c) { return Key{c.address, c.prefix128()}; };
    for (const auto& c : p.allow)
        allow.insert(key_of(c));
    for (const auto& c : p.deny)
        deny.insert(key_of(c));
    for (const auto& m : p.members)
        tiers[key_of(m.prefix)] = tier_ids.at(m.tier);

    std::map<Key, net::Cidr> all;
    for (const auto* list : {&p.allow, &p.deny})
        for (const auto& c : *list)
            all.emplace(key_of(c), c);
    for (const auto& m : p.members)
        all.emplace(key_of(m.prefix), m.prefix);

    std::vector<ClassEntry> out;
    out.reserve(all.size());
    for (const auto& [key, cidr] : all) {
        bool allowed = false, denied = false;
        std::optional<std::uint8_t> tier;
        const unsigned first = cidr.address.v4 ? 96U : 0U;
        for (unsigned len = key.second + 1; len-- > first;) {  // longest first
            net::IpAddress masked = net::mask_address(cidr.address, len);
            masked.v4 = cidr.address.v4;
            const Key k{masked, len};
            allowed = allowed || allow.contains(k);
            denied = denied || deny.contains(k);
            if (!tier)
                if (auto it = tiers.find(k); it != tiers.end())
                    tier = it->second;
        }
        ClassEntry e;
        e.prefix = cidr;
        if (allowed) {
            e.value.klass = RL_CLASS_ALLOW;
        } else if (denied) {
            e.value.klass = RL_CLASS_DENY;
        } else {
            e.value.klass = RL_CLASS_TIER;
            e.value.tier = tier.value_or(tier_ids.at(p.default_tier));
        }
        out.push_back(e);
    }
    return out;
}

void fill_rule(std::vector<std::uint8_t>& index, const Rule& r, std::uint8_t id) {
    auto fill = [&](unsigned l4class, unsigned first, unsigned last) {
        for (unsigned port = first; port <= last; ++port)
            index[l4class * RL_PORTS + port] = id;
    };
    switch (r.protocol) {
    case RuleProtocol::tcp:
        fill(RL_L4_TCP_SYN, r.port_first, r.port_last);
        if (!r.syn_only)
            fill(RL_L4_TCP, r.port_first, r.port_last);
        break;
    case RuleProtocol::udp: fill(RL_L4_UDP, r.port_first, r.port_last); break;
    case RuleProtocol::other: fill(RL_L4_OTHER, 0, 0); break;
    }
}

}  // namespace

rl_limit to_gcra_limit(const RateLimit& l, const std::string& field) {
    rl_limit out{};
    if (l.packets_per_sec) {
        if (l.packets_per_sec > kMaxPps)
            throw PolicyError(field + ".pps", "above the maximum of 1e9 packets/s");
        if (l.burst_packets == 0)
            throw PolicyError(field + ".burst", "must be at least 1 packet when pps is set");
        const double interval = std::round(1e9 * kQ / static_cast<double>(l.packets_per_sec));
        out.pkt_interval_q = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(interval));
        out.pkt_tolerance_q =
            clamp_tolerance(static_cast<double>(l.burst_packets) * static_cast<double>(out.pkt_interval_q));
    } else if (l.burst_packets) {
        throw PolicyError(field + ".burst", "set without a pps rate");
    }
    if (l.bytes_per_sec) {
        if (l.bytes_per_sec > kMaxBytesPerSec)
            throw PolicyError(field + ".bytes_per_sec", "above the maximum of 1e12 bytes/s");
        if (l.burst_bytes < 1514)
            throw PolicyError(field + ".burst_bytes",
                              "must hold at least one full-size frame (1514 bytes) when bytes_per_sec is set");
        const double interval = std::round(1e9 * kByteQ / static_cast<double>(l.bytes_per_sec));
        out.byte_interval_q = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(interval));
        out.byte_tolerance_q = clamp_tolerance(static_cast<double>(l.burst_bytes) *
                                               static_cast<double>(out.byte_interval_q) / (kByteQ / kQ));
    } else if (l.burst_bytes) {
        throw PolicyError(field + ".burst_bytes", "set without a bytes_per_sec rate");
    }
    return out;
}

CompiledPolicy compile(const Policy& p) {
    CompiledPolicy out;
    auto& h = out.header;

    if (p.tiers.empty())
        throw PolicyError("tiers", "at least one tier is required");
    if (p.tiers.size() > RL_MAX_TIERS)
        throw PolicyError("tiers", "at most " + std::to_string(RL_MAX_TIERS) + " tiers");
    std::map<std::string, std::uint8_t> tier_ids;
    unsigned v6_class_prefix = 64;
    for (std::size_t i = 0; i < p.tiers.size(); ++i) {
        const auto& t = p.tiers[i];
        const std::string field = "tiers." + (t.name.empty() ? std::to_string(i) : t.name);
        if (t.name.empty())
            throw PolicyError(field + ".name", "must not be empty");
        if (!tier_ids.emplace(t.name, static_cast<std::uint8_t>(i)).second)
            throw PolicyError(field + ".name", "duplicate tier name");
        if (t.prefix_v4 < 1 || t.prefix_v4 > 32)
            throw PolicyError(field + ".prefix_v4", "must be 1..32");
        if (t.prefix_v6 < 1 || t.prefix_v6 > RL_MAX_V6_PREFIX)
            throw PolicyError(field + ".prefix_v6", "must be 1..112 (an IPv6 source owns at least a /64)");
        if (t.autoban.drops && (t.autoban.window_ns == 0 || t.autoban.ban_ns == 0))
            throw PolicyError(field + ".autoban", "window and ban length must be positive");
        auto& tp = h.tiers[i];
        tp.prefix_v4 = static_cast<std::uint8_t>(t.prefix_v4);
        tp.prefix_v6 = static_cast<std::uint8_t>(t.prefix_v6);
        if (!(t.global_share > 0) || t.global_share > 1)
            throw PolicyError("tiers." + t.name + ".global_share", "a share above 0 and at most 1");
        tp.global_share = t.global_share >= 1 ? 0
                                              : static_cast<std::uint8_t>(std::clamp(std::lround(t.global_share * 256), 1L, 255L));
        tp.autoban_drops = t.autoban.drops;
        tp.autoban_window_ns = t.autoban.window_ns;
        tp.autoban_ban_ns = t.autoban.ban_ns;
        v6_class_prefix = std::max(v6_class_prefix, t.prefix_v6);
        out.tier_names.push_back(t.name);
    }
    const std::string default_tier = p.default_tier.empty() ? p.tiers.front().name : p.default_tier;
    auto def = tier_ids.find(default_tier);
    if (def == tier_ids.end())
        throw PolicyError("default_tier", "no tier named '" + default_tier + "'");
    h.default_tier = def->second;

    if (p.rules.size() > RL_MAX_RULES - 1)
        throw PolicyError("rules", "at most " + std::to_string(RL_MAX_RULES - 1) + " rules");
    out.rule_names.push_back("none");
    for (std::size_t i = 0; i < p.rules.size(); ++i) {
        const auto& r = p.rules[i];
        const std::string field = "rules." + (r.name.empty() ? std::to_string(i) : r.name);
        if (r.name.empty())
            throw PolicyError(field + ".name", "must not be empty");
        if (std::find(out.rule_names.begin(), out.rule_names.end(), r.name) != out.rule_names.end())
            throw PolicyError(field + ".name", "duplicate rule name");
        if (r.port_first > r.port_last)
            throw PolicyError(field + ".ports", "first port above last port");
        if (r.syn_only && r.protocol != RuleProtocol::tcp)
            throw PolicyError(field + ".syn_only", "only applies to tcp rules");
        for (const auto& [tier, _] : r.tier_limits)
            if (!tier_ids.contains(tier))
                throw PolicyError(field + ".tier_limits." + tier, "no such tier");
        out.rule_names.push_back(r.name);
    }

    for (std::size_t t = 0; t < p.tiers.size(); ++t) {
        const auto& tier = p.tiers[t];
        h.limits[t][0] = to_gcra_limit(tier.limit, "tiers." + tier.name);
        for (std::size_t r = 0; r < p.rules.size(); ++r) {
            const auto& rule = p.rules[r];
            auto it = rule.tier_limits.find(tier.name);
            h.limits[t][r + 1] = it != rule.tier_limits.end()
                                     ? to_gcra_limit(it->second, "rules." + rule.name + ".tier_limits." + tier.name)
                                     : to_gcra_limit(rule.limit, "rules." + rule.name);
        }
    }
    h.global = to_gcra_limit(p.global, "global");

    out.rule_index.assign(static_cast<std::size_t>(RL_L4_CLASSES) * RL_PORTS, 0);
    for (std::size_t i = p.rules.size(); i-- > 0;)  // earlier rules overwrite later ones
        fill_rule(out.rule_index, p.rules[i], static_cast<std::uint8_t>(i + 1));

    auto check_v6_length = [](const net::Cidr& c, const std::string& field) {
        if (!c.address.v4 && c.prefix > RL_MAX_V6_PREFIX)
            throw PolicyError(field + "." + c.to_string(),
                              "IPv6 prefixes longer than /112 are not supported (an IPv6 source owns at least a /64)");
    };
    for (const auto& c : p.allow)
        check_v6_length(c, "allow");
    for (const auto& c : p.deny)
        check_v6_length(c, "deny");
    for (const auto& m : p.members)
        check_v6_length(m.prefix, "members");
    for (std::size_t i = 0; i < p.members.size(); ++i)
        if (!tier_ids.contains(p.members[i].tier))
            throw PolicyError("members." + p.members[i].prefix.to_string(),
                              "no tier named '" + p.members[i].tier + "'");
    out.class_entries = merge_classes(p, tier_ids);
    for (const auto& e : out.class_entries)
        if (!e.prefix.address.v4)
            v6_class_prefix = std::max(v6_class_prefix, e.prefix.prefix);
    h.v6_class_prefix = static_cast<std::uint8_t>(v6_class_prefix);

    h.flags = (p.dry_run ? static_cast<unsigned>(RL_POLICY_DRY_RUN) : 0U) |
              (p.drop_malformed ? static_cast<unsigned>(RL_POLICY_DROP_MALFORMED) : 0U);
    return out;
}

Policy pass_through_policy() {
    Policy p;
    p.tiers.push_back(Tier{.name = "default", .limit = {}, .prefix_v4 = 32, .prefix_v6 = 64, .autoban = {}});
    p.default_tier = "default";
    return p;
}

}  // namespace rlgate::policy
