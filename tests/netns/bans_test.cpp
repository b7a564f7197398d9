// SPDX-License-Identifier: BSD-2-Clause
// Bans end to end: the program bans a flooding source by itself, the daemon
// records the violation and lengthens the next ban of a repeat offender,
// bans expire, survive restarts, refuse bad input and allowlisted sources,
// and rlgate-l7's reports arrive through their own rate-limited socket.
#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/net/ip_address.hpp"
#include "dataplane/dataplane.hpp"
#include "netns/daemon_fixture.hpp"
#include "support/l7_process.hpp"

namespace rlgate::testing {
namespace {

class BansTest : public DaemonTest {
protected:
    rl_bucket bucket_of(const char* source) {
        const auto key = bucket_key(*net::IpAddress::parse(source), 128, 0);
        const auto b = BucketSets::open_pinned(daemon_->pin_dir()).find(key);
        EXPECT_TRUE(b.has_value()) << source;
        return b.value_or(rl_bucket{});
    }
    json ban_of(const std::string& source) {
        const auto list = daemon_->call("ban.list");  // not in the for: the temporary would die first
        for (const auto& b : list["bans"])
            if (b["source"] == source)
                return b;
        return nullptr;
    }
};

TEST_F(BansTest, AutoBanExpiresAndARepeatOffenderGetsALongerBan) {
    auto cfg = base_config({{"default",
                             {{"pps", 100},
                              {"burst", 20},
                              {"autoban", {{"drops", 100}, {"window", "10s"}, {"ban", "2s"}, {"repeat_factor", 3}}}}}});
    const auto log = (daemon_->dir() / "violations.jsonl").string();
    cfg["bans"] = {{"violation_log", {{"format", "json"}, {"path", log}}}};
    daemon_->write_config(cfg);
    daemon_->start();

    flood("10.211.0.1", 1, 5000, 0.5);
    auto b = ban_of("10.211.0.1/32");
    ASSERT_FALSE(b.is_null()) << daemon_->call("ban.list").dump();
    EXPECT_EQ(b["origin"], "kernel");
    EXPECT_EQ(b["offence"], 1);
    EXPECT_EQ(b["tier"], "default");
    EXPECT_GT(b["remaining_s"].get<double>(), 1.0);
    EXPECT_LE(b["remaining_s"].get<double>(), 2.0);
    const auto passed_when_banned = bucket_of("10.211.0.1").passed;
    EXPECT_LE(passed_when_banned, 20U + 100U) << "burst plus what the window let through";

    flood("10.211.0.1", 1, 5000, 0.3);
    EXPECT_EQ(bucket_of("10.211.0.1").passed, passed_when_banned) << "nothing passes while banned";
    EXPECT_EQ(bucket_of("10.211.0.1").state, RL_STATE_BANNED);
    EXPECT_GT(ban_of("10.211.0.1/32")["hits"].get<std::uint64_t>(), 1000U);

    // The ban runs out and the daemon reaps it.
    for (int i = 0; i < 60 && !ban_of("10.211.0.1/32").is_null(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(ban_of("10.211.0.1/32").is_null()) << "not reaped";

    // Back: limited at first (its burst passes), then banned again, three times longer.
    flood("10.211.0.1", 1, 5000, 0.1);
    const auto passed_after = bucket_of("10.211.0.1").passed - passed_when_banned;
    EXPECT_GE(passed_after, 20U) << "after expiry the source is limited, not banned";
    EXPECT_LE(passed_after, 40U);
    b = ban_of("10.211.0.1/32");
    ASSERT_FALSE(b.is_null());
    EXPECT_EQ(b["offence"], 2);
    EXPECT_GT(b["remaining_s"].get<double>(), 4.5);
    EXPECT_LE(b["remaining_s"].get<double>(), 6.0);

    const auto history = daemon_->call("ban.history", {{"cidr", "10.211.0.0/24"}})["violations"];
    ASSERT_EQ(history.size(), 2U);
    EXPECT_EQ(history[0]["offence"], 2);  // newest first
    EXPECT_EQ(history[0]["ban_s"], 6.0);
    EXPECT_EQ(history[1]["ban_s"], 2.0);
    EXPECT_EQ(history[0]["tier"], "default");
    EXPECT_EQ(history[0]["rule"], "none");
    EXPECT_EQ(history[0]["reason"], "rate: over the default limit by 100 packets within 10 s");

    std::ifstream in(log);
    std::vector<json> lines;
    for (std::string line; std::getline(in, line);)
        lines.push_back(json::parse(line));
    ASSERT_EQ(lines.size(), 2U);
    EXPECT_EQ(lines[1]["type"], "violation");
    EXPECT_EQ(lines[1]["source"], "10.211.0.1/32");
    EXPECT_EQ(lines[1]["offence"], 2);
    EXPECT_EQ(lines[1]["origin"], "kernel");

    // A restart keeps the ban and the history.
    daemon_->kill9();
    daemon_->start();
    b = ban_of("10.211.0.1/32");
    ASSERT_FALSE(b.is_null());
    EXPECT_EQ(b["offence"], 2);
    EXPECT_EQ(daemon_->call("ban.history")["violations"].size(), 2U);
}

TEST_F(BansTest, ASourceThatFloodsThroughItsBanIsEscalatedAtOnce) {
    daemon_->write_config(base_config({{"default",
                                        {{"pps", 100},
                                         {"burst", 20},
                                         {"autoban", {{"drops", 100}, {"window", "10s"}, {"ban", "1s"}, {"repeat_factor", 3}}}}}}));
    daemon_->start();
    // No pause: the first ban runs out under the flood and the kernel bans again at once,
    // in the same map entry, before the daemon could reap the old one.
    flood("10.213.0.1", 1, 5000, 2.0);
    const auto history = daemon_->call("ban.history", {{"cidr", "10.213.0.1/32"}})["violations"];
    ASSERT_GE(history.size(), 2U) << history.dump();
    EXPECT_EQ(history[0]["offence"], 2);
    EXPECT_EQ(history[0]["ban_s"], 3.0) << "the second ban of a repeat offender is longer";
    const auto b = ban_of("10.213.0.1/32");
    ASSERT_FALSE(b.is_null());
    EXPECT_EQ(b["offence"], 2);
    EXPECT_GT(b["remaining_s"].get<double>(), 1.5);
}

TEST_F(BansTest, ManualBansRefuseBadInputAndAllowlistedSources) {
    auto cfg = base_config({{"default", tier(100, 20)}});
    cfg["allow"] = {"10.50.0.0/16"};
    daemon_->write_config(cfg);
    daemon_->start();
    int code = 0;
    auto out = rlctl("ban add 10.50.1.0/24", &code);
    EXPECT_EQ(code, 1);
    EXPECT_NE(out.find("is on the allowlist (10.50.0.0/16)"), std::string::npos) << out;
    out = rlctl("ban add 300.1.1.1", &code);
    EXPECT_EQ(code, 1) << out;
    out = rlctl("ban add 10.0.0.1/8", &code);
    EXPECT_EQ(code, 1);
    EXPECT_NE(out.find("host bits"), std::string::npos) << out;
    for (const char* ttl : {"-5m", "soon", "0s", "5000d", "10"}) {
        rlctl(std::string("ban add 203.0.113.0/24 --ttl ") + ttl, &code);
        EXPECT_EQ(code, 2) << ttl;
    }
    out = rlctl("ban add 2001:db8::1", &code);
    EXPECT_EQ(code, 1);
    EXPECT_NE(out.find("/64 or shorter"), std::string::npos) << out;
    try {
        daemon_->call("ban.add", {{"cidr", "203.0.113.0/24"}, {"ttl_s", -5}});
        ADD_FAILURE() << "negative ttl accepted";
    } catch (const cli::CliError& e) {
        EXPECT_EQ(e.daemon_code(), "invalid_argument");
    }
    EXPECT_TRUE(daemon_->call("ban.list")["bans"].empty()) << "nothing was banned by bad requests";
    // A batch of one (the last chunk of a long file) reports its refusal in failed[]
    // like any batch; the single "cidr" form refuses with an error.
    const auto batch = daemon_->call("ban.add", {{"cidrs", {"10.50.9.0/24"}}});
    ASSERT_EQ(batch["failed"].size(), 1U) << batch.dump();
    EXPECT_EQ(batch["failed"][0]["cidr"], "10.50.9.0/24");
    EXPECT_EQ(batch["added"], 0);
    const auto not_banned = daemon_->call("ban.del", {{"cidrs", {"198.18.7.0/24"}}});
    ASSERT_EQ(not_banned["failed"].size(), 1U) << not_banned.dump();
    EXPECT_EQ(not_banned["removed"], 0);

    out = rlctl("ban add 203.0.113.0/24 --ttl 10m --reason 'port scanner'", &code);
    EXPECT_EQ(code, 0) << out;
    out = rlctl("ban add 203.0.113.0/24 --ttl 20m --reason 'port scanner, again'", &code);
    EXPECT_EQ(code, 0);
    EXPECT_NE(out.find("already banned: updated"), std::string::npos) << out;
    auto bans = daemon_->call("ban.list")["bans"];
    ASSERT_EQ(bans.size(), 1U);
    EXPECT_EQ(bans[0]["reason"], "port scanner, again");
    EXPECT_GT(bans[0]["remaining_s"].get<double>(), 1190);
    EXPECT_NE(rlctl("ban list").find("port scanner, again"), std::string::npos);

    // A damaged state file is set aside; the kernel's bans stay in force.
    daemon_->kill9();
    std::ofstream(daemon_->state_dir() + "/bans.json") << "{\"format\": \"rlgate-bans\", \"version\": 1, \"bans\": [";
    daemon_->start();
    EXPECT_NE(daemon_->log_text().find("set aside"), std::string::npos);
    bool aside = false;
    for (const auto& f : std::filesystem::directory_iterator(daemon_->state_dir()))
        aside = aside || f.path().filename().string().starts_with("bans.json.corrupt-");
    EXPECT_TRUE(aside);
    bans = daemon_->call("ban.list")["bans"];
    ASSERT_EQ(bans.size(), 1U);
    EXPECT_EQ(bans[0]["source"], "203.0.113.0/24");
    EXPECT_EQ(bans[0]["origin"], "manual");
    EXPECT_GT(flood("203.0.113.9", 1, 1000, 0.2)["sent"].get<std::uint64_t>(), 100U);
    const auto stats = daemon_->call("stats");
    std::uint64_t ban_drops = 0;
    for (const auto& r : stats["by_reason"])
        if (r["reason"] == "ban")
            ban_drops += r["packets"].get<std::uint64_t>();
    EXPECT_GT(ban_drops, 100U);
}

TEST_F(BansTest, BansAndHistorySurviveAReboot) {
    daemon_->write_config(base_config({{"default", tier(100, 20)}}));
    daemon_->start();
    int code = 0;
    rlctl("ban add 203.0.113.0/24 --ttl 10m --reason 'scanner'", &code);
    ASSERT_EQ(code, 0);
    rlctl("ban add 198.51.100.0/24 --reason 'forever'", &code);
    ASSERT_EQ(code, 0);
    // A reboot: the daemon dies and the pinned maps are gone with the bpffs.
    daemon_->kill9();
    shell(std::string(RLGATED_PATH) + " --cleanup --config " + daemon_->config_path());
    ASSERT_FALSE(std::filesystem::exists(daemon_->pin_dir()));
    daemon_->start();
    EXPECT_FALSE(daemon_->call("status")["adopted"].get<bool>());
    const auto list = daemon_->call("ban.list");
    ASSERT_EQ(list["bans"].size(), 2U) << list.dump();
    for (const auto& b : list["bans"]) {
        if (b["source"] == "203.0.113.0/24") {
            EXPECT_EQ(b["reason"], "scanner");
            EXPECT_GT(b["remaining_s"].get<double>(), 590);
            EXPECT_LE(b["remaining_s"].get<double>(), 600);
        } else {
            EXPECT_EQ(b["source"], "198.51.100.0/24");
            EXPECT_TRUE(b["remaining_s"].is_null()) << "until removed";
        }
    }
    flood("203.0.113.9", 1, 1000, 0.2);
    const auto stats = daemon_->call("stats");
    std::uint64_t ban_drops = 0;
    for (const auto& r : stats["by_reason"])
        if (r["reason"] == "ban")
            ban_drops += r["packets"].get<std::uint64_t>();
    EXPECT_GT(ban_drops, 100U) << "the restored ban is enforced";
}

TEST_F(BansTest, AHundredThousandBansInBoundedTimeAndAFullMapSaysSo) {
    auto cfg = base_config({{"default", tier(100, 20)}});
    cfg["maps"] = {{"bans", 65536}};
    daemon_->write_config(cfg);
    daemon_->start();
    // 100,000 /32s from 100.64.0.0 on, through rlctl --file.
    const auto file = (daemon_->dir() / "bans.txt").string();
    {
        std::ofstream out(file);
        out << "# generated\n";
        for (std::uint32_t i = 0; i < 100'000; ++i)
            out << net::IpAddress::from_v4(0x64400000U + i).to_string() << "\n";
    }
    int code = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = rlctl("--timeout 60000 ban add --file " + file + " --ttl 1h", &code);
    const double add_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(code, 1) << "the map cannot hold them all";
    EXPECT_NE(out.find("the ban map is full (65536 entries"), std::string::npos) << out.substr(0, 2000);
    EXPECT_LT(add_s, 30.0);

    const auto t1 = std::chrono::steady_clock::now();
    const auto list = daemon_->call("ban.list");
    const double list_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    EXPECT_EQ(list["bans"].size(), 65536U);
    EXPECT_EQ(list["capacity"], 65536);
    EXPECT_LT(list_s, 30.0);
    const auto st = daemon_->call("status");
    EXPECT_EQ(st["maps"][1]["name"], "rl_bans");
    EXPECT_EQ(st["maps"][1]["entries"], 65536);
    std::cout << "[ figures ] 100,000 bans offered, 65,536 taken in " << add_s << " s; ban list in " << list_s << " s\n";
}

TEST_F(BansTest, L7ReportsArriveThroughTheirOwnRateLimitedSocket) {
    auto cfg = base_config({{"default", tier(100, 20)}});
    cfg["allow"] = {"10.60.0.0/16"};
    cfg["bans"] = {{"l7_reports_per_sec", 1}, {"l7_burst", 5}, {"l7_default_ttl", "10m"}, {"l7_max_ttl", "1h"}};
    daemon_->write_config(cfg);
    daemon_->start();
    EXPECT_EQ(shell("stat -c %a " + daemon_->escalation_socket()), "600\n") << "no group configured: root only";
    RawConnection c(daemon_->escalation_socket());
    ASSERT_TRUE(c.connected());
    c.send(R"({"v":1,"cmd":"status"})" "\n");
    EXPECT_EQ(c.reply()["error"]["code"], "unknown_command") << "only reports on this socket";
    c.send(R"({"v":1,"cmd":"policy"})" "\n");
    const auto policy = c.reply();
    EXPECT_EQ(policy["result"]["allow"], json::array({"10.60.0.0/16"})) << policy.dump();

    auto report = [&](const std::string& source, const std::string& reason) {
        c.send(json{{"v", 1}, {"cmd", "escalate"}, {"args", {{"source", source}, {"reason", reason}}}}.dump() + "\n");
        return c.reply();
    };
    auto r = report("10.212.0.1", "credential stuffing");
    ASSERT_EQ(r["ok"], true) << r.dump();
    EXPECT_EQ(r["result"]["ban_s"], 600.0);
    EXPECT_EQ(r["result"]["offence"], 1);
    r = report("10.212.0.1", "credential stuffing");
    EXPECT_EQ(r["result"]["offence"], 2);
    EXPECT_EQ(r["result"]["ban_s"], 3600.0) << "10 x 600 s, capped at l7_max_ttl";
    EXPECT_EQ(report("10.0.0.0/8", "everyone")["error"]["code"], "invalid_argument");
    EXPECT_EQ(report("10.60.1.1", "internal")["error"]["code"], "invalid_argument");
    EXPECT_EQ(report("10.212.0.2", "")["error"]["code"], "invalid_argument");
    EXPECT_EQ(report("10.212.0.3", "flood")["error"]["code"], "rate_limited") << "burst of 5 used up";
    // The other commands have a budget of their own (20/s, burst 40), not unlimited.
    int limited = 0;
    for (int i = 0; i < 60; ++i) {
        c.send(R"({"v":1,"cmd":"version"})" "\n");
        limited += c.reply()["error"]["code"] == "rate_limited";
    }
    EXPECT_GT(limited, 0) << "a peer looping on version/policy/report is slowed down";
    EXPECT_LT(limited, 30);

    const auto b = ban_of("10.212.0.1/32");
    ASSERT_FALSE(b.is_null());
    EXPECT_EQ(b["origin"], "l7");
    EXPECT_EQ(b["reason"], "credential stuffing");
    EXPECT_NE(daemon_->log_text().find("violation source=10.212.0.1/32 origin=l7"), std::string::npos);
    EXPECT_TRUE(ban_of("10.212.0.3/32").is_null());
}


TEST_F(BansTest, RlgateL7EscalatesAPersistentAbuserIntoAKernelBan) {
    auto cfg = base_config({{"default", tier(100, 20)}});
    cfg["daemon"] = {{"escalation_group", "nogroup"}};  // rlgate-l7 runs as nobody:nogroup here
    cfg["bans"] = {{"l7_default_ttl", "10m"}, {"l7_max_ttl", "1h"}};
    daemon_->write_config(cfg);
    daemon_->start();

    L7Process l7("escalate");
    l7.write_config({{"mode", "forward_auth"},
                     {"trusted_proxies", {"127.0.0.1/32"}},
                     {"anonymous_tier", "anonymous"},
                     {"tiers", {{"anonymous", {{"limits", {{{"limit", 2}, {"per", "1m"}}}}}}}},
                     {"escalation", {{"socket", daemon_->escalation_socket()}, {"after", 3}, {"ban", "5m"}}}});
    l7.start();
    for (int i = 0; i < 8; ++i)
        l7.check("/login", {{"X-Forwarded-For", "10.213.0.9"}}, "POST");
    json b;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline && (b = ban_of("10.213.0.9/32")).is_null())
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_FALSE(b.is_null()) << "rlgate-l7 log:\n" << l7.log_text();
    EXPECT_EQ(b["origin"], "l7");
    EXPECT_NE(b["reason"].get<std::string>().find("rlgate-l7"), std::string::npos) << b.dump();
    EXPECT_NE(l7.log_text().find("rlgated banned"), std::string::npos) << l7.log_text();
    // The ban is in the kernel's map, where XDP drops the source's packets.
    // LPM key {prefixlen 136 (8 + 96 + 32), slot 0x80 (0, IPv4), ::ffff:10.213.0.9, pad} (docs/bpftool.md).
    int status = 0;
    const auto out = shell("bpftool map lookup pinned " + daemon_->pin_dir() +
                               "/rl_bans key hex 88 00 00 00 80 00 00 00 00 00 00 00 00 00 00 ff ff 0a d5 00 09 00 00 00",
                           &status);
    EXPECT_EQ(status, 0) << out;
}


TEST_F(BansTest, RlgateL7FollowsRlgatedsAllowlistAndTierPrefixes) {
    auto premium_tier = tier(1000, 100);
    premium_tier["members"] = {"10.215.0.0/16"};
    auto cfg = base_config({{"default", tier(100, 20)}, {"premium", premium_tier}});
    cfg["default_tier"] = "default";
    cfg["daemon"] = {{"escalation_group", "nogroup"}};
    cfg["allow"] = {"10.214.0.0/16"};
    daemon_->write_config(cfg);
    daemon_->start();

    L7Process l7("follow");
    l7.write_config({{"mode", "forward_auth"},
                     {"trusted_proxies", {"127.0.0.1/32"}},
                     {"anonymous_tier", "anonymous"},
                     {"tiers",
                      {{"anonymous", {{"limits", {{{"limit", 1}, {"per", "1m"}}}}}},
                       {"premium", {{"limits", {{{"limit", 50}, {"per", "1m"}}}}}}}},
                     {"escalation", {{"socket", daemon_->escalation_socket()}, {"enabled", false}}},
                     {"from_rlgated", {{"allowlist", true}, {"tiers", true}, {"refresh", "1s"}}}});
    l7.start();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline && l7.log_text().find("following rlgated's policy") == std::string::npos)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_NE(l7.log_text().find("following rlgated's policy"), std::string::npos) << l7.log_text();

    for (int i = 0; i < 3; ++i) {
        const auto allowed = l7.check("/api", {{"X-Forwarded-For", "10.214.3.4"}});
        EXPECT_EQ(allowed.status, 200) << "rlgated's allowlist bypasses L7 limits";
        EXPECT_FALSE(allowed.headers.contains("x-ratelimit-limit"));
    }
    const auto premium = l7.check("/api", {{"X-Forwarded-For", "10.215.3.4"}});
    EXPECT_EQ(premium.status, 200);
    EXPECT_EQ(premium.headers.at("x-ratelimit-limit"), "50") << "rlgated's premium prefix: the L7 premium tier";
    EXPECT_EQ(l7.check("/api", {{"X-Forwarded-For", "10.216.3.4"}}).headers.at("x-ratelimit-limit"), "1");

    // A runtime change in rlgated reaches rlgate-l7 at its next refresh.
    daemon_->call("tier.set", {{"cidr", "10.216.0.0/16"}, {"tier", "premium"}});
    std::string seen;
    const auto refresh_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < refresh_deadline && seen != "50") {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        const auto r = l7.check("/api", {{"X-Forwarded-For", "10.216.3.4"}});
        seen = r.headers.contains("x-ratelimit-limit") ? r.headers.at("x-ratelimit-limit") : "";
    }
    EXPECT_EQ(seen, "50") << "the change reached rlgate-l7 within a few refreshes (every 1 s)";
}

}  // namespace
}  // namespace rlgate::testing
