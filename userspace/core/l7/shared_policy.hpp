// SPDX-License-Identifier: BSD-2-Clause
// What rlgate-l7 takes from rlgated so both layers follow one policy: the
// allowlist (never limited at L7 either) and which prefixes belong to which
// tier (an anonymous caller from such a prefix gets the L7 tier of that name).
// Parsed from the result of the escalation socket's `policy` command. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/l7/l7_config.hpp"
#include "core/net/ip_address.hpp"

namespace rlgate::l7 {

struct SharedPolicy {
    std::uint64_t generation = 0;
    std::vector<net::Cidr> allow;
    std::vector<std::pair<net::Cidr, std::string>> members;  // prefix -> tier
    std::map<std::string, double> factors;  // tier -> its limits now over the configured ones (absent: 1)

    [[nodiscard]] bool allows(const net::IpAddress& a) const;
    // The tier of the longest member prefix holding `a`, or nullptr.
    [[nodiscard]] const std::string* tier_of(const net::IpAddress& a) const;
};

// nullopt with `error` on a malformed result.
std::optional<SharedPolicy> parse_shared_policy(const nlohmann::json& result, std::string* error);

// `base` with the limits of each tier named in `factors` scaled by its factor
// (limits and bursts, never below 1): rlgate-l7 following rlgated's scaling.
L7Config scale_tiers(const L7Config& base, const std::map<std::string, double>& factors);

}  // namespace rlgate::l7
