// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include <algorithm>

#include "core/policy/policy.hpp"

using namespace rlgate::policy;
using rlgate::net::Cidr;

namespace {

Policy two_tiers() {
    Policy p;
    p.tiers.push_back({.name = "free", .limit = {.packets_per_sec = 100, .burst_packets = 10}});
    p.tiers.push_back({.name = "premium", .limit = {.packets_per_sec = 1000, .burst_packets = 100}});
    p.default_tier = "free";
    return p;
}

const ClassEntry* find(const CompiledPolicy& c, const char* cidr) {
    auto want = *Cidr::parse(cidr);
    auto it = std::find_if(c.class_entries.begin(), c.class_entries.end(),
                           [&](const ClassEntry& e) { return e.prefix == want; });
    return it == c.class_entries.end() ? nullptr : &*it;
}

}  // namespace

TEST(GcraLimit, ConvertsRatesWithoutOverflow) {
    auto one = to_gcra_limit({.packets_per_sec = 1, .burst_packets = 1}, "x");
    EXPECT_EQ(one.pkt_interval_q, 1'000'000'000ULL << RL_Q_SHIFT);
    EXPECT_EQ(one.pkt_tolerance_q, one.pkt_interval_q);
    auto fast = to_gcra_limit({.packets_per_sec = 100'000'000, .burst_packets = 1'000'000}, "x");
    EXPECT_EQ(fast.pkt_interval_q, 640U);  // 10 ns in 1/64 ns
    EXPECT_EQ(fast.pkt_tolerance_q, 640'000'000U);
    auto odd = to_gcra_limit({.packets_per_sec = 30'000'000, .burst_packets = 1}, "x");
    const double rate = 1e9 * 64 / static_cast<double>(odd.pkt_interval_q);
    EXPECT_NEAR(rate, 30e6, 30e6 * 2e-4);  // 1/64 ns resolution: 0.016% at 30 Mpps
    auto huge_burst = to_gcra_limit({.packets_per_sec = 1, .burst_packets = ~0ULL}, "x");
    EXPECT_EQ(huge_burst.pkt_tolerance_q, 1ULL << 60) << "clamped, not wrapped";
    auto bytes = to_gcra_limit({.bytes_per_sec = 125'000'000, .burst_bytes = 1'500'000}, "x");
    EXPECT_EQ(bytes.byte_interval_q, 524288U);  // 8 ns per byte, 16 fractional bits
    EXPECT_EQ(bytes.pkt_interval_q, 0U);
    // 12 ms of 1 Gbit/s in 1/64 ns
    EXPECT_NEAR(static_cast<double>(bytes.byte_tolerance_q), 12e6 * 64, 12e6 * 64 * 0.001);
}

TEST(GcraLimit, RejectsNonsenseWithFieldNames) {
    try {
        to_gcra_limit({.packets_per_sec = 10, .burst_packets = 0}, "tiers.free");
        FAIL() << "expected PolicyError";
    } catch (const PolicyError& e) {
        EXPECT_EQ(e.field(), "tiers.free.burst");
    }
    EXPECT_THROW(to_gcra_limit({.packets_per_sec = 2'000'000'000, .burst_packets = 1}, "x"), PolicyError);
    EXPECT_THROW(to_gcra_limit({.burst_packets = 5}, "x"), PolicyError);
    EXPECT_THROW(to_gcra_limit({.bytes_per_sec = 1000, .burst_bytes = 100}, "x"), PolicyError);
}

TEST(PolicyCompile, MergesAllowDenyAndTiersMostSpecificFirst) {
    Policy p = two_tiers();
    p.members.push_back({*Cidr::parse("10.0.0.0/8"), "premium"});
    p.members.push_back({*Cidr::parse("10.1.0.0/16"), "free"});
    p.deny.push_back(*Cidr::parse("10.0.0.0/12"));
    p.allow.push_back(*Cidr::parse("10.1.2.0/24"));
    p.deny.push_back(*Cidr::parse("10.1.2.128/25"));  // inside an allowed /24: allow wins
    auto c = compile(p);
    ASSERT_EQ(c.class_entries.size(), 5U);
    EXPECT_EQ(find(c, "10.0.0.0/8")->value.klass, RL_CLASS_TIER);
    EXPECT_EQ(find(c, "10.0.0.0/8")->value.tier, 1);
    EXPECT_EQ(find(c, "10.0.0.0/12")->value.klass, RL_CLASS_DENY);
    // 10.1.0.0/16 lies inside the denied 10.0.0.0/12: deny precedes tiers.
    EXPECT_EQ(find(c, "10.1.0.0/16")->value.klass, RL_CLASS_DENY);
    EXPECT_EQ(find(c, "10.1.2.0/24")->value.klass, RL_CLASS_ALLOW);
    EXPECT_EQ(find(c, "10.1.2.128/25")->value.klass, RL_CLASS_ALLOW);
}

TEST(PolicyCompile, RuleIndexFirstMatchWins) {
    Policy p = two_tiers();
    p.rules.push_back({.name = "ssh-syn", .protocol = RuleProtocol::tcp, .port_first = 22, .port_last = 22,
                       .syn_only = true, .limit = {.packets_per_sec = 5, .burst_packets = 5}});
    p.rules.push_back({.name = "low-tcp", .protocol = RuleProtocol::tcp, .port_first = 1, .port_last = 1023,
                       .limit = {.packets_per_sec = 50, .burst_packets = 50}});
    p.rules.push_back({.name = "dns", .protocol = RuleProtocol::udp, .port_first = 53, .port_last = 53});
    p.rules.push_back({.name = "icmp", .protocol = RuleProtocol::other});
    auto c = compile(p);
    auto at = [&](int cls, int port) { return c.rule_index[static_cast<std::size_t>(cls * RL_PORTS + port)]; };
    EXPECT_EQ(at(RL_L4_TCP_SYN, 22), 1);
    EXPECT_EQ(at(RL_L4_TCP, 22), 2);  // non-SYN falls to the next rule
    EXPECT_EQ(at(RL_L4_TCP_SYN, 80), 2);
    EXPECT_EQ(at(RL_L4_TCP, 1024), 0);
    EXPECT_EQ(at(RL_L4_UDP, 53), 3);
    EXPECT_EQ(at(RL_L4_UDP, 22), 0);
    EXPECT_EQ(at(RL_L4_OTHER, 0), 4);
    EXPECT_EQ(c.rule_names.size(), 5U);
    // Tier x rule matrix
    EXPECT_EQ(c.header.limits[0][1].pkt_interval_q, (1'000'000'000ULL << 6) / 5);
    EXPECT_EQ(c.header.limits[1][0].pkt_interval_q, (1'000'000'000ULL << 6) / 1000);
    EXPECT_EQ(c.header.limits[0][3].pkt_interval_q, 0U) << "rule without limit is unlimited";
}

TEST(PolicyCompile, RuleTierOverride) {
    Policy p = two_tiers();
    Rule r{.name = "api", .protocol = RuleProtocol::tcp, .port_first = 443, .port_last = 443,
           .limit = {.packets_per_sec = 10, .burst_packets = 10}};
    r.tier_limits["premium"] = {.packets_per_sec = 100, .burst_packets = 100};
    p.rules.push_back(r);
    auto c = compile(p);
    EXPECT_EQ(c.header.limits[0][1].pkt_interval_q, (1'000'000'000ULL << 6) / 10);
    EXPECT_EQ(c.header.limits[1][1].pkt_interval_q, (1'000'000'000ULL << 6) / 100);
}

TEST(PolicyCompile, Ipv6GranularityFollowsLongestPrefix) {
    Policy p = two_tiers();
    EXPECT_EQ(compile(p).header.v6_class_prefix, 64);
    p.allow.push_back(*Cidr::parse("2001:db8::/112"));
    EXPECT_EQ(compile(p).header.v6_class_prefix, 112);
    p.allow.push_back(*Cidr::parse("2001:db8::1/128"));
    EXPECT_THROW(compile(p), PolicyError) << "IPv6 prefixes stop at /112 (16-byte bucket key)";
    p.allow.clear();
    p.tiers[1].prefix_v6 = 56;
    EXPECT_EQ(compile(p).header.v6_class_prefix, 64);
    p.tiers[1].prefix_v6 = 96;
    EXPECT_EQ(compile(p).header.v6_class_prefix, 96);
}

TEST(PolicyCompile, ErrorsNameTheField) {
    auto expect_field = [](Policy p, const std::string& field) {
        try {
            compile(p);
            ADD_FAILURE() << "expected PolicyError for " << field;
        } catch (const PolicyError& e) {
            EXPECT_EQ(e.field(), field) << e.what();
        }
    };
    Policy p = two_tiers();
    p.default_tier = "gold";
    expect_field(p, "default_tier");
    p = two_tiers();
    p.tiers[1].name = "free";
    expect_field(p, "tiers.free.name");
    p = two_tiers();
    p.tiers[0].prefix_v4 = 33;
    expect_field(p, "tiers.free.prefix_v4");
    p = two_tiers();
    p.tiers[0].prefix_v6 = 120;
    expect_field(p, "tiers.free.prefix_v6");
    p = two_tiers();
    p.deny.push_back(*Cidr::parse("2001:db8::1/128"));
    expect_field(p, "deny.2001:db8::1/128");
    p = two_tiers();
    p.members.push_back({*Cidr::parse("10.0.0.0/8"), "nope"});
    expect_field(p, "members.10.0.0.0/8");
    p = two_tiers();
    p.rules.push_back({.name = "r", .protocol = RuleProtocol::udp, .syn_only = true});
    expect_field(p, "rules.r.syn_only");
    p = two_tiers();
    p.rules.push_back({.name = "r", .port_first = 9, .port_last = 1});
    expect_field(p, "rules.r.ports");
    p = two_tiers();
    p.tiers.clear();
    expect_field(p, "tiers");
    p = two_tiers();
    for (int i = 0; i < RL_MAX_RULES; ++i)
        p.rules.push_back({.name = "r" + std::to_string(i)});
    expect_field(p, "rules");
}

TEST(PolicyCompile, FlagsAndGlobal) {
    Policy p = two_tiers();
    p.dry_run = true;
    p.drop_malformed = true;
    p.global = {.packets_per_sec = 1'000'000, .burst_packets = 10'000};
    auto c = compile(p);
    EXPECT_EQ(c.header.flags, static_cast<unsigned>(RL_POLICY_DRY_RUN | RL_POLICY_DROP_MALFORMED));
    EXPECT_EQ(c.header.global.pkt_interval_q, 64'000U);
    EXPECT_EQ(compile(pass_through_policy()).header.limits[0][0].pkt_interval_q, 0U);
}
