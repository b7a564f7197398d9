// SPDX-License-Identifier: BSD-2-Clause
// Tuning advice from what the limits did: tiers and rules whose limits drop
// a large share of their traffic (maybe too strict), those that carry
// traffic but never limited it (maybe too generous). Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rlgate::stats {

struct ClassUsage {
    std::string tier, rule;
    std::uint64_t passed = 0;
    std::uint64_t limited = 0;  // rate drops (or would-be drops in dry-run)
};

struct Insight {
    std::string kind;  // often_limited | never_limited
    std::string tier, rule;
    std::uint64_t passed = 0, limited = 0;
    double limited_share = 0;
    std::string advice;
};

// `strict_share`: the share of limited packets above which a limit is
// reported as often hit; classes with fewer than `min_packets` are ignored.
std::vector<Insight> tuning_insights(const std::vector<ClassUsage>& usage, double strict_share = 0.10,
                                     std::uint64_t min_packets = 100);

}  // namespace rlgate::stats
