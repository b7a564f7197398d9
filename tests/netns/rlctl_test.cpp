// SPDX-License-Identifier: BSD-2-Clause
// rlctl against a live daemon: tables for people, --json for scripts, and
// exit codes 0 / 1 (error) / 2 (usage).
#include <gtest/gtest.h>

#include "netns/daemon_fixture.hpp"

namespace rlgate::testing {
namespace {

class RlctlTest : public DaemonTest {
protected:
    void SetUp() override {
        DaemonTest::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        daemon_->write_config(base_config({{"default", tier(100, 20)},
                                           {"premium", {{"pps", 1000}, {"burst", 100}, {"members", {"10.99.0.0/28"}}}}}));
        daemon_->start();
    }
};

TEST_F(RlctlTest, StatusInBothForms) {
    const auto table = rlctl("status");
    EXPECT_NE(table.find("policy generation 1 from " + daemon_->config_path()), std::string::npos) << table;
    EXPECT_NE(table.find("INTERFACE  IFINDEX  MODE"), std::string::npos) << table;
    EXPECT_NE(table.find("native"), std::string::npos) << table;
    EXPECT_NE(table.find("rl_buckets"), std::string::npos) << table;
    const auto j = rlctl_json("status");
    EXPECT_EQ(j["interfaces"][0]["name"], "vb");
    EXPECT_EQ(j["interfaces"][0]["mode"], "native");
    EXPECT_EQ(j["policy_generation"], 1);
    EXPECT_EQ(j["last_reload"]["ok"], true);
    EXPECT_EQ(j["maps"][0]["name"], "rl_buckets");
    EXPECT_EQ(j["adopted"], false);
}

TEST_F(RlctlTest, StatsTopAndEventsShowAFlood) {
    std::string events;
    std::thread follower([&] { events = rlctl("--json events --count 2 --for 5000"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    json top;
    std::thread topper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        top = rlctl_json("top -n 3 --interval 500");
    });
    const auto f = flood("10.210.0.1", 4, 20000, 1.5);
    topper.join();
    follower.join();

    ASSERT_EQ(top["talkers"].size(), 3U) << top.dump();
    EXPECT_EQ(top["talkers"][0]["source"].get<std::string>().rfind("10.210.0.", 0), 0U) << top.dump();
    EXPECT_NEAR(top["talkers"][0]["dropped_pps"].get<double>() + top["talkers"][0]["passed_pps"].get<double>(), 5000, 1000);
    EXPECT_EQ(top["talkers"][0]["tier"], "default");

    // Two sampled drops arrive as JSON lines.
    ASSERT_NE(events.find('\n'), std::string::npos) << events;
    const auto first = json::parse(events.substr(0, events.find('\n')));
    EXPECT_EQ(first["event"], "drop");
    EXPECT_EQ(first["reason"], "rate");
    EXPECT_EQ(first["interface"], "vb");

    const auto s = rlctl_json("stats");
    EXPECT_EQ(s["passed"]["packets"].get<std::uint64_t>() + s["dropped"]["packets"].get<std::uint64_t>(),
              f["sent"].get<std::uint64_t>());
    const auto table = rlctl("stats");
    EXPECT_NE(table.find("REASON"), std::string::npos) << table;
    EXPECT_NE(table.find("rate          drop"), std::string::npos) << table;
    const auto top_table = rlctl("top -n 2 --interval 100");
    EXPECT_NE(top_table.find("no traffic"), std::string::npos) << "flood over: " << top_table;

    // One flooding source as the dataplane keeps it.
    const auto src = rlctl_json("source 10.210.0.1");
    ASSERT_EQ(src["entries"].size(), 1U) << src.dump();
    const auto& e = src["entries"][0];
    EXPECT_EQ(e["entry"], "10.210.0.1/32");
    EXPECT_EQ(e["state"], "limited");
    EXPECT_EQ(e["tier"], "default");
    EXPECT_EQ(e["rule"], "none") << "no L4 rule matched";
    EXPECT_GT(e["dropped"].get<std::uint64_t>(), e["passed"].get<std::uint64_t>()) << "over its 100 pps";
    EXPECT_GE(e["passed"].get<std::uint64_t>(), 20U) << "at least its burst";
    EXPECT_LT(e["last_seen_s"].get<double>(), 10.0);
    const auto src_table = rlctl("source 10.210.0.1");
    EXPECT_NE(src_table.find("10.210.0.1/32"), std::string::npos) << src_table;
    EXPECT_NE(rlctl("source 10.211.0.1").find("is not tracked"), std::string::npos);
    int code = 0;
    EXPECT_NE(rlctl("source not-an-address", &code).find("not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(code, 0);
}

TEST_F(RlctlTest, PolicyListsTiersAndBansInBothForms) {
    int code = 0;
    EXPECT_NE(rlctl("allow add 192.0.2.0/24", &code).find("added to the allowlist"), std::string::npos);
    EXPECT_EQ(code, 0);
    rlctl("deny add 198.18.0.0/15", &code);
    EXPECT_EQ(code, 0);
    rlctl("tier set 203.0.113.0/24 premium", &code);
    EXPECT_EQ(code, 0);
    EXPECT_EQ(rlctl_json("allow list")["entries"][0]["cidr"], "192.0.2.0/24");
    EXPECT_EQ(rlctl_json("allow list")["entries"][0]["origin"], "runtime");
    const auto pol = rlctl_json("policy show");
    EXPECT_EQ(pol["generation"], 4);
    EXPECT_EQ(pol["tiers"][1]["name"], "premium");
    EXPECT_EQ(pol["tiers"][1]["limit"]["pps"], 1000);
    EXPECT_EQ(pol["deny"][0]["cidr"], "198.18.0.0/15");
    const auto pol_table = rlctl("policy show");
    EXPECT_NE(pol_table.find("premium"), std::string::npos) << pol_table;
    EXPECT_NE(pol_table.find("203.0.113.0/24"), std::string::npos) << pol_table;
    const auto tiers = rlctl_json("tier list")["tiers"];
    EXPECT_EQ(tiers[1]["members"], 2);
    EXPECT_NE(rlctl("tier list").find("premium"), std::string::npos);
    rlctl("tier set 203.0.113.0/24 gold", &code);
    EXPECT_EQ(code, 1) << "unknown tier";

    rlctl("ban add 203.0.113.0/24 --ttl 10m", &code);
    EXPECT_EQ(code, 0);
    const auto bans = rlctl_json("ban list")["bans"];
    ASSERT_EQ(bans.size(), 1U);
    EXPECT_EQ(bans[0]["source"], "203.0.113.0/24");
    EXPECT_EQ(bans[0]["origin"], "manual");
    EXPECT_NEAR(bans[0]["remaining_s"].get<double>(), 600, 5);
    EXPECT_NE(rlctl("ban list").find("203.0.113.0/24  manual  9m5"), std::string::npos) << rlctl("ban list");
    rlctl("ban del 203.0.113.0/24", &code);
    EXPECT_EQ(code, 0);
    rlctl("ban del 203.0.113.0/24", &code);
    EXPECT_EQ(code, 1) << "not banned any more";

    // Runtime entries survive a reload and a restart.
    daemon_->call("reload");
    daemon_->kill9();
    daemon_->start();
    EXPECT_EQ(rlctl_json("deny list")["entries"][0]["cidr"], "198.18.0.0/15");
    rlctl("deny del 198.18.0.0/15", &code);
    EXPECT_EQ(code, 0);
    EXPECT_TRUE(rlctl_json("deny list")["entries"].empty());
}

TEST_F(RlctlTest, PolicyApplyLastsUntilTheNextReload) {
    int code = 0;
    auto cfg = base_config({{"default", tier(5, 5)}, {"premium", tier(1000, 100)}});
    cfg["rules"] = {{{"name", "dns"}, {"proto", "udp"}, {"ports", 53}, {"pps", 1}, {"burst", 1}}};
    const auto file = (daemon_->dir() / "trial.json").string();
    std::ofstream(file) << cfg.dump();
    const auto out = rlctl("policy apply " + file, &code);
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("generation 2"), std::string::npos) << out;
    auto pol = rlctl_json("policy show");
    EXPECT_EQ(pol["tiers"][0]["limit"]["pps"], 5);
    EXPECT_EQ(pol["rules"][0]["name"], "dns");
    EXPECT_NE(pol["source"].get<std::string>().find(file), std::string::npos);
    EXPECT_NE(rlctl("policy show").find("dns   udp"), std::string::npos) << rlctl("policy show");

    std::ofstream(file) << R"({"tiers": {"default": {"pps": 5}}})";  // burst missing
    const auto rejected = rlctl("policy apply " + file, &code);
    EXPECT_EQ(code, 1);
    EXPECT_NE(rejected.find("tiers.default.burst"), std::string::npos) << rejected;
    EXPECT_EQ(rlctl_json("status")["policy_generation"], 2) << "a rejected apply changes nothing";

    rlctl("reload", &code);
    EXPECT_EQ(code, 0);
    pol = rlctl_json("policy show");
    EXPECT_EQ(pol["tiers"][0]["limit"]["pps"], 100) << "back to the daemon's config file";
    EXPECT_TRUE(pol["rules"].empty());

    const auto v = rlctl_json("version");
    EXPECT_EQ(v["rlctl"], v["rlgated"]["version"]);
    EXPECT_EQ(v["rlgated"]["protocol"], 1);
}

TEST_F(RlctlTest, AttachDetachAndModes) {
    int code = 0;
    rlctl("attach vb", &code);
    EXPECT_EQ(code, 1) << "already attached";
    rlctl("detach vb", &code);
    EXPECT_EQ(code, 0);
    EXPECT_TRUE(rlctl_json("status")["interfaces"].empty());
    EXPECT_EQ(shell("ip -n " + pair_->ns_b() + " -d link show vb").find("prog/xdp"), std::string::npos);
    // Interface names resolve in the daemon's namespace.
    EXPECT_NE(rlctl("attach vb --mode generic", &code).find("generic mode"), std::string::npos);
    EXPECT_EQ(code, 0);
    EXPECT_EQ(rlctl_json("status")["interfaces"][0]["mode"], "generic");
    EXPECT_NE(shell("ip -n " + pair_->ns_b() + " -d link show vb").find("xdpgeneric"), std::string::npos);
    rlctl("attach no-such-if0", &code);
    EXPECT_EQ(code, 1);

    // Without an interface: everything goes, the daemon stops.
    EXPECT_NE(rlctl("detach", &code).find("rlgated stopping"), std::string::npos);
    EXPECT_EQ(code, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    EXPECT_FALSE(std::filesystem::exists(daemon_->pin_dir()));
    EXPECT_EQ(shell("ip -n " + pair_->ns_b() + " -d link show vb").find("xdp"), std::string::npos);
    const auto out = rlctl("status", &code);
    EXPECT_EQ(code, 1);
    EXPECT_NE(out.find("rlgated is not running"), std::string::npos) << out;
}

TEST_F(RlctlTest, ExitCodesAndMessages) {
    int code = 0;
    rlctl("frobnicate", &code);
    EXPECT_EQ(code, 2);
    rlctl("ban add", &code);
    EXPECT_EQ(code, 2) << "missing CIDR";
    rlctl("ban add 10.0.0.0/8 --ttl soon", &code);
    EXPECT_EQ(code, 2);
    const auto bad = rlctl("allow add 10.0.0.1/8", &code);
    EXPECT_EQ(code, 1);
    EXPECT_NE(bad.find("host bits"), std::string::npos) << bad;
    const auto json_err = rlctl("--json deny del 10.9.9.9", &code);
    EXPECT_EQ(code, 1);
    EXPECT_NE(json_err.find("\"code\": \"not_found\""), std::string::npos) << json_err;
    const auto nobody = shell("setpriv --reuid=65534 --regid=65534 --clear-groups " + std::string(RLCTL_PATH) +
                                  " --socket " + daemon_->socket() + " status",
                              &code);
    EXPECT_EQ(WEXITSTATUS(code), 1);
    EXPECT_NE(nobody.find("must run as root"), std::string::npos) << nobody;
    const auto help = rlctl("--help", &code);
    EXPECT_EQ(code, 0);
    EXPECT_NE(help.find("events"), std::string::npos);

    // validate needs no daemon.
    std::ofstream(daemon_->dir() / "bad.json") << R"({"tiers": {"default": {"pps": "many"}}})";
    const auto v = shell(std::string(RLCTL_PATH) + " --socket /nonexistent policy validate " + (daemon_->dir() / "bad.json").string(),
                         &code);
    EXPECT_EQ(WEXITSTATUS(code), 1);
    EXPECT_NE(v.find("tiers.default.pps"), std::string::npos) << v;
    shell(std::string(RLCTL_PATH) + " policy validate " + daemon_->config_path(), &code);
    EXPECT_EQ(WEXITSTATUS(code), 0);
}

}  // namespace
}  // namespace rlgate::testing
