// SPDX-License-Identifier: BSD-2-Clause
#include "core/policy/scaling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rlgate::policy {

namespace {

std::uint64_t scale_value(std::uint64_t v, double factor) {
    if (v == 0)
        return 0;  // unlimited stays unlimited
    const double x = std::round(static_cast<double>(v) * factor);
    if (x >= 1.8e19)
        return std::numeric_limits<std::uint64_t>::max() / 2;
    return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(x));
}

const Override* find_override(const std::vector<Override>& active, Override::Target target, const std::string& name) {
    const Override* found = nullptr;
    for (const auto& o : active)
        if (o.target == target && o.name == name)
            found = &o;  // the last one set wins
    return found;
}

RateLimit apply(const RateLimit& r, const Override& o) {
    if (o.factor)
        return scale(r, *o.factor);
    if (o.pps) {
        if (r.packets_per_sec == 0)  // unlimited in packets (byte-only, or unlimited): a factor says what to do
            throw PolicyError(o.name, "has no packet rate to set: use a factor");
        return scale(r, static_cast<double>(*o.pps) / static_cast<double>(r.packets_per_sec));
    }
    return r;
}

}  // namespace

RateLimit scale(const RateLimit& r, double factor) {
    if (!(factor > 0) || !std::isfinite(factor))
        factor = 1;
    return RateLimit{.packets_per_sec = scale_value(r.packets_per_sec, factor),
                     .burst_packets = scale_value(r.burst_packets, factor),
                     .bytes_per_sec = scale_value(r.bytes_per_sec, factor),
                     .burst_bytes = scale_value(r.burst_bytes, factor)};
}

std::vector<Override> active_overrides(const std::vector<Override>& all, std::int64_t now_ms) {
    std::vector<Override> out;
    for (const auto& o : all)
        if (o.start_ms <= now_ms && (o.until_ms == 0 || now_ms < o.until_ms))
            out.push_back(o);
    return out;
}

double automatic_factor(const Scaling& s, const std::string& tier) {
    double f = 1.0;
    if (const auto it = s.adaptive.find(tier); it != s.adaptive.end())
        f = std::min(f, it->second);
    if (s.emergency)
        if (const auto it = s.emergency_factors.find(tier); it != s.emergency_factors.end())
            f = std::min(f, it->second);
    return f;
}

Policy scaled(const Policy& base, const Scaling& s, std::int64_t now_ms) {
    const auto active = active_overrides(s.overrides, now_ms);
    for (const auto& o : active) {
        const bool known = o.target == Override::Target::tier
                               ? std::any_of(base.tiers.begin(), base.tiers.end(), [&](const Tier& t) { return t.name == o.name; })
                               : std::any_of(base.rules.begin(), base.rules.end(), [&](const Rule& r) { return r.name == o.name; });
        if (!known)
            throw PolicyError(o.name, std::string("no ") + (o.target == Override::Target::tier ? "tier" : "rule") +
                                          " of that name in the policy");
    }
    Policy out = base;
    for (auto& t : out.tiers) {
        if (const auto* o = find_override(active, Override::Target::tier, t.name))
            t.limit = apply(t.limit, *o);
        else
            t.limit = scale(t.limit, automatic_factor(s, t.name));
    }
    for (auto& r : out.rules) {
        const auto* rule_override = find_override(active, Override::Target::rule, r.name);
        if (rule_override) {
            r.limit = apply(r.limit, *rule_override);
            for (auto& [tier, limit] : r.tier_limits)
                limit = apply(limit, *rule_override);
            continue;
        }
        // A rule's limits follow the tier they apply to; its default limit follows each tier
        // through tier_limits, so the tiers scaled differently each get their own entry.
        for (const auto& t : base.tiers) {
            const auto* tier_override = find_override(active, Override::Target::tier, t.name);
            // A tier's --pps is a factor of its own rate; its rules move by the same factor.
            const double f = !tier_override         ? automatic_factor(s, t.name)
                             : tier_override->factor ? *tier_override->factor
                                                     : static_cast<double>(*tier_override->pps) /
                                                           static_cast<double>(t.limit.packets_per_sec);
            if (f == 1.0)
                continue;
            const auto it = r.tier_limits.find(t.name);
            const RateLimit& from = it != r.tier_limits.end() ? it->second : r.limit;
            if (from.unlimited())
                continue;
            r.tier_limits[t.name] = scale(from, f);
        }
    }
    return out;
}

}  // namespace rlgate::policy
