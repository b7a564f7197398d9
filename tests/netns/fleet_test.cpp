// SPDX-License-Identifier: BSD-2-Clause
// Fleet mode with real processes: two rlgated, each in a namespace of its
// own with its own XDP program and pins, share one redis-server that runs in
// a third namespace ("hub", linked to each host by a veth pair of its own).
// A ban made on one host (manual, then a kernel auto-ban from a flood)
// reaches the other host's BPF map within 1 s, an unban too; a host started
// later loads the bans made before; a peer's ban is never published again.
// Messages are signed with the fleet key: forged ones (unsigned, or signed
// but broader than fleet.min_prefix_v4) change nothing; an unban made while
// a host was down reaches it when it comes back.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "netns/daemon_fixture.hpp"
#include "support/redis_server.hpp"

namespace rlgate::testing {
namespace {

using namespace std::chrono_literals;

// The hub namespace and a veth from it into each host namespace: hub side
// 10.202.<i>.1/24, host side "rh" 10.202.<i>.2/24.
class Hub {
public:
    explicit Hub(const std::vector<std::string>& hosts) {
        name_ = "rlfleet-hub-" + std::to_string(getpid());
        run("ip netns add " + name_);
        run("ip -n " + name_ + " link set lo up");
        for (std::size_t i = 0; i < hosts.size(); ++i) {
            const auto n = std::to_string(i + 1);
            run("ip link add h" + n + " netns " + name_ + " type veth peer name rh netns " + hosts[i]);
            run("ip -n " + name_ + " addr add 10.202." + n + ".1/24 dev h" + n);
            run("ip -n " + hosts[i] + " addr add 10.202." + n + ".2/24 dev rh");
            run("ip -n " + name_ + " link set h" + n + " up");
            run("ip -n " + hosts[i] + " link set rh up");
            addresses_ += (addresses_.empty() ? "" : " ") + ("10.202." + n + ".1");
        }
    }
    ~Hub() { shell("ip netns del " + name_); }  // its veths go with it
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const std::string& addresses() const { return addresses_; }

private:
    static void run(const std::string& cmd) {
        int status = 0;
        const auto out = shell(cmd, &status);
        if (status != 0)
            throw std::runtime_error(cmd + ": " + out);
    }
    std::string name_, addresses_;
};

// The LPM key of an IPv4 /32 in rl_bans, for bpftool (docs/bpftool.md):
// prefixlen 136, slot 0x80 (IPv4), ::ffff:a.b.c.d, padding.
std::string ban_key_hex(const std::string& ipv4) {
    std::ostringstream hex;
    hex << "88 00 00 00 80 00 00 00 00 00 00 00 00 00 00 ff ff";
    std::istringstream in(ipv4);
    for (std::string octet; std::getline(in, octet, '.');) {
        char buf[4];
        std::snprintf(buf, sizeof buf, " %02x", std::stoi(octet));
        hex << buf;
    }
    hex << " 00 00 00";
    return hex.str();
}

bool in_kernel_bans(const DaemonProcess& d, const std::string& ipv4) {
    int status = 0;
    shell("bpftool map lookup pinned " + d.pin_dir() + "/rl_bans key hex " + ban_key_hex(ipv4), &status);
    return status == 0;
}

// How long until `pred` holds (checked every 10 ms), or nullopt after `limit`.
template <typename Pred>
std::optional<std::chrono::milliseconds> time_until(Pred pred, std::chrono::milliseconds limit) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < limit) {
        if (pred())
            return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;
}

constexpr const char* kFleetKey = "test-fleet-key-0123456789";

class FleetTest : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(geteuid() == 0, "needs root for namespaces, XDP and bpffs");
        RLGATE_REQUIRE(shell("command -v ip") != "" && shell("command -v nsenter") != "" &&
                           shell("command -v bpftool") != "",
                       "iproute2, util-linux (nsenter) and bpftool needed");
        RLGATE_REQUIRE(RedisServer::available(), "needs redis-server and redis-cli (Debian: redis-server)");
        one_ = std::make_unique<VethPair>("rlf1");
        two_ = std::make_unique<VethPair>("rlf2");
        hub_ = std::make_unique<Hub>(std::vector<std::string>{one_->ns_b(), two_->ns_b()});
        // Reached from other namespaces, so not in protected mode: with a password (AUTH).
        redis_ = std::make_unique<RedisServer>(RedisServerOptions{.args = {"--requirepass", "fleet-secret"},
                                                                  .cli_password = "fleet-secret",
                                                                  .netns = hub_->name(),
                                                                  .bind = hub_->addresses()});
    }
    void TearDown() override {
        for (auto* d : {&a_, &b_})
            if (HasFailure() && *d)
                std::cerr << "--- rlgated log ---\n" << (*d)->log_text() << std::endl;
        a_.reset();
        b_.reset();
        redis_.reset();
        hub_.reset();
        one_.reset();
        two_.reset();
    }

    // rlgated on `vb` of pair `n` (1 or 2), in the fleet as `host`.
    std::unique_ptr<DaemonProcess> host(int n, const std::string& name) {
        auto& pair = n == 1 ? *one_ : *two_;
        auto d = std::make_unique<DaemonProcess>(pair.ns_b(), "fleet-" + name);
        const auto key_file = (d->dir() / "fleet.key").string();
        std::ofstream(key_file) << kFleetKey << "\n";
        json redis = {{"address", "10.202." + std::to_string(n) + ".1:" + std::to_string(redis_->port())}, {"prefix", "t:"}};
        if (n == 1) {
            const auto file = (d->dir() / "redis-password").string();
            std::ofstream(file) << "fleet-secret\n";
            redis["password_file"] = file;
        } else {
            redis["password"] = "fleet-secret";
        }
        d->write_config({{"interfaces", {{{"name", "vb"}, {"mode", "native"}}}},
                         {"tiers",
                          {{"default",
                            {{"pps", 100}, {"burst", 20}, {"autoban", {{"drops", 100}, {"window", "10s"}, {"ban", "5m"}}}}}}},
                         {"fleet", {{"host", name}, {"redis", redis}, {"key_file", key_file}}}});
        d->start();
        // Up means subscribed and synced once: what it is told from now on reaches it.
        const auto up = time_until([&] { return d->call("fleet.status")["last_sync"].is_string(); }, 5s);
        EXPECT_TRUE(up.has_value()) << d->call("fleet.status").dump() << d->log_text();
        return d;
    }

    std::unique_ptr<VethPair> one_, two_;
    std::unique_ptr<Hub> hub_;
    std::unique_ptr<RedisServer> redis_;
    std::unique_ptr<DaemonProcess> a_, b_;
};

TEST_F(FleetTest, BansAndUnbansReachTheOtherHostWithin1sAndLateHostsLoadThem) {
    a_ = host(1, "edge-a");
    b_ = host(2, "edge-b");

    // A manual ban on A: in B's XDP map within 1 s, recorded as a peer's with A named.
    ASSERT_EQ(a_->call("ban.add", {{"cidr", "10.230.0.7/32"}, {"ttl_s", 600}, {"reason", "fraud"}})["added"], 1);
    const auto reached = time_until([&] { return in_kernel_bans(*b_, "10.230.0.7"); }, 1000ms);
    ASSERT_TRUE(reached.has_value()) << b_->call("fleet.status").dump();
    std::cout << "[ fleet    ] manual ban on A in B's map after " << reached->count() << " ms\n";
    const auto list = b_->call("ban.list");
    json peer_ban;
    for (const auto& ban : list["bans"])
        if (ban["source"] == "10.230.0.7/32")
            peer_ban = ban;
    ASSERT_FALSE(peer_ban.is_null()) << list.dump();
    EXPECT_EQ(peer_ban["origin"], "peer");
    EXPECT_NE(peer_ban["reason"].get<std::string>().find("edge-a"), std::string::npos) << peer_ban.dump();
    EXPECT_NE(peer_ban["reason"].get<std::string>().find("fraud"), std::string::npos) << peer_ban.dump();
    EXPECT_GT(peer_ban["remaining_s"].get<double>(), 590.0);
    EXPECT_LE(peer_ban["remaining_s"].get<double>(), 600.0);

    // A kernel auto-ban on A (a flood from A's other namespace): in B's map too.
    int status = 0;
    const auto out = shell("ip netns exec " + one_->ns_a() + " " + RLGATE_FLOOD_PATH + " --dev va --dst 10.201.0.2 --dst-mac " +
                               one_->mac_b() + " --src 10.231.0.9 --rate 5000 --duration 0.5 --count 0",
                           &status);
    ASSERT_EQ(status, 0) << out;
    ASSERT_TRUE(time_until([&] { return in_kernel_bans(*a_, "10.231.0.9"); }, 1000ms).has_value());
    const auto auto_reached = time_until([&] { return in_kernel_bans(*b_, "10.231.0.9"); }, 1500ms);
    ASSERT_TRUE(auto_reached.has_value()) << "A's auto-ban (synced every 250 ms) never reached B";
    std::cout << "[ fleet    ] kernel auto-ban on A in B's map after " << auto_reached->count() << " ms\n";

    // B never publishes what it got from A: Redis holds A's two bans, both from edge-a.
    const auto stored = redis_->cli("HGETALL t:fleet:bans");
    EXPECT_NE(stored.find("10.230.0.7/32"), std::string::npos) << stored;
    EXPECT_NE(stored.find("10.231.0.9/32"), std::string::npos) << stored;
    EXPECT_EQ(stored.find("edge-b"), std::string::npos) << stored;
    EXPECT_EQ(b_->call("fleet.status")["published"], 0);

    // An unban on B (of A's ban): gone from A's map within 1 s, and from Redis.
    ASSERT_EQ(b_->call("ban.del", {{"cidr", "10.230.0.7/32"}})["removed"], 1);
    const auto unbanned = time_until([&] { return !in_kernel_bans(*a_, "10.230.0.7"); }, 1000ms);
    ASSERT_TRUE(unbanned.has_value());
    std::cout << "[ fleet    ] unban on B gone from A's map after " << unbanned->count() << " ms\n";
    EXPECT_NE(redis_->cli("HGET t:fleet:bans 10.230.0.7/32").find("\"op\":\"unban\""), std::string::npos)
        << "the ban replaced by a tombstone, for hosts away now";

    // fleet status on each: the other is a peer seen just now, Redis up.
    const auto seen = time_until(
        [&] {
            const auto st = a_->call("fleet.status");
            for (const auto& p : st["peers"])
                if (p["host"] == "edge-b" && p["age_s"].get<double>() < 5)
                    return st["redis"]["up"] == true;
            return false;
        },
        5s);
    EXPECT_TRUE(seen.has_value()) << a_->call("fleet.status").dump();
    int rc = 0;
    const auto table = shell(std::string(RLCTL_PATH) + " --socket " + a_->socket() + " fleet status", &rc);
    EXPECT_EQ(rc, 0) << table;
    std::cout << "$ rlctl fleet status\n" << table;
    EXPECT_NE(table.find("host:          edge-a"), std::string::npos) << table;
    EXPECT_NE(table.find(" up "), std::string::npos) << table;
    EXPECT_NE(table.find("edge-b"), std::string::npos) << table;
    EXPECT_NE(table.find("edge-a (this host)"), std::string::npos) << table;
    const auto as_json = json::parse(shell(std::string(RLCTL_PATH) + " --socket " + a_->socket() + " --json fleet status"));
    EXPECT_EQ(as_json["host"], "edge-a");
    EXPECT_EQ(as_json["published"], 2) << "the manual ban and the auto-ban";
    EXPECT_EQ(as_json["applied"], 1) << "B's unban";

    // A host started later (B's state and maps gone: a new machine) loads the bans in force.
    b_.reset();
    b_ = host(2, "edge-b");
    EXPECT_TRUE(in_kernel_bans(*b_, "10.231.0.9")) << "the auto-ban made before it joined";
    EXPECT_FALSE(in_kernel_bans(*b_, "10.230.0.7")) << "the unbanned one stays unbanned";
}

TEST_F(FleetTest, ForgedMessagesChangeNothingAndAnUnbanReachesAHostThatWasDown) {
    a_ = host(1, "edge-a");
    b_ = host(2, "edge-b");
    const auto json_of = [](const std::string& cidr) {
        return json{{"v", 1}, {"op", "ban"}, {"cidr", cidr}, {"host", "mallory"}, {"origin", "manual"},
                    {"reason", "forged"}, {"at_ms", 1}, {"expires_ms", 0}}
            .dump();
    };
    // Unsigned: refused, counted.
    EXPECT_EQ(redis_->cli("PUBLISH t:fleet:bans " + sh_quote(json_of("10.240.0.1/32"))), "2\n") << "both hosts listen";
    // Signed with the fleet's key (as a host would) but a /8: refused by fleet.min_prefix_v4 (16).
    const auto body = json_of("10.0.0.0/8");
    auto mac = shell("printf '%s' " + sh_quote(body) + " | openssl dgst -sha256 -hmac " + sh_quote(kFleetKey) +
                     " | awk '{print $NF}'");
    mac.erase(mac.find_last_not_of("\n") + 1);
    ASSERT_EQ(mac.size(), 64U) << mac;
    EXPECT_EQ(redis_->cli("PUBLISH t:fleet:bans " + sh_quote(mac + "." + body)), "2\n");
    const auto refused = time_until([&] { return b_->call("fleet.status")["invalid"].get<int>() >= 1; }, 2000ms);
    EXPECT_TRUE(refused.has_value()) << b_->call("fleet.status").dump();
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(in_kernel_bans(*b_, "10.240.0.1"));
    EXPECT_EQ(b_->call("ban.list")["bans"].size(), 0U) << b_->call("ban.list").dump();
    EXPECT_NE(b_->log_text().find("broader than /16"), std::string::npos) << b_->log_text();

    // A ban reaches B; B goes down; A lifts the ban; B comes back (same state and pins) and lifts it too.
    ASSERT_EQ(a_->call("ban.add", {{"cidr", "10.241.0.3/32"}})["added"], 1);
    ASSERT_TRUE(time_until([&] { return in_kernel_bans(*b_, "10.241.0.3"); }, 1000ms).has_value());
    b_->kill9();
    ASSERT_EQ(a_->call("ban.del", {{"cidr", "10.241.0.3/32"}})["removed"], 1);
    EXPECT_NE(redis_->cli("HGET t:fleet:bans 10.241.0.3/32").find("unban"), std::string::npos) << "a tombstone";
    EXPECT_TRUE(in_kernel_bans(*b_, "10.241.0.3")) << "still in B's pinned map while B is down";
    b_->start();
    const auto lifted = time_until([&] { return !in_kernel_bans(*b_, "10.241.0.3"); }, 5000ms);
    EXPECT_TRUE(lifted.has_value()) << b_->log_text();
}

TEST_F(FleetTest, BansMadeWhileRedisIsAwayArePublishedWhenItReturns) {
    a_ = host(1, "edge-a");
    b_ = host(2, "edge-b");
    redis_->pause();
    ASSERT_EQ(a_->call("ban.add", {{"cidr", "10.232.0.5/32"}, {"ttl_s", 600}})["added"], 1);
    std::this_thread::sleep_for(1500ms);  // A's call times out (1 s): Redis counts as down
    EXPECT_FALSE(in_kernel_bans(*b_, "10.232.0.5"));
    const auto down = a_->call("fleet.status");
    EXPECT_EQ(down["redis"]["up"], false) << down.dump();
    EXPECT_GE(down["outbox"].get<int>(), 1) << down.dump();
    redis_->resume();
    // A re-sends its outbox; B, re-subscribed, reloads the hash as well.
    const auto reached = time_until([&] { return in_kernel_bans(*b_, "10.232.0.5"); }, 5000ms);
    EXPECT_TRUE(reached.has_value()) << a_->call("fleet.status").dump() << "\n" << b_->call("fleet.status").dump();
}

}  // namespace
}  // namespace rlgate::testing
