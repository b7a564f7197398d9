// SPDX-License-Identifier: BSD-2-Clause
#include "core/stats/insights.hpp"

#include <algorithm>
#include <cstdio>

namespace rlgate::stats {

std::vector<Insight> tuning_insights(const std::vector<ClassUsage>& usage, double strict_share, std::uint64_t min_packets) {
    std::vector<Insight> out;
    for (const auto& u : usage) {
        const auto total = u.passed + u.limited;
        if (total < min_packets)
            continue;
        Insight i{.kind = {}, .tier = u.tier, .rule = u.rule, .passed = u.passed, .limited = u.limited,
                  .limited_share = static_cast<double>(u.limited) / static_cast<double>(total), .advice = {}};
        char pct[32];
        std::snprintf(pct, sizeof pct, "%.1f%%", 100 * i.limited_share);
        if (i.limited_share >= strict_share) {
            i.kind = "often_limited";
            i.advice = std::string(pct) + " of this traffic is limited: if the top sources (rlctl top, rlctl ban history) "
                                          "are legitimate, raise the limit or move them to another tier";
        } else if (u.limited == 0) {
            i.kind = "never_limited";
            i.advice = "carries traffic but never hit its limit: it may be too generous to stop a flood";
        } else {
            continue;
        }
        out.push_back(std::move(i));
    }
    std::sort(out.begin(), out.end(), [](const Insight& a, const Insight& b) {
        return a.kind != b.kind ? a.kind < b.kind : a.limited_share > b.limited_share;
    });
    return out;
}

}  // namespace rlgate::stats
