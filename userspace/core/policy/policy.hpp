// SPDX-License-Identifier: BSD-2-Clause
// Typed policy model of the XDP dataplane (what the config file describes)
// and its compiled form (what gets written into the maps). Pure logic.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/net/ip_address.hpp"
#include "rlgate/abi.h"

namespace rlgate::policy {

struct RateLimit {
    std::uint64_t packets_per_sec = 0;  // 0 = no packet limit
    std::uint64_t burst_packets = 0;    // required when packets_per_sec > 0
    std::uint64_t bytes_per_sec = 0;    // 0 = no byte limit
    std::uint64_t burst_bytes = 0;      // required when bytes_per_sec > 0

    [[nodiscard]] bool unlimited() const { return packets_per_sec == 0 && bytes_per_sec == 0; }
};

struct AutoBan {
    std::uint32_t drops = 0;  // rate drops within `window_ns` that ban the source; 0 = off
    std::uint64_t window_ns = 10'000'000'000ULL;
    std::uint64_t ban_ns = 60'000'000'000ULL;
    // Escalation, applied by the daemon: each earlier offence of the source
    // within `memory_ns` multiplies the ban by `repeat_factor`, up to `max_ban_ns`.
    std::uint32_t repeat_factor = 10;
    std::uint64_t max_ban_ns = 86'400'000'000'000ULL;
    std::uint64_t memory_ns = 86'400'000'000'000ULL;
};

struct Tier {
    std::string name;
    RateLimit limit;
    unsigned prefix_v4 = 32;  // sources sharing this prefix share a bucket
    unsigned prefix_v6 = 64;  // at most /112
    AutoBan autoban;
    double global_share = 1.0;  // of the global limit's burst this tier may use (priority shedding), (0, 1]
};

enum class RuleProtocol { tcp, udp, other };

struct Rule {
    std::string name;
    RuleProtocol protocol = RuleProtocol::tcp;
    std::uint16_t port_first = 0;  // destination port range (ignored for `other`)
    std::uint16_t port_last = 65535;
    bool syn_only = false;  // TCP: only connection attempts (SYN without ACK)
    RateLimit limit;        // per source, for every tier without an override
    std::map<std::string, RateLimit> tier_limits;  // tier name -> override
};

struct TierMember {
    net::Cidr prefix;
    std::string tier;
    bool operator==(const TierMember&) const = default;
};

struct Policy {
    std::vector<Tier> tiers;  // at most RL_MAX_TIERS; tier id = index
    std::string default_tier;
    std::vector<TierMember> members;
    std::vector<Rule> rules;  // first match wins; at most RL_MAX_RULES - 1
    std::vector<net::Cidr> allow;
    std::vector<net::Cidr> deny;
    RateLimit global;  // per interface; unlimited = off
    bool dry_run = false;
    bool drop_malformed = false;
};

// Thrown for a policy that cannot be compiled; names the offending field.
class PolicyError : public std::runtime_error {
public:
    PolicyError(std::string field, const std::string& reason)
        : std::runtime_error(field + ": " + reason), field_(std::move(field)) {}
    [[nodiscard]] const std::string& field() const { return field_; }

private:
    std::string field_;
};

struct ClassEntry {
    net::Cidr prefix;
    rl_class_value value{};
};

struct CompiledPolicy {
    rl_policy header{};                    // slot-independent part
    std::vector<ClassEntry> class_entries; // allow/deny/tier merged, most specific wins
    std::vector<std::uint8_t> rule_index;  // RL_L4_CLASSES * RL_PORTS rule ids
    std::vector<std::string> tier_names;   // by tier id
    std::vector<std::string> rule_names;   // by rule id; [0] = "none"
};

// GCRA form of a rate; throws PolicyError(field) on out-of-range values.
rl_limit to_gcra_limit(const RateLimit& limit, const std::string& field);

CompiledPolicy compile(const Policy& policy);

// A policy that limits nothing: what a freshly loaded program enforces.
Policy pass_through_policy();

}  // namespace rlgate::policy
