// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include "core/alerts/alert_engine.hpp"
#include "core/alerts/delivery_queue.hpp"
#include "core/config/config.hpp"
#include "core/metrics/exposition.hpp"
#include "core/stats/insights.hpp"

namespace rlgate {
namespace {

TEST(Exposition, FamiliesSamplesAndEscaping) {
    metrics::Exposition m;
    m.family("rlgate_packets_total", "counter", "Packets.\nAll of them \\ really.");
    m.sample("rlgate_packets_total", {{"tier", "free"}, {"reason", "a\"b\\c\nd"}}, std::uint64_t{18446744073709551615ULL});
    m.sample("rlgate_packets_total", {}, 0.5);
    EXPECT_EQ(m.text(),
              "# HELP rlgate_packets_total Packets.\\nAll of them \\\\ really.\n"
              "# TYPE rlgate_packets_total counter\n"
              "rlgate_packets_total{tier=\"free\",reason=\"a\\\"b\\\\c\\nd\"} 18446744073709551615\n"
              "rlgate_packets_total 0.5\n");
}

config::AlertRule rule(double above, double clear, std::uint64_t for_s) {
    config::AlertRule r;
    r.name = "drops";
    r.type = config::AlertType::drop_ratio;
    r.above = above;
    r.clear_below = clear;
    r.for_ns = for_s * 1'000'000'000ULL;
    return r;
}

TEST(AlertEngine, FiresAfterItsForDurationOncePerEpisode) {
    alerts::AlertEngine e({rule(0.10, 0.05, 60)});
    EXPECT_FALSE(e.observe("drops", 0.5, "", 0));
    EXPECT_FALSE(e.observe("drops", 0.5, "", 59'000));
    auto n = e.observe("drops", 0.5, "", 60'000);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->status, "firing");
    EXPECT_EQ(n->since_ms, 0);
    EXPECT_FALSE(e.observe("drops", 0.9, "", 61'000)) << "still the same episode";
    EXPECT_FALSE(e.observe("drops", 0.07, "", 62'000)) << "between clear_below and above: no change (hysteresis)";
    EXPECT_FALSE(e.observe("drops", 0.01, "", 63'000));
    EXPECT_FALSE(e.observe("drops", 0.2, "", 100'000)) << "up again before it cleared: still firing";
    EXPECT_EQ(e.status()[0].state, alerts::State::firing);
    EXPECT_FALSE(e.observe("drops", 0.01, "", 101'000));
    n = e.observe("drops", 0.01, "", 161'000);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->status, "resolved");
    EXPECT_EQ(n->since_ms, 60'000);
    EXPECT_FALSE(e.observe("drops", 0.01, "", 200'000));
}

TEST(AlertEngine, ShortSpikesAndMissingDataDoNotFire) {
    alerts::AlertEngine e({rule(0.10, 0.10, 10)});
    for (std::int64_t t = 0; t < 60'000; t += 1'000)
        EXPECT_FALSE(e.observe("drops", (t / 1000) % 5 == 0 ? 0.2 : 0.0, "", t)) << t;
    EXPECT_FALSE(e.observe("drops", std::nullopt, "", 70'000));
    EXPECT_FALSE(e.observe("nosuch", 1.0, "", 70'000));
    alerts::AlertEngine instant({rule(0.5, 0.5, 0)});
    ASSERT_TRUE(instant.observe("drops", 1.0, "eth0", 0));
    EXPECT_EQ(instant.status()[0].subject, "eth0");
    ASSERT_TRUE(instant.observe("drops", 0.0, "", 1));
}

TEST(AlertEngine, ReplacingRulesKeepsTheStateOfUnchangedOnes) {
    alerts::AlertEngine e({rule(0.1, 0.1, 0)});
    ASSERT_TRUE(e.observe("drops", 1.0, "", 0));
    EXPECT_TRUE(e.replace_rules({rule(0.1, 0.1, 0)}, 1).empty());
    EXPECT_FALSE(e.observe("drops", 1.0, "", 1)) << "no second firing for the same episode";
    const auto resolved = e.replace_rules({rule(0.2, 0.2, 0)}, 2);
    ASSERT_EQ(resolved.size(), 1U) << "a firing rule that changed resolves: no incident left open";
    EXPECT_EQ(resolved[0].status, "resolved");
    EXPECT_TRUE(e.observe("drops", 1.0, "", 2)) << "a changed rule starts over";
}

TEST(DeliveryQueue, BacksOffAndDropsTheOldestWhenFull) {
    alerts::DeliveryQueue q(2, 5'000);
    q.push("a");
    q.push("b");
    EXPECT_TRUE(q.due(0));
    q.failed(0);
    EXPECT_EQ(q.next_try_ms(), 1'000);
    q.failed(1'000);
    EXPECT_EQ(q.next_try_ms(), 3'000);
    q.failed(3'000);
    q.failed(7'000);
    EXPECT_EQ(q.next_try_ms(), 12'000) << "capped at 5 s";
    EXPECT_FALSE(q.due(11'999));
    q.push("c");
    EXPECT_EQ(q.dropped(), 1U);
    EXPECT_EQ(q.front(), "b");
    EXPECT_FALSE(q.due(0)) << "the receiver's backoff goes on for the new head";
    EXPECT_TRUE(q.due(12'000));
    q.delivered();
    EXPECT_EQ(q.front(), "c");
    EXPECT_EQ(q.delivered_count(), 1U);
}

TEST(DeliveryQueue, TheNotificationOnItsWayIsNeverTheOneDropped) {
    alerts::DeliveryQueue q(2, 5'000);
    q.push("a");
    q.push("b");
    q.begin_attempt();  // "a" is being sent
    q.push("c");        // full: "b" goes, not "a"
    EXPECT_EQ(q.dropped(), 1U);
    q.delivered();      // "a" arrived
    EXPECT_EQ(q.front(), "c");
    alerts::DeliveryQueue one(1, 5'000);
    one.push("x");
    one.begin_attempt();
    one.push("y");  // no room while "x" is on its way
    one.delivered();
    EXPECT_TRUE(one.empty());
    EXPECT_EQ(one.dropped(), 1U);
}

TEST(Insights, FlagsLimitsHitOftenAndNever) {
    const auto out = stats::tuning_insights({{"free", "none", 800, 200}, {"premium", "api", 5000, 0},
                                             {"free", "dns", 990, 10}, {"tiny", "none", 10, 10}});
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0].kind, "never_limited");
    EXPECT_EQ(out[0].tier, "premium");
    EXPECT_EQ(out[1].kind, "often_limited");
    EXPECT_EQ(out[1].tier, "free");
    EXPECT_DOUBLE_EQ(out[1].limited_share, 0.2);
}

TEST(ConfigObservability, AdminAndAlertsParse) {
    const auto cfg = config::parse_config(
        R"({"tiers": {"d": {"pps": 1, "burst": 1}},
            "admin": {"listen": "0.0.0.0:9477", "token": "0123456789abcdef0123", "max_connections": 16},
            "alerts": {"rules": [{"name": "d", "type": "drop_ratio", "above": 0.1, "clear_below": 0.05, "for": "1m"},
                                 {"name": "m", "type": "map_fill", "above": 0.8, "map": "rl_bans"},
                                 {"name": "x", "type": "program_detached", "for": "0s"}],
                       "webhooks": [{"url": "http://127.0.0.1:8080/hooks/rlgate", "timeout": "2s"}, {"url": "http://[::1]/"}],
                       "queue": 10, "max_backoff": "30s"}})",
        "t.json");
    EXPECT_EQ(cfg.admin.listen, "0.0.0.0:9477");
    EXPECT_EQ(cfg.admin.max_connections, 16U);
    ASSERT_EQ(cfg.alerts.rules.size(), 3U);
    EXPECT_EQ(cfg.alerts.rules[0].clear_below, 0.05);
    EXPECT_EQ(cfg.alerts.rules[0].for_ns, 60'000'000'000ULL);
    EXPECT_EQ(cfg.alerts.rules[1].map, "rl_bans");
    EXPECT_EQ(cfg.alerts.rules[2].for_ns, 0U);
    EXPECT_EQ(cfg.alerts.webhooks[0].host, "127.0.0.1");
    EXPECT_EQ(cfg.alerts.webhooks[0].port, 8080);
    EXPECT_EQ(cfg.alerts.webhooks[0].path, "/hooks/rlgate");
    EXPECT_EQ(cfg.alerts.webhooks[1].host, "[::1]");
    EXPECT_EQ(cfg.alerts.webhooks[1].port, 80);
    EXPECT_EQ(cfg.alerts.queue, 10U);
}

TEST(ConfigObservability, RejectsWhatWouldSurpriseAnOperator) {
    auto field_of = [](const std::string& extra) {
        try {
            config::parse_config(R"({"tiers": {"d": {"pps": 1, "burst": 1}}, )" + extra + "}", "t.json");
        } catch (const config::ConfigError& e) {
            return e.field();
        }
        return std::string("<accepted>");
    };
    EXPECT_EQ(field_of(R"("admin": {"listen": "0.0.0.0:9477"})"), "admin.token") << "beyond loopback without a token";
    EXPECT_EQ(field_of(R"("admin": {"listen": "127.0.0.1"})"), "admin.listen");
    EXPECT_EQ(field_of(R"("admin": {"listen": "host.example:9477", "token": "0123456789abcdef0123"})"), "admin.listen")
        << "names fail at --check, not at start";
    EXPECT_EQ(field_of(R"("admin": {"listen": "[::1]:9477"})"), "<accepted>");
    EXPECT_EQ(field_of(R"("admin": {"listen": "127.1.2.3:9477"})"), "<accepted>");
    EXPECT_EQ(field_of(R"("admin": {"token": "short"})"), "admin.token");
    EXPECT_EQ(field_of(R"("admin": {"listen": ""})"), "<accepted>") << "off";
    EXPECT_EQ(field_of(R"("alerts": {"webhooks": [{"url": "https://hooks.example/x"}]})"), "alerts.webhooks[0].url");
    EXPECT_EQ(field_of(R"("alerts": {"webhooks": [{"url": "http://host:99999/"}]})"), "alerts.webhooks[0].url");
    EXPECT_EQ(field_of(R"("alerts": {"rules": [{"name": "a", "type": "cpu", "above": 1}]})"), "alerts.rules[0].type");
    EXPECT_EQ(field_of(R"("alerts": {"rules": [{"name": "a", "type": "drop_ratio", "above": 5}]})"), "alerts.rules[0].above");
    EXPECT_EQ(field_of(R"("alerts": {"rules": [{"name": "a", "type": "drop_ratio"}]})"), "alerts.rules[0].above");
    EXPECT_EQ(field_of(R"("alerts": {"rules": [{"name": "a", "type": "ban_rate", "above": 5, "clear_below": 9}]})"),
              "alerts.rules[0].clear_below");
    EXPECT_EQ(field_of(R"("alerts": {"rules": [{"name": "a", "type": "ban_rate", "above": 5}, {"name": "a", "type": "ban_rate", "above": 5}]})"),
              "alerts.rules[1].name");
}

}  // namespace
}  // namespace rlgate
