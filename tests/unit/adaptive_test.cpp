// SPDX-License-Identifier: BSD-2-Clause
// The adaptive controller against synthetic load traces (steps, ramps,
// noise): the factor chosen over time, its reaction time, the order in which
// tiers are scaled, and no oscillation; then scaled(): overrides, emergency
// and the controller's factors applied to a policy.
#include <gtest/gtest.h>

#include <random>

#include "core/policy/controller.hpp"
#include "core/policy/scaling.hpp"
#include "core/l7/shared_policy.hpp"

namespace rlgate::policy {
namespace {

ControllerSettings settings() {
    return {.order = {"free", "basic"}, .step = 0.5, .min_factor = 0.25, .recover_below = 0.7, .dwell_ms = 5000};
}

// Runs `load(t)` once a second for `seconds`; returns every change with its time.
template <typename Load>
std::vector<std::pair<std::int64_t, Controller::Change>> run(Controller& c, Load load, int seconds, int from = 0) {
    std::vector<std::pair<std::int64_t, Controller::Change>> out;
    for (int s = from; s < from + seconds; ++s) {
        const std::int64_t t = std::int64_t{s} * 1000;
        if (auto ch = c.observe({.at_ms = t, .load = load(s), .cause = "test"}))
            out.emplace_back(t, *ch);
    }
    return out;
}

TEST(AdaptiveController, AStepOfLoadTightensLowestTiersFirstThenRecoversInReverse) {
    Controller c(settings());
    EXPECT_EQ(c.max_level(), 4) << "2 steps per tier (1 -> 0.5 -> 0.25), 2 tiers";
    // Overloaded from t=10 s to t=60 s, calm after.
    const auto changes = run(c, [](int s) { return s >= 10 && s < 60 ? 1.5 : 0.2; }, 120);
    ASSERT_EQ(changes.size(), 8U);
    // Tightening: 5 s after the overload began, then one step every 5 s, free before basic.
    const std::vector<std::pair<std::int64_t, std::pair<std::string, double>>> want_down = {
        {15000, {"free", 0.5}}, {20000, {"free", 0.25}}, {25000, {"basic", 0.5}}, {30000, {"basic", 0.25}}};
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(changes[i].first, want_down[i].first) << i;
        EXPECT_EQ(changes[i].second.tier, want_down[i].second.first) << i;
        EXPECT_DOUBLE_EQ(changes[i].second.factor, want_down[i].second.second) << i;
        EXPECT_TRUE(changes[i].second.tightened);
    }
    // Recovery: 5 s of calm, then one step back every 5 s, basic (the last tightened) first.
    const std::vector<std::pair<std::int64_t, std::pair<std::string, double>>> want_up = {
        {65000, {"basic", 0.5}}, {70000, {"basic", 1.0}}, {75000, {"free", 0.5}}, {80000, {"free", 1.0}}};
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(changes[4 + i].first, want_up[i].first) << i;
        EXPECT_EQ(changes[4 + i].second.tier, want_up[i].second.first) << i;
        EXPECT_DOUBLE_EQ(changes[4 + i].second.factor, want_up[i].second.second) << i;
        EXPECT_FALSE(changes[4 + i].second.tightened);
    }
    EXPECT_EQ(c.level(), 0);
}

TEST(AdaptiveController, HoldsBetweenTheTwoLevelsAndNeverScalesUnlistedTiers) {
    Controller c(settings());
    run(c, [](int) { return 2.0; }, 12);  // two steps
    EXPECT_EQ(c.level(), 2);
    const auto held = run(c, [](int) { return 0.9; }, 600, 12);  // neither over 1 nor under 0.7
    EXPECT_TRUE(held.empty());
    EXPECT_EQ(c.level(), 2);
    EXPECT_EQ(c.factors().count("premium"), 0U);
    EXPECT_DOUBLE_EQ(c.factors().at("basic"), 1.0);
}

TEST(AdaptiveController, ARampReactsWithinOneDwellOfCrossingAndNoiseNeverOscillatesFasterThanTheDwell) {
    Controller ramp(settings());
    // Load rises 0.02 per second from 0: crosses 1.0 after t=50 s.
    const auto changes = run(ramp, [](int s) { return 0.02 * s; }, 80);
    ASSERT_FALSE(changes.empty());
    EXPECT_GT(changes.front().first, 50000);
    EXPECT_LE(changes.front().first, 56000) << "bounded reaction: one dwell after crossing";

    // Noise around the threshold (0.6 .. 1.4): changes are never closer than the dwell.
    Controller noisy(settings());
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> u(0.6, 1.4);
    std::vector<double> trace(3600);
    for (auto& v : trace)
        v = u(rng);
    const auto noisy_changes = run(noisy, [&](int s) { return trace[static_cast<std::size_t>(s)]; }, 3600);
    for (std::size_t i = 1; i < noisy_changes.size(); ++i)
        EXPECT_GE(noisy_changes[i].first - noisy_changes[i - 1].first, 5000) << i;
    // Random single-second spikes never hold for a dwell: far fewer changes than samples.
    EXPECT_LT(noisy_changes.size(), 3600U / 5);
}

TEST(AdaptiveController, TiersHeldByAnOverrideArePassedOver) {
    Controller c(settings());
    std::optional<Controller::Change> first;
    for (int s = 0; s < 10 && !first; ++s)
        first = c.observe({.at_ms = s * 1000, .load = 2.0, .cause = "test"}, {"free"});
    ASSERT_TRUE(first);
    EXPECT_EQ(first->tier, "basic") << "free is held by an override: basic is the next to give";
    EXPECT_DOUBLE_EQ(c.factors().at("free"), 1.0);
}

TEST(AdaptiveController, AtTheMinimumItStopsAndBriefSpikesDoNothing) {
    Controller c(settings());
    run(c, [](int) { return 5.0; }, 100);
    EXPECT_EQ(c.level(), c.max_level());
    EXPECT_DOUBLE_EQ(c.factors().at("free"), 0.25);
    EXPECT_DOUBLE_EQ(c.factors().at("basic"), 0.25);
    Controller spikes(settings());
    const auto changes = run(spikes, [](int s) { return s % 4 == 0 ? 3.0 : 0.8; }, 300);
    EXPECT_TRUE(changes.empty()) << "overload never lasted a dwell";
    // After a full tighten-and-recover cycle, a one-second spike still does nothing.
    Controller cycled(settings());
    run(cycled, [](int s) { return s < 20 ? 2.0 : 0.1; }, 100);
    ASSERT_EQ(cycled.level(), 0);
    EXPECT_TRUE(run(cycled, [](int s) { return s == 150 ? 5.0 : 0.1; }, 100, 100).empty());
}

Policy sample_policy() {
    Policy p;
    p.tiers = {{.name = "free", .limit = {.packets_per_sec = 100, .burst_packets = 200}},
               {.name = "premium", .limit = {.packets_per_sec = 1000, .burst_packets = 1000, .bytes_per_sec = 1'000'000, .burst_bytes = 2'000'000}}};
    p.default_tier = "free";
    Rule ssh{.name = "ssh", .protocol = RuleProtocol::tcp, .port_first = 22, .port_last = 22,
             .limit = {.packets_per_sec = 10, .burst_packets = 20}};
    ssh.tier_limits["premium"] = {.packets_per_sec = 50, .burst_packets = 50};
    p.rules = {ssh};
    return p;
}

TEST(Scaling, ControllerEmergencyAndOverridesCombine) {
    const auto base = sample_policy();
    Scaling s;
    s.adaptive = {{"free", 0.5}};
    auto p = scaled(base, s, 0);
    EXPECT_EQ(p.tiers[0].limit.packets_per_sec, 50U);
    EXPECT_EQ(p.tiers[0].limit.burst_packets, 100U);
    EXPECT_EQ(p.tiers[1].limit.packets_per_sec, 1000U) << "premium untouched";
    EXPECT_EQ(p.rules[0].tier_limits.at("free").packets_per_sec, 5U) << "the rule follows the tier";
    EXPECT_EQ(p.rules[0].tier_limits.at("premium").packets_per_sec, 50U);
    EXPECT_EQ(p.rules[0].limit.packets_per_sec, 10U) << "the rule's own default stays for other tiers";

    s.emergency = true;
    s.emergency_factors = {{"free", 0.1}, {"premium", 0.5}};
    p = scaled(base, s, 0);
    EXPECT_EQ(p.tiers[0].limit.packets_per_sec, 10U) << "the smaller of controller and emergency";
    EXPECT_EQ(p.tiers[1].limit.bytes_per_sec, 500'000U);

    // An operator's override replaces the automatic factor of its tier, from start to end.
    s.overrides = {{.target = Override::Target::tier, .name = "free", .pps = 400, .start_ms = 1000, .until_ms = 5000,
                    .reason = "promotion", .origin = "schedule"}};
    EXPECT_EQ(scaled(base, s, 999).tiers[0].limit.packets_per_sec, 10U);
    p = scaled(base, s, 1000);
    EXPECT_EQ(p.tiers[0].limit.packets_per_sec, 400U);
    EXPECT_EQ(p.tiers[0].limit.burst_packets, 800U) << "burst scaled alike";
    EXPECT_EQ(scaled(base, s, 5000).tiers[0].limit.packets_per_sec, 10U) << "expired";
    // A rule override; and the last override of one target wins.
    s.overrides.push_back({.target = Override::Target::rule, .name = "ssh", .factor = 2.0});
    s.overrides.push_back({.target = Override::Target::tier, .name = "free", .factor = 3.0, .start_ms = 2000});
    p = scaled(base, s, 2000);
    EXPECT_EQ(p.tiers[0].limit.packets_per_sec, 300U);
    EXPECT_EQ(p.rules[0].limit.packets_per_sec, 20U);
    EXPECT_EQ(p.rules[0].tier_limits.at("premium").packets_per_sec, 100U);
}

TEST(Scaling, BoundsAndUnknownTargets) {
    const auto base = sample_policy();
    EXPECT_EQ(scale({.packets_per_sec = 3, .burst_packets = 3}, 0.01).packets_per_sec, 1U) << "never below 1";
    EXPECT_TRUE(scale({}, 0.5).unlimited()) << "unlimited stays unlimited";
    EXPECT_EQ(scale({.packets_per_sec = 10, .burst_packets = 10}, -1).packets_per_sec, 10U) << "a bad factor is 1";
    Scaling s;
    s.overrides = {{.target = Override::Target::tier, .name = "gold", .factor = 2.0}};
    EXPECT_THROW(scaled(base, s, 0), PolicyError);
    auto bytes_only = base;
    bytes_only.tiers[0].limit = {.bytes_per_sec = 1000, .burst_bytes = 2000};
    s.overrides = {{.target = Override::Target::tier, .name = "free", .pps = 50}};
    EXPECT_THROW(scaled(bytes_only, s, 0), PolicyError) << "no packet rate to set";
    // A tier's --pps moves its rules' limits by the same factor (rule limits replace the tier's in the kernel).
    s.overrides = {{.target = Override::Target::tier, .name = "free", .pps = 300}};
    const auto p = scaled(base, s, 0);
    EXPECT_EQ(p.tiers[0].limit.packets_per_sec, 300U);
    EXPECT_EQ(p.rules[0].tier_limits.at("free").packets_per_sec, 30U) << "10 x 3";
    s.overrides = {{.target = Override::Target::rule, .name = "gold", .factor = 2.0, .until_ms = 10}};
    EXPECT_NO_THROW(scaled(base, s, 10)) << "an expired override is not checked";
}

TEST(Scaling, RlgateL7TiersFollowRlgatedsFactors) {
    std::string error;
    const auto shared = l7::parse_shared_policy(
        nlohmann::json{{"generation", 3}, {"allow", nlohmann::json::array()}, {"members", nlohmann::json::array()},
                       {"factors", {{"free", 0.25}, {"gold", 2.0}}}},
        &error);
    ASSERT_TRUE(shared) << error;
    EXPECT_EQ(shared->factors.at("free"), 0.25);
    EXPECT_FALSE(l7::parse_shared_policy(nlohmann::json{{"allow", nlohmann::json::array()},
                                                         {"members", nlohmann::json::array()},
                                                         {"factors", {{"free", -1}}}},
                                         &error));
    l7::L7Config base;
    base.tiers["free"] = {.name = "free",
                          .limits = {{.name = "40/min", .limit = 40, .burst = 10}},
                          .endpoint_limits = {{"search", {{.name = "3/s", .limit = 3}}}}};
    base.tiers["premium"] = {.name = "premium", .limits = {{.name = "1000/min", .limit = 1000}}};
    const auto scaled_config = l7::scale_tiers(base, shared->factors);
    EXPECT_EQ(scaled_config.tiers.at("free").limits[0].limit, 10U);
    EXPECT_EQ(scaled_config.tiers.at("free").limits[0].burst, 3U);  // 2.5 rounds to 3
    EXPECT_EQ(scaled_config.tiers.at("free").endpoint_limits.at("search")[0].limit, 1U) << "never below 1";
    EXPECT_EQ(scaled_config.tiers.at("premium").limits[0].limit, 1000U) << "no factor: as configured";
}

}  // namespace
}  // namespace rlgate::policy
