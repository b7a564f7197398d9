// SPDX-License-Identifier: BSD-2-Clause
// Limits changed while the daemon runs, without touching the config's
// policy: operator overrides (a factor or a rate for a tier or rule, until a
// time), scheduled overrides from the config (a promotion from start to
// end), emergency mode (a prepared factor per tier, at once), and the
// adaptive controller's factor per tier under load (core/policy/controller).
// scaled() turns the config's policy plus all of them into the policy the
// maps get. Pure: times are passed in (Unix ms).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/policy/policy.hpp"

namespace rlgate::policy {

struct Override {
    enum class Target { tier, rule };
    Target target = Target::tier;
    std::string name;
    std::optional<double> factor;          // multiplies packets and bytes per second (and bursts)
    std::optional<std::uint64_t> pps;      // or: this many packets per second (burst scaled alike)
    std::int64_t start_ms = 0;             // in force from (scheduled ones), 0: now
    std::int64_t until_ms = 0;             // in force until; 0: until cleared
    std::string reason;
    std::string origin;                    // "rlctl" or "schedule"
    bool operator==(const Override&) const = default;
};

struct Scaling {
    std::vector<Override> overrides;           // rlctl's and the schedule's
    std::map<std::string, double> adaptive;    // tier -> controller factor (absent: 1)
    bool emergency = false;
    std::map<std::string, double> emergency_factors;  // tier -> factor while in emergency
};

// Overrides in force at `now_ms`: started and not expired. When several name the same
// target, the last one set wins.
std::vector<Override> active_overrides(const std::vector<Override>& all, std::int64_t now_ms);

// The factor of a tier from the controller and emergency mode (the smaller wins).
double automatic_factor(const Scaling& s, const std::string& tier);

// `base` with every limit scaled: a tier's limit (and each rule's limit for that tier)
// by its automatic factor, then the overrides in force, which replace the automatic
// factor for their target (an operator's choice wins over the controller). Rates never
// drop below 1 packet (or byte) per second, bursts below 1; unlimited stays unlimited.
// Throws PolicyError for an override naming no tier or rule.
Policy scaled(const Policy& base, const Scaling& s, std::int64_t now_ms);

// A rate scaled by `factor` (> 0), bounded as above.
RateLimit scale(const RateLimit& r, double factor);

}  // namespace rlgate::policy
