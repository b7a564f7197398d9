// SPDX-License-Identifier: BSD-2-Clause
// Limits that change while rlgated runs, with real traffic through the XDP
// program in a namespace: an operator override raises a tier's rate at once
// and expires on time; emergency mode applies its profile and reverts; the
// adaptive controller tightens the lowest tier under a flood and gives the
// rate back once the flood is over.
#include <gtest/gtest.h>

#include <future>

#include "netns/daemon_fixture.hpp"
#include "support/l7_process.hpp"
#include "support/test_upstream.hpp"

namespace rlgate::testing {
namespace {

using namespace std::chrono_literals;

class AdaptiveTest : public DaemonTest {
protected:
    std::uint64_t passed(const std::string& tier) { return tier_packets(daemon_->call("stats"), tier, "pass"); }
    // Packets of `tier` passed during a flood of `seconds` at `rate` from `src`.
    std::uint64_t passed_during(const std::string& tier, const std::string& src, unsigned rate, double seconds) {
        const auto before = passed(tier);
        flood(src, 1, rate, seconds);
        return passed(tier) - before;
    }
    std::uint64_t tier_pps(const json& limits, const std::string& tier) {
        for (const auto& t : limits["tiers"])
            if (t["tier"] == tier)
                return t["pps"].get<std::uint64_t>();
        return 0;
    }
};

TEST_F(AdaptiveTest, AnOverrideRaisesATierAtOnceAndExpiresOnTime) {
    daemon_->write_config(base_config({{"default", tier(100, 50)}}));
    daemon_->start();
    const auto base = passed_during("default", "10.250.0.1", 2000, 1.0);
    EXPECT_LE(base, 100U + 50U + 20U) << "100/s plus the burst";

    const auto set = daemon_->call("override.set", {{"name", "default"}, {"factor", 10}, {"for_s", 3}, {"reason", "promo"}});
    ASSERT_TRUE(set["until"].is_string()) << set.dump();
    auto limits = daemon_->call("override.list");
    EXPECT_EQ(tier_pps(limits, "default"), 1000U) << limits.dump();
    const auto raised = passed_during("default", "10.250.0.2", 2000, 1.0);
    EXPECT_GE(raised, 900U) << "1000/s at once";
    EXPECT_LE(raised, 1000U + 500U + 50U);

    // Expiry: checked every second by the daemon.
    const auto expired = [&] { return tier_pps(daemon_->call("override.list"), "default") == 100; };
    const auto start = std::chrono::steady_clock::now();
    while (!expired() && std::chrono::steady_clock::now() - start < 5s)
        std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(expired()) << daemon_->call("override.list").dump();
    limits = daemon_->call("override.list");
    EXPECT_TRUE(limits["overrides"].empty()) << "an expired override is forgotten: " << limits.dump();
    const auto after = passed_during("default", "10.250.0.3", 2000, 1.0);
    EXPECT_LE(after, 100U + 50U + 20U);
}

TEST_F(AdaptiveTest, EmergencyModeAppliesItsProfileAndReverts) {
    auto cfg = base_config({{"free", tier(100, 50)}, {"premium", tier(1000, 100)}});
    cfg["default_tier"] = "free";
    cfg["emergency"] = {{"free", 0.1}};
    daemon_->write_config(cfg);
    daemon_->start();
    auto r = daemon_->call("emergency", {{"on", true}});
    EXPECT_EQ(r["emergency"], true);
    auto limits = daemon_->call("override.list");
    EXPECT_EQ(tier_pps(limits, "free"), 10U);
    EXPECT_EQ(tier_pps(limits, "premium"), 1000U) << "not in the profile";
    EXPECT_LE(passed_during("free", "10.251.0.1", 2000, 1.0), 10U + 5U + 5U);
    // Survives a restart (runtime state), then reverts.
    daemon_->kill9();
    daemon_->start();
    EXPECT_EQ(daemon_->call("status")["limits"]["emergency"], true);
    r = daemon_->call("emergency", {{"on", false}});
    EXPECT_EQ(r["emergency"], false);
    EXPECT_EQ(tier_pps(daemon_->call("override.list"), "free"), 100U);
    EXPECT_GE(passed_during("free", "10.251.0.2", 2000, 1.0), 90U);
}

TEST_F(AdaptiveTest, TheControllerTightensTheLowestTierUnderAFloodAndRecoversAfter) {
    auto cfg = base_config({{"free", tier(1000, 100)}, {"premium", tier(1000, 100)}});
    cfg["default_tier"] = "free";
    cfg["adaptive"] = {{"tiers", {"free"}}, {"step", 0.5}, {"min_factor", 0.25}, {"dwell", "1s"},
                       {"signals", {{"pps", 1500}}}};
    daemon_->write_config(cfg);
    daemon_->start();
    // 3000 packets/s seen: twice the high level.
    auto flooding = std::async(std::launch::async, [&] { return flood("10.252.0.1", 1, 3000, 6.0); });
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<double> tightened_after;
    json st;
    while (std::chrono::steady_clock::now() - t0 < 6s) {
        st = daemon_->call("override.list");
        if (!tightened_after && st["adaptive"]["level"].get<int>() >= 1)
            tightened_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (st["adaptive"]["level"].get<int>() == 2)
            break;
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(tightened_after.has_value()) << st.dump();
    EXPECT_EQ(st["adaptive"]["level"], 2) << st.dump();
    EXPECT_EQ(tier_pps(st, "free"), 250U) << "two steps: 1000 -> 500 -> 250 (the minimum)";
    EXPECT_EQ(tier_pps(st, "premium"), 1000U) << "premium is not in adaptive.tiers";
    EXPECT_EQ(st["adaptive"]["cause"], "pps");
    flooding.get();
    const auto t1 = std::chrono::steady_clock::now();
    std::optional<double> recovered_after;
    while (std::chrono::steady_clock::now() - t1 < 8s) {
        st = daemon_->call("override.list");
        if (st["adaptive"]["level"].get<int>() == 0) {
            recovered_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(recovered_after.has_value()) << st.dump();
    EXPECT_EQ(tier_pps(st, "free"), 1000U);
    std::cout << "[ adaptive ] first step " << *tightened_after << " s after the flood began; back to level 0 "
              << *recovered_after << " s after it ended (dwell 1 s)\n";
    const auto admin = daemon_->call("status")["admin"].get<std::string>();  // http://127.0.0.1:PORT/ in its namespace
    const auto metrics = shell("ip netns exec " + pair_->ns_b() + " curl -s " + admin + "metrics");
    EXPECT_NE(metrics.find("rlgate_adaptive_level 0"), std::string::npos) << metrics.substr(0, 400);
}

// rlgate-l7's tiers named like rlgated's follow its factor (from_rlgated.limits).
TEST_F(AdaptiveTest, RlgateL7FollowsTheFactorOfItsTier) {
    auto cfg = base_config({{"free", tier(100, 50)}});
    cfg["daemon"] = {{"escalation_group", "nogroup"}};
    daemon_->write_config(cfg);
    daemon_->start();
    L7Process l7("factors");
    l7.write_config({{"mode", "forward_auth"},
                     {"trusted_proxies", {"127.0.0.1/32"}},
                     {"anonymous_tier", "free"},
                     {"tiers", {{"free", {{"limits", {{{"limit", 40}, {"per", "1m"}}}}}}}},
                     {"escalation", {{"socket", daemon_->escalation_socket()}, {"enabled", false}}},
                     {"from_rlgated", {{"limits", true}, {"refresh", "1s"}}}});
    l7.start();
    const auto limit_seen = [&](const std::string& want) {
        std::string seen;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < deadline && seen != want) {
            const auto r = l7.check("/api", {{"X-Forwarded-For", "192.0.2.9"}});
            seen = r.headers.contains("x-ratelimit-limit") ? r.headers.at("x-ratelimit-limit") : "";
            if (seen != want)
                std::this_thread::sleep_for(200ms);
        }
        return seen;
    };
    EXPECT_EQ(limit_seen("40"), "40") << l7.log_text();
    const auto set = daemon_->call("override.set", {{"name", "free"}, {"factor", 0.25}});
    ASSERT_TRUE(set.contains("generation")) << set.dump();
    EXPECT_EQ(limit_seen("10"), "10") << "40 x 0.25, within a few refreshes\n" << l7.log_text();
    daemon_->call("override.clear", {{"name", "free"}});
    EXPECT_EQ(limit_seen("40"), "40") << l7.log_text();
}

// rlgate-l7 reports its upstream's latency; past adaptive.signals.l7_latency the controller tightens.
TEST_F(AdaptiveTest, ASlowUpstreamBehindRlgateL7TightensTheLowestTier) {
    auto cfg = base_config({{"free", tier(1000, 100)}});
    cfg["daemon"] = {{"escalation_group", "nogroup"}};
    cfg["adaptive"] = {{"tiers", {"free"}}, {"dwell", "1s"}, {"signals", {{"l7_latency", "100ms"}}}};
    daemon_->write_config(cfg);
    daemon_->start();
    TestUpstream upstream;
    L7Process l7("latency");
    l7.write_config({{"mode", "proxy"},
                     {"proxy", {{"upstream", "http://127.0.0.1:" + std::to_string(upstream.port())}}},
                     {"anonymous_tier", "anonymous"},
                     {"tiers", {{"anonymous", {{"limits", {{{"limit", 1000}, {"per", "1m"}}}}}}}},
                     {"escalation", {{"socket", daemon_->escalation_socket()}, {"enabled", true}, {"report_interval", "1s"}}}});
    l7.start();
    const auto t0 = std::chrono::steady_clock::now();
    json st;
    while (std::chrono::steady_clock::now() - t0 < 8s) {
        EXPECT_EQ(l7.get("/sleep300").status, 200);  // each answer takes 300 ms: 3x the high level
        st = daemon_->call("override.list");
        if (st["adaptive"]["level"].get<int>() >= 1)
            break;
    }
    EXPECT_GE(st["adaptive"]["level"].get<int>(), 1) << st.dump() << l7.log_text();
    EXPECT_EQ(st["adaptive"]["cause"], "l7_latency") << st.dump();
    EXPECT_GE(st["adaptive"]["signals"]["l7_latency"].get<double>(), 2.5) << st.dump();
}

TEST_F(AdaptiveTest, OverTheGlobalLimitPremiumKeepsItsTrafficWhileFreeIsShed) {
    auto cfg = base_config({{"free", {{"pps", 100000}, {"burst", 1000}, {"global_share", 0.2}}},
                            {"premium", {{"pps", 100000}, {"burst", 1000}, {"members", {"10.253.1.0/24"}}}}});
    cfg["default_tier"] = "free";
    cfg["global"] = {{"pps", 2000}, {"burst", 500}};
    daemon_->write_config(cfg);
    daemon_->start();
    const auto stats0 = daemon_->call("stats");
    // Free: 200 sources (10.253.0.1-200), 6000 packets/s in all; premium: one source at 500/s; both for 2 s.
    auto free_flood = std::async(std::launch::async, [&] { return flood("10.253.0.1", 200, 6000, 2.0); });
    const auto premium = flood("10.253.1.1", 1, 500, 2.0);
    const auto free_sent = free_flood.get();
    const auto stats1 = daemon_->call("stats");
    const auto delta = [&](const std::string& t, const std::string& v) {
        return tier_packets(stats1, t, v) - tier_packets(stats0, t, v);
    };
    const auto premium_sent = premium["sent"].get<std::uint64_t>();
    ASSERT_GT(premium_sent, 800U);
    EXPECT_GE(delta("premium", "pass"), premium_sent * 98 / 100) << "premium keeps its traffic";
    EXPECT_GT(delta("free", "drop"), free_sent["sent"].get<std::uint64_t>() / 2) << "free is shed";
    EXPECT_LE(delta("free", "pass") + delta("premium", "pass"), 2000U * 2 + 500 + 200) << "within the global limit";
    std::cout << "[ adaptive ] global 2000/s, priority shedding: premium passed " << delta("premium", "pass") << " of "
              << premium_sent << ", free passed " << delta("free", "pass") << " of " << free_sent["sent"] << "\n";

    // The same flood without priority (every tier the whole global burst): premium loses most.
    cfg["tiers"]["free"].erase("global_share");
    const auto gen = daemon_->call("status")["policy_generation"].get<std::uint32_t>();
    daemon_->write_config(cfg);
    wait_for_reload(gen, true);
    std::this_thread::sleep_for(1s);  // the global bucket refills
    const auto stats2 = daemon_->call("stats");
    auto free_again = std::async(std::launch::async, [&] { return flood("10.253.0.1", 200, 6000, 2.0); });
    const auto premium_again = flood("10.253.1.1", 1, 500, 2.0);
    free_again.get();
    const auto stats3 = daemon_->call("stats");
    const auto premium_passed = tier_packets(stats3, "premium", "pass") - tier_packets(stats2, "premium", "pass");
    // Runs measured 21-52 % here (the share a flood leaves depends on timing): well short of all of it.
    EXPECT_LT(premium_passed, premium_again["sent"].get<std::uint64_t>() * 85 / 100) << "what the shares prevent";
    std::cout << "[ adaptive ] global 2000/s, no priority: premium passed " << premium_passed << " of "
              << premium_again["sent"] << "\n";
}

// The controller's own effect on premium goodput: no shares, a free flood over the global
// limit; once the controller has scaled free sources down, premium gets through again.
TEST_F(AdaptiveTest, TheControllerGivesPremiumItsGoodputBackUnderAFreeFlood) {
    auto cfg = base_config({{"free", tier(40, 40)}, {"premium", {{"pps", 100000}, {"burst", 1000}, {"members", {"10.254.1.0/24"}}}}});
    cfg["default_tier"] = "free";
    cfg["global"] = {{"pps", 2000}, {"burst", 500}};
    cfg["adaptive"] = {{"tiers", {"free"}}, {"step", 0.5}, {"min_factor", 0.1}, {"dwell", "1s"}, {"signals", {{"pps", 3000}}}};
    daemon_->write_config(cfg);
    daemon_->start();
    // 200 free sources at 30 packets/s each (under their 40/s): 6000/s, 3x the global limit.
    const auto premium_goodput = [&](double seconds) {
        const auto before = daemon_->call("stats");
        const auto sent = flood("10.254.1.1", 1, 500, seconds)["sent"].get<std::uint64_t>();
        const auto after = daemon_->call("stats");
        return std::pair{tier_packets(after, "premium", "pass") - tier_packets(before, "premium", "pass"), sent};
    };
    auto free_flood = std::async(std::launch::async, [&] { return flood("10.254.0.1", 200, 6000, 9.0); });
    std::this_thread::sleep_for(300ms);
    const auto [early_passed, early_sent] = premium_goodput(1.0);  // before the controller's first step
    json st;
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < 6s) {
        st = daemon_->call("override.list");
        if (st["adaptive"]["level"].get<int>() >= 4)
            break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(st["adaptive"]["level"], 4) << "free at its minimum (0.1): " << st.dump();
    const auto [late_passed, late_sent] = premium_goodput(1.5);
    free_flood.get();
    EXPECT_LT(early_passed, early_sent * 6 / 10) << "before: the flood takes the global limit";
    EXPECT_GE(late_passed, late_sent * 95 / 100) << "after: free sources at 4/s each leave room for premium";
    std::cout << "[ adaptive ] premium goodput under a free flood 3x the global limit: " << early_passed << " of "
              << early_sent << " before the controller acts, " << late_passed << " of " << late_sent
              << " once free is scaled to 0.1\n";
}

}  // namespace
}  // namespace rlgate::testing
