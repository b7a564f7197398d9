// SPDX-License-Identifier: BSD-2-Clause
// rlgated as operators run it: a real daemon in a namespace, attached to a
// veth, fed by rlgate-flood from the peer namespace, driven over its control
// socket. Enforcement survives kill -9, a restart adopts buckets and bans,
// reloads change rates without a restart, broken configs change nothing.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/net/ip_address.hpp"
#include "dataplane/dataplane.hpp"
#include "netns/daemon_fixture.hpp"

namespace rlgate::testing {
namespace {

TEST_F(DaemonTest, FloodIsDroppedInProportionWhileALegitimateClientLosesNothing) {
    auto cfg = base_config({{"default", tier(1000, 100)},
                            {"legit", {{"pps", 1000}, {"burst", 100}, {"members", {"10.202.0.1/32"}}}}});
    daemon_->write_config(cfg);
    daemon_->start();
    const auto st = daemon_->call("status");
    ASSERT_EQ(st["interfaces"].size(), 1U);
    EXPECT_EQ(st["interfaces"][0]["mode"], "native");

    json legit;
    std::thread client([&] { legit = flood("10.202.0.1", 1, 200, 2.5); });
    const auto f = flood("10.203.0.1", 20, 100000, 2.0);
    client.join();

    const auto stats = daemon_->call("stats");
    const double expected = 20 * bound(1000, 100, f["seconds"].get<double>());
    const auto passed = static_cast<double>(tier_packets(stats, "default", "pass"));
    const auto dropped = tier_packets(stats, "default", "drop");
    EXPECT_EQ(tier_packets(stats, "default", "pass") + dropped, f["sent"].get<std::uint64_t>());
    EXPECT_NEAR(passed, expected, 0.05 * expected) << "sent " << f.dump();
    EXPECT_GT(dropped, f["sent"].get<std::uint64_t>() / 2) << "the flood was mostly dropped";

    EXPECT_GT(legit["sent"].get<std::uint64_t>(), 400U);
    EXPECT_EQ(tier_packets(stats, "legit", "pass"), legit["sent"].get<std::uint64_t>());
    EXPECT_EQ(tier_packets(stats, "legit", "drop"), 0U) << "the legitimate client lost packets";
}

TEST_F(DaemonTest, KillNineKeepsEnforcingAndTheRestartedDaemonKeepsBansAndBuckets) {
    auto cfg = base_config(
        {{"default", {{"pps", 100}, {"burst", 50}, {"autoban", {{"drops", 200}, {"window", "10s"}, {"ban", "5m"}}}}}});
    daemon_->write_config(cfg);
    daemon_->start();
    flood("10.204.0.1", 5, 20000, 1.0);
    const auto bans_before = daemon_->call("ban.list")["bans"];
    ASSERT_EQ(bans_before.size(), 5U) << bans_before.dump();
    EXPECT_EQ(bans_before[0]["origin"], "kernel");

    // A bucket as the kernel keeps it, read straight from the pinned map.
    const auto key = bucket_key(*net::IpAddress::parse("10.204.0.1"), 128, 0);
    auto read_bucket = [&] {
        const auto b = BucketSets::open_pinned(daemon_->pin_dir()).find(key);
        EXPECT_TRUE(b.has_value());
        return b.value_or(rl_bucket{});
    };
    const rl_bucket bucket_before = read_bucket();
    const auto stats_before = daemon_->call("stats");
    const auto gen_before = daemon_->call("status")["policy_generation"].get<std::uint32_t>();

    daemon_->kill9();
    EXPECT_NE(shell("ip -n " + pair_->ns_b() + " -d link show vb").find("prog/xdp"), std::string::npos)
        << "the pinned link keeps the program attached";
    const auto f = flood("10.205.0.1", 1, 20000, 1.0);  // while no daemon runs

    daemon_->start();
    const auto st = daemon_->call("status");
    EXPECT_TRUE(st["adopted"].get<bool>());
    EXPECT_EQ(st["policy_generation"].get<std::uint32_t>(), gen_before + 1) << "the config is applied again";
    const auto stats_after = daemon_->call("stats");
    const auto new_passed = tier_packets(stats_after, "default", "pass") - tier_packets(stats_before, "default", "pass");
    const auto new_dropped = stats_after["dropped"]["packets"].get<std::uint64_t>() -
                             stats_before["dropped"]["packets"].get<std::uint64_t>();
    EXPECT_EQ(new_passed + new_dropped, f["sent"].get<std::uint64_t>()) << "counters survive the restart";
    EXPECT_LE(static_cast<double>(new_passed), bound(100, 50, f["seconds"].get<double>()) + 1)
        << "the kernel kept limiting while the daemon was dead";

    const auto bans_after = daemon_->call("ban.list")["bans"];
    for (const auto& b : bans_before)
        EXPECT_NE(bans_after.dump().find(b["source"].get<std::string>()), std::string::npos) << b.dump();
    const rl_bucket bucket_after = read_bucket();
    EXPECT_EQ(bucket_after.pkt_tat_q, bucket_before.pkt_tat_q);
    EXPECT_EQ(bucket_after.dropped, bucket_before.dropped);
    EXPECT_EQ(bucket_after.state, RL_STATE_BANNED);
}

TEST_F(DaemonTest, ReloadChangesATierRateWithoutRestartAndLosesNoLegitimatePacket) {
    const json legit_tier = {{"pps", 1000}, {"burst", 100}, {"members", {"10.202.0.1/32"}}};
    daemon_->write_config(base_config({{"default", tier(100, 20)}, {"legit", legit_tier}}));
    daemon_->start();
    const auto pid = daemon_->call("status")["pid"];
    const auto gen1 = daemon_->call("status")["policy_generation"].get<std::uint32_t>();

    json legit;
    std::thread client([&] { legit = flood("10.202.0.1", 1, 100, 4.0); });
    const auto a = flood("10.206.0.1", 1, 5000, 1.0);
    const auto stats_a = daemon_->call("stats");
    const auto passed_a = tier_packets(stats_a, "default", "pass");
    EXPECT_NEAR(static_cast<double>(passed_a), bound(100, 20, a["seconds"].get<double>()),
                0.05 * bound(100, 20, a["seconds"].get<double>()));

    daemon_->write_config(base_config({{"default", tier(1000, 20)}, {"legit", legit_tier}}));
    const auto st = wait_for_reload(gen1, true);
    EXPECT_EQ(st["pid"], pid) << "no restart";
    EXPECT_EQ(daemon_->call("reload")["ok"], true);  // and once more by command
    const auto gen_before_hup = daemon_->call("status")["policy_generation"].get<std::uint32_t>();
    ::kill(daemon_->pid(), SIGHUP);  // and by signal
    for (int i = 0; i < 100 && daemon_->call("status")["last_reload"]["trigger"] != "SIGHUP"; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto after_hup = daemon_->call("status");
    EXPECT_EQ(after_hup["last_reload"]["trigger"], "SIGHUP");
    EXPECT_EQ(after_hup["policy_generation"].get<std::uint32_t>(), gen_before_hup + 1);

    const auto b = flood("10.207.0.1", 1, 5000, 1.0);
    client.join();
    const auto stats_b = daemon_->call("stats");
    const double passed_b = static_cast<double>(tier_packets(stats_b, "default", "pass") - passed_a);
    EXPECT_NEAR(passed_b, bound(1000, 20, b["seconds"].get<double>()), 0.05 * bound(1000, 20, b["seconds"].get<double>()));
    EXPECT_GT(legit["sent"].get<std::uint64_t>(), 350U);
    EXPECT_EQ(tier_packets(stats_b, "legit", "pass"), legit["sent"].get<std::uint64_t>());
    EXPECT_EQ(tier_packets(stats_b, "legit", "drop"), 0U) << "reloads under a flood cost the legitimate client packets";
}

TEST_F(DaemonTest, BrokenConfigIsRejectedAndTheOldPolicyStillDrops) {
    daemon_->write_config(base_config({{"default", tier(100, 20)}}));
    daemon_->start();
    const auto gen = daemon_->call("status")["policy_generation"].get<std::uint32_t>();

    daemon_->write_raw_config(R"({"interfaces": ["vb"], "tiers": {"default": {"pps": -1, "burst": 20}}})");
    const auto st = wait_for_reload(gen, false);
    EXPECT_EQ(st["policy_generation"].get<std::uint32_t>(), gen);
    EXPECT_EQ(st["last_reload"]["error"]["field"], "tiers.default.pps");
    EXPECT_EQ(st["last_reload"]["error"]["file"], daemon_->config_path());
    try {
        daemon_->call("reload");
        ADD_FAILURE() << "a broken config reloaded";
    } catch (const cli::CliError& e) {
        EXPECT_EQ(e.daemon_code(), "invalid_config");
        EXPECT_EQ(e.details()["field"], "tiers.default.pps");
    }
    daemon_->write_raw_config("{ this is not json");
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    EXPECT_EQ(daemon_->call("status")["policy_generation"].get<std::uint32_t>(), gen);

    const auto f = flood("10.208.0.1", 1, 5000, 1.0);
    const auto stats = daemon_->call("stats");
    EXPECT_NEAR(static_cast<double>(tier_packets(stats, "default", "pass")), bound(100, 20, f["seconds"].get<double>()),
                0.05 * bound(100, 20, f["seconds"].get<double>()));
    EXPECT_GT(tier_packets(stats, "default", "drop"), 3000U);
}

TEST_F(DaemonTest, ControlSocketAnswersBadRequestsWithErrorsAndKeepsServing) {
    daemon_->write_config(base_config({{"default", tier(100, 20)}}));
    daemon_->start();
    RawConnection c(daemon_->socket());
    ASSERT_TRUE(c.connected());
    c.send("{nope\n");
    EXPECT_EQ(c.reply()["error"]["code"], "bad_json");
    c.send("[1,2]\n");
    EXPECT_EQ(c.reply()["error"]["code"], "bad_request");
    c.send(R"({"v": 99, "cmd": "status"})" "\n");
    EXPECT_EQ(c.reply()["error"]["code"], "unsupported_version");
    c.send(R"({"v": 1, "id": 5, "cmd": "format-disk"})" "\n");
    const auto unknown = c.reply();
    EXPECT_EQ(unknown["error"]["code"], "unknown_command");
    EXPECT_EQ(unknown["id"], 5);
    c.send(R"({"v": 1, "cmd": "allow.add", "args": {"cidr": "10.0.0.1/8"}})" "\n");
    EXPECT_EQ(c.reply()["error"]["code"], "invalid_argument");

    RawConnection other(daemon_->socket());  // served while the first one sends 10 MB
    std::thread big([&] { c.send(std::string(10U << 20, 'x') + "\n" + R"({"v": 1, "id": 6, "cmd": "version"})" + "\n"); });
    other.send(R"({"v": 1, "id": 1, "cmd": "status"})" "\n");
    EXPECT_EQ(other.reply()["ok"], true);
    big.join();
    EXPECT_EQ(c.reply()["error"]["code"], "too_large");
    const auto after = c.reply();
    EXPECT_EQ(after["ok"], true) << "the same connection goes on after an oversized line";
    EXPECT_EQ(after["id"], 6);
    EXPECT_EQ(daemon_->call("status")["pid"].get<int>(), daemon_->pid() /* nsenter execs in place */);
}

TEST_F(DaemonTest, ControlSocketAdmitsRootOnly) {
    daemon_->write_config(base_config({{"default", tier(100, 20)}}));
    daemon_->start();
    EXPECT_EQ(shell("stat -c %a " + daemon_->socket()), "600\n");
    // As nobody: the 0750 directory already stops the connection ...
    auto as_nobody = [&] {
        const pid_t pid = fork();
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(3);
            RawConnection c(daemon_->socket());
            if (!c.connected())
                _exit(c.error() == EACCES ? 1 : 2);
            const auto r = c.reply();
            _exit(r.contains("error") && r["error"]["code"] == "forbidden" ? 0 : 4);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WEXITSTATUS(status);
    };
    EXPECT_EQ(as_nobody(), 1);
    // ... and with the file modes opened up, the peer-credential check does.
    chmod(std::filesystem::path(daemon_->socket()).parent_path().c_str(), 0755);
    chmod(daemon_->socket().c_str(), 0666);
    EXPECT_EQ(as_nobody(), 0);
    EXPECT_EQ(daemon_->call("version")["protocol"], 1) << "still serving root";
}

}  // namespace
}  // namespace rlgate::testing
