// SPDX-License-Identifier: BSD-2-Clause
// Fleet mode's pure parts: the ban messages hosts exchange through Redis
// (what decode accepts is exactly what encode makes, hostile input refused)
// and the "fleet" section of rlgated's config. The Redis client's Cluster
// helpers: slot of a key, MOVED/ASK, CLUSTER SLOTS replies.
#include <gtest/gtest.h>

#include "core/bans/fleet_message.hpp"
#include "core/config/config.hpp"
#include "redis/cluster.hpp"

namespace rlgate {
namespace {

using bans::FleetMessage;

FleetMessage sample() {
    return {.op = FleetMessage::Op::ban,
            .prefix = *net::Cidr::parse("2001:db8::/48"),
            .host = "edge-1",
            .origin = "kernel",
            .reason = "rate: over the free limit, \"quoted\" and ünïcode",
            .at_ms = 1'764'000'000'000,
            .expires_ms = 1'764'000'600'000};
}

TEST(FleetMessage, RoundTripsBansAndUnbans) {
    const auto ban = sample();
    std::string error;
    EXPECT_EQ(bans::decode_fleet_message(bans::encode(ban), &error), ban) << error;
    FleetMessage unban{.op = FleetMessage::Op::unban, .prefix = *net::Cidr::parse("10.0.0.7/32"), .host = "h",
                       .origin = "manual", .at_ms = 5};
    EXPECT_EQ(bans::decode_fleet_message(bans::encode(unban), &error), unban) << error;
    auto forever = ban;
    forever.expires_ms = 0;
    EXPECT_EQ(bans::decode_fleet_message(bans::encode(forever), &error)->expires_ms, 0);
}

TEST(FleetMessage, RefusesWhatIsNotOneOfOurs) {
    const auto good = nlohmann::json::parse(bans::encode(sample()));
    auto with = [&](const char* field, const nlohmann::json& value) {
        auto j = good;
        if (value.is_null())
            j.erase(field);
        else
            j[field] = value;
        return bans::decode_fleet_message(j.dump(), nullptr).has_value();
    };
    EXPECT_TRUE(with("v", 1));
    EXPECT_FALSE(with("v", 2));
    EXPECT_FALSE(with("op", "kick"));
    EXPECT_FALSE(with("cidr", "10.0.0.300/32"));
    EXPECT_FALSE(with("cidr", nullptr));
    EXPECT_FALSE(with("host", ""));
    EXPECT_FALSE(with("host", "two words"));
    EXPECT_FALSE(with("host", std::string(65, 'h')));
    EXPECT_FALSE(with("origin", "peer")) << "a peer's ban is never republished, so never received";
    EXPECT_FALSE(with("expires_ms", -1));
    EXPECT_FALSE(with("expires_ms", "soon"));
    EXPECT_FALSE(with("reason", std::string(513, 'r')));
    std::string error;
    EXPECT_FALSE(bans::decode_fleet_message("not json", &error));
    EXPECT_FALSE(error.empty());
    EXPECT_FALSE(bans::decode_fleet_message("[1,2]", nullptr));
    EXPECT_FALSE(bans::decode_fleet_message(std::string(3000, ' ') + good.dump(), nullptr)) << "size bound";
    auto long_reason = sample();
    long_reason.reason = std::string(2000, 'x');
    EXPECT_TRUE(bans::decode_fleet_message(bans::encode(long_reason), nullptr)) << "encode cuts the reason";
}

TEST(FleetMessage, WithAKeyOnlySignedMessagesOfThatKeyAreAccepted) {
    const auto m = sample();
    const std::string key = "0123456789abcdef-fleet";
    const auto signed_text = bans::encode(m, key);
    ASSERT_EQ(signed_text[64], '.');
    std::string error;
    EXPECT_EQ(bans::decode_fleet_message(signed_text, &error, key), m) << error;
    EXPECT_FALSE(bans::decode_fleet_message(bans::encode(m), &error, key)) << "unsigned";
    EXPECT_NE(error.find("no MAC"), std::string::npos) << error;
    EXPECT_FALSE(bans::decode_fleet_message(bans::encode(m, "another key, as long"), &error, key));
    EXPECT_NE(error.find("wrong MAC"), std::string::npos) << error;
    auto tampered = signed_text;
    tampered.replace(tampered.find("edge-1"), 6, "edge-2");
    EXPECT_FALSE(bans::decode_fleet_message(tampered, &error, key)) << "a changed message";
    EXPECT_EQ(bans::decode_fleet_message(signed_text, &error), m) << "no key here: the JSON is read";
}

config::ConfigError fleet_error(const std::string& fleet) {
    try {
        (void)config::parse_config(R"({"tiers": {"free": {"pps": 10, "burst": 10}}, "fleet": )" + fleet + "}", "t.json");
    } catch (const config::ConfigError& e) {
        return e;
    }
    return {"t.json", "<accepted>", ""};
}

TEST(FleetConfig, ParsesAndChecksFieldByField) {
    const auto c = config::parse_config(
        R"({"tiers": {"free": {"pps": 10, "burst": 10}}, "fleet": {"host": "edge-1", "publish_per_sec": 5, "publish_burst": 9,
            "redis": {"address": "10.0.0.5:6380", "prefix": "f:", "username": "rl", "password": "pw", "timeout": "20ms"}}})",
        "t.json");
    EXPECT_TRUE(c.fleet.enabled);
    EXPECT_EQ(c.fleet.host, "edge-1");
    EXPECT_EQ(c.fleet.publish_per_sec, 5U);
    EXPECT_EQ(c.fleet.publish_burst, 9U);
    EXPECT_EQ(c.fleet.redis.host, "10.0.0.5");
    EXPECT_EQ(c.fleet.redis.port, 6380);
    EXPECT_EQ(c.fleet.redis.prefix, "f:");
    EXPECT_EQ(c.fleet.redis.timeout_ns, 20'000'000);
    EXPECT_FALSE(config::parse_config(R"({"tiers": {"free": {"pps": 10, "burst": 10}}})", "t.json").fleet.enabled);

    EXPECT_EQ(fleet_error("{}").field(), "fleet.redis");
    EXPECT_EQ(fleet_error(R"({"redis": {"adress": "1.2.3.4:5"}})").field(), "fleet.redis.adress");
    EXPECT_EQ(fleet_error(R"({"redis": {"address": "redis.local:6379"}})").field(), "fleet.redis.address");
    EXPECT_EQ(fleet_error(R"({"redis": {"cluster": true}})").field(), "fleet.redis.cluster");
    EXPECT_EQ(fleet_error(R"({"redis": {}, "host": "a b"})").field(), "fleet.host");
    EXPECT_EQ(fleet_error(R"({"redis": {}, "publish_per_sec": 0})").field(), "fleet.publish_per_sec");
    EXPECT_EQ(fleet_error(R"({"redis": {"password_file": "relative"}})").field(), "fleet.redis.password_file");
    EXPECT_EQ(fleet_error(R"({"redis": {"seeds": ["1.2.3.4:5"]}})").field(), "fleet.redis.seeds");
    EXPECT_EQ(fleet_error(R"({"redis": {}})").field(), "<accepted>");
}

TEST(RedisCluster, KeySlotsRedirectsAndSlotMaps) {
    EXPECT_EQ(redis::key_slot("123456789"), 12739);  // CRC16-XMODEM 0x31C3
    EXPECT_EQ(redis::key_slot("{user1000}.following"), redis::key_slot("{user1000}.followers"));
    EXPECT_EQ(redis::key_slot("foo{}{bar}"), redis::key_slot("foo{}{bar}"));
    EXPECT_NE(redis::key_slot("foo{}{bar}"), redis::key_slot("bar")) << "an empty tag does not count";
    EXPECT_EQ(redis::key_slot("foo{{bar}}zap"), redis::key_slot("{bar"));

    const auto moved = redis::parse_redirect("MOVED 3999 127.0.0.1:6381");
    ASSERT_TRUE(moved);
    EXPECT_FALSE(moved->ask);
    EXPECT_EQ(moved->slot, 3999);
    EXPECT_EQ(moved->host, "127.0.0.1");
    EXPECT_EQ(moved->port, 6381);
    const auto ask = redis::parse_redirect("ASK 1 [::1]:7000");
    ASSERT_TRUE(ask);
    EXPECT_TRUE(ask->ask);
    EXPECT_EQ(ask->host, "::1") << "brackets off: an address to connect to";
    for (const char* bad : {"ERR wrong", "MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 1.2.3.4:5", "MOVED 1 1.2.3.4",
                            "MOVED 1 1.2.3.4:0", "ASK 1 :5"})
        EXPECT_FALSE(redis::parse_redirect(bad)) << bad;

    using R = redis::RedisReply;
    auto integer = [](long long v) { return R{.type = R::Type::integer, .integer = v}; };
    auto text = [](std::string s) { return R{.type = R::Type::string, .text = std::move(s)}; };
    auto array = [](std::vector<R> e) { return R{.type = R::Type::array, .elements = std::move(e)}; };
    const R reply = array({array({integer(0), integer(5460), array({text("10.0.0.1"), integer(7000), text("id1")})}),
                           array({integer(5461), integer(16383), array({text(""), integer(7001), text("id2")}),
                                  array({text("10.0.0.9"), integer(7009), text("replica")})})});
    std::string error;
    const auto ranges = redis::parse_cluster_slots(reply, "10.0.0.2", &error);
    ASSERT_TRUE(ranges) << error;
    ASSERT_EQ(ranges->size(), 2U);
    EXPECT_EQ((*ranges)[0].last, 5460);
    EXPECT_EQ((*ranges)[1].host, "10.0.0.2") << "an empty host is the node asked";
    EXPECT_EQ((*ranges)[1].port, 7001);
    EXPECT_FALSE(redis::parse_cluster_slots(array({array({integer(5), integer(4), array({text("a"), integer(1)})})}), "",
                                            &error));
    EXPECT_FALSE(redis::parse_cluster_slots(R{.type = R::Type::error, .text = "ERR This instance has cluster support disabled"},
                                            "", &error));
    EXPECT_NE(error.find("cluster support disabled"), std::string::npos);
}

}  // namespace
}  // namespace rlgate
