// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's config and decisions without a server: every config error
// names its field, callers resolve to the right identity and tier, the keys
// a request is charged to, and the answer's status, headers and escalation
// over an injected clock.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/config/json_reader.hpp"
#include "core/l7/evaluate.hpp"
#include "core/l7/l7_config.hpp"
#include "l7/limiter.hpp"

namespace rlgate::l7 {
namespace {

using nlohmann::json;

std::optional<std::string> no_files(const std::string&) { return std::nullopt; }

json base() {
    return json::parse(R"({
      "trusted_proxies": ["10.0.0.0/8"],
      "identity": {"user_header": "X-User", "cost_header": "X-Cost"},
      "api_keys": {"k1": "free", "k2": "premium", "ops": "internal"},
      "users": {"alice": "premium"},
      "anonymous_tier": "anon",
      "tiers": {
        "anon": {"limits": [{"limit": 2, "per": "1m"}]},
        "free": {"limits": [{"limit": 5, "per": "1m", "algorithm": "token_bucket"}],
                 "endpoints": {"upload": [{"limit": 1, "per": "1h", "name": "uploads"}]}},
        "premium": {"limits": [{"limit": 100, "per": "1m"}]},
        "internal": {"bypass": true}
      },
      "endpoints": [{"name": "upload", "route": "POST /files/{id}", "cost": 2}],
      "global": [{"limit": 1000, "per": "1s", "algorithm": "sliding_window"}],
      "per_ip": [{"limit": 50, "per": "1s"}]
    })");
}

L7Config parse(const json& j) { return parse_l7_config(j.dump(), "l7.json", no_files); }

std::string error_field(const json& j) {
    try {
        parse(j);
    } catch (const config::ConfigError& e) {
        return e.field();
    }
    return "(accepted)";
}

TEST(L7Config, ParsesTheExampleAndNamesTheFieldOfEveryError) {
    const auto c = parse(base());
    EXPECT_EQ(c.mode, Mode::forward_auth);
    EXPECT_EQ(c.tiers.at("free").endpoint_limits.at("upload")[0].name, "uploads");
    EXPECT_EQ(c.tiers.at("anon").limits[0].name, "2/1m") << "named after its rate by default";
    EXPECT_EQ(c.endpoints[0].cost, 2U);

    auto with = [](const char* pointer, json value) {
        auto j = base();
        j[json::json_pointer(pointer)] = std::move(value);
        return j;
    };
    EXPECT_EQ(error_field(with("/api_keys/k9", "gold")), "api_keys.k9");
    EXPECT_EQ(error_field(with("/anonymous_tier", "nope")), "anonymous_tier");
    EXPECT_EQ(error_field(with("/tiers/anon/limits/0/per", "soon")), "tiers.anon.limits[0].per");
    EXPECT_EQ(error_field(with("/tiers/anon/limits/0/algorithm", "magic")), "tiers.anon.limits[0].algorithm");
    EXPECT_EQ(error_field(with("/tiers/anon/limits/0/limit", 0)), "tiers.anon.limits[0].limit");
    EXPECT_EQ(error_field(with("/tiers/anon/limits/0/burst", 5)), "(accepted)") << "gcra takes a burst";
    EXPECT_EQ(error_field(with("/global/0/burst", 5)), "global[0].burst") << "windows do not";
    EXPECT_EQ(error_field(with("/tiers/free/endpoints/download", json::array())), "tiers.free.endpoints.download");
    EXPECT_EQ(error_field(with("/endpoints/0/route", "POST files")), "endpoints[0].route");
    EXPECT_EQ(error_field(with("/listen", "localhost:80")), "listen");
    EXPECT_EQ(error_field(with("/mode", "proxy")), "proxy") << "proxy mode needs an upstream";
    EXPECT_EQ(error_field(with("/deny_status", 500)), "deny_status");
    EXPECT_EQ(error_field(with("/tiers/internal/limits", json::array({{{"limit", 1}, {"per", "1s"}}}))), "tiers.internal.bypass");
    EXPECT_EQ(error_field(with("/identity/jwt", {{"algorithm", "HS256"}, {"secret", "short"}})), "identity.jwt.secret");
    EXPECT_EQ(error_field(with("/identity/jwt", {{"algorithm", "RS256"}, {"public_key_file", "/nonexistent.pem"}})),
              "identity.jwt.public_key_file");
    EXPECT_EQ(error_field(with("/identity/jwt", {{"algorithm", "none"}})), "identity.jwt.algorithm");
    EXPECT_EQ(error_field(with("/endpoints/0/throttle", {{"concurrency", 2}, {"queue", 4}, {"max_wait", "1s"}})), "endpoints")
        << "concurrency needs proxy mode";
    EXPECT_EQ(error_field(with("/tiers/anon/limits", json::array({{{"limit", 1}, {"per", "1s"}},
                                                                  {{"limit", 1}, {"per", "1s"}}}))),
              "tiers.anon.limits[1]") << "two limits with one name";
    EXPECT_EQ(error_field(with("/unknown", 1)), "unknown");
    EXPECT_EQ(error_field(with("/tiers/anon/limits/0/time_zone", "Europe/Berlin")), "tiers.anon.limits[0].time_zone")
        << "only calendar windows have a time zone";
    EXPECT_EQ(error_field(with("/global/0", {{"algorithm", "fixed_window"}, {"limit", 5}, {"calendar", "day"},
                                             {"time_zone", "../../etc/passwd"}})),
              "global[0].time_zone");
    EXPECT_EQ(error_field(with("/global/0", {{"algorithm", "fixed_window"}, {"limit", 5}, {"calendar", "day"},
                                             {"time_zone", "Mars/Olympus"}})),
              "global[0].time_zone") << "no such file";
    try {
        parse_l7_config("{\n  \"tiers\": ,\n}", "l7.json", no_files);
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_EQ(e.field(), "line 2, column 12");
    }
}

TEST(L7Config, RedisStoreSettingsAreCheckedFieldByField) {
    auto with_store = [](json store) {
        auto j = base();
        j["store"] = std::move(store);
        return j;
    };
    const auto c = parse(with_store({{"type", "redis"},
                                     {"redis", {{"address", "10.0.0.5:6380"}, {"username", "rl"}, {"password", "pw"},
                                                {"timeout", "20ms"}, {"on_failure", "closed"}, {"fleet_size", 4}}}}));
    ASSERT_TRUE(c.redis.has_value());
    EXPECT_EQ(c.redis->host, "10.0.0.5");
    EXPECT_EQ(c.redis->port, 6380);
    EXPECT_EQ(c.redis->timeout_ns, 20'000'000);
    EXPECT_EQ(c.redis->on_failure, RedisFailure::closed);
    EXPECT_EQ(c.redis->fleet_size, 4U);
    EXPECT_EQ(parse(with_store({{"type", "redis"}})).redis->port, 6379) << "defaults: a local Redis";
    EXPECT_FALSE(parse(base()).redis.has_value()) << "memory by default";
    EXPECT_EQ(error_field(with_store({{"type", "memcached"}})), "store.type");
    EXPECT_EQ(error_field(with_store({{"redis", {{"timeout", "1s"}}}})), "store.redis") << "only with type redis";
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"on_failure", "maybe"}}}})), "store.redis.on_failure");
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"username", "rl"}}}})), "store.redis.username")
        << "an ACL user without a password";
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"tls_ca_file", "/etc/ca.pem"}}}})), "store.redis.tls");
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"timeout", "10s"}}}})), "store.redis.timeout");
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"prefix", "a{b}"}}}})), "store.redis.prefix");
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"fleet_size", 0}}}})), "store.redis.fleet_size");
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"password", "a"}, {"password_file", "/x"}}}})),
              "store.redis.password");
    // Redis Cluster and token leasing.
    const auto cl = parse(with_store({{"type", "redis"},
                                      {"redis", {{"address", "10.0.0.5:7000"}, {"cluster", true}, {"seeds", {"10.0.0.6:7000"}},
                                                 {"lease_size", 10}, {"lease_ttl", "500ms"}}}}));
    EXPECT_TRUE(cl.redis->cluster);
    ASSERT_EQ(cl.redis->seeds.size(), 1U);
    EXPECT_EQ(cl.redis->seeds[0].first, "10.0.0.6");
    EXPECT_EQ(cl.redis->lease_size, 10U);
    EXPECT_EQ(cl.redis->lease_ttl_ns, 500'000'000);
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"seeds", {"10.0.0.6:7000"}}}}})), "store.redis.seeds")
        << "seeds only with cluster";
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"cluster", true}, {"seeds", {"nohost"}}}}})),
              "store.redis.seeds[0]");
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"lease_size", 10001}}}})), "store.redis.lease_size");
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"lease_ttl", "5ms"}}}})), "store.redis.lease_ttl");
    // Batching of concurrent decisions: on by default, 1 turns it off.
    EXPECT_EQ(cl.redis->batch, 32U);
    EXPECT_EQ(parse(with_store({{"type", "redis"}, {"redis", {{"batch", 1}}}})).redis->batch, 1U);
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"batch", 0}}}})), "store.redis.batch");
    EXPECT_EQ(error_field(with_store({{"type", "redis"}, {"redis", {{"batch", 257}}}})), "store.redis.batch");
}

TEST(L7Config, ATierNamesWhereToGetAHigherTier) {
    auto j = base();
    j["tiers"]["anon"]["upgrade_url"] = "https://example.com/pricing";
    j["tiers"]["anon"]["message"] = "Anonymous callers get 2/min; sign up for more.";
    const auto c = parse(j);
    EXPECT_EQ(c.tiers.at("anon").upgrade_url, "https://example.com/pricing");
    j["tiers"]["anon"]["upgrade_url"] = "ftp://example.com";
    EXPECT_EQ(error_field(j), "tiers.anon.upgrade_url");
    j["tiers"]["anon"]["upgrade_url"] = "https://example.com/\"quoted\"";
    EXPECT_EQ(error_field(j), "tiers.anon.upgrade_url");
    j["from_rlgated"] = {{"limits", true}};
    j["tiers"]["anon"].erase("upgrade_url");
    EXPECT_TRUE(parse(j).from_rlgated.limits);
}

TEST(L7Config, TheShippedExampleIsValid) {
    std::ifstream in(RLGATE_EXAMPLES_DIR "/l7.json");
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    ASSERT_FALSE(text.empty());
    const auto c = parse_l7_config(text, "l7.json", no_files);
    EXPECT_EQ(c.tiers.size(), 4U);
    EXPECT_EQ(c.tiers.at("free").limits.size(), 3U);
    EXPECT_EQ(c.tiers.at("free").limits[2].calendar, ratelimit::Calendar::day);
    EXPECT_TRUE(c.endpoints[1].throttle.has_value());
}

struct Req {
    std::string method = "GET", target = "/api";
    std::string peer = "203.0.113.5";
    std::map<std::string, std::string> headers;
    RequestView view() const {
        return RequestView{.method = method,
                           .target = target,
                           .peer = *net::IpAddress::parse(peer),
                           .header = [this](std::string_view n) -> std::string_view {
                               auto it = headers.find(std::string(n));
                               return it == headers.end() ? std::string_view{} : std::string_view(it->second);
                           }};
    }
};

TEST(L7Evaluate, ResolvesCallersToTiersAndTheKeysTheyAreChargedTo) {
    const auto c = parse(base());
    Req anon;
    auto e = evaluate(c, anon.view(), 0);
    EXPECT_EQ(e.caller_kind, "anonymous");
    EXPECT_EQ(e.tier->name, "anon");
    ASSERT_EQ(e.key_count, 3U);
    EXPECT_EQ(e.keys[0], "anon|ip:203.0.113.5");
    EXPECT_EQ(e.keys[1], "global");
    EXPECT_EQ(e.keys[2], "client|203.0.113.5");

    Req upload{.method = "POST", .target = "/files/42?api_key=k1"};
    e = evaluate(c, upload.view(), 0);
    EXPECT_EQ(e.caller_kind, "api_key");
    EXPECT_EQ(e.tier->name, "free");
    EXPECT_EQ(e.cost, 2U);
    ASSERT_EQ(e.key_count, 4U);
    EXPECT_EQ(e.keys[1], "free|k:k1|upload") << "per caller and endpoint";

    Req v6{.peer = "2001:db8:1:2:aaaa::1"};
    EXPECT_EQ(evaluate(c, v6.view(), 0).keys[0], "anon|ip:2001:db8:1:2::/64") << "an IPv6 client is its /64";

    // Headers that only a trusted proxy may set.
    Req spoofed{.headers = {{"X-User", "alice"}, {"X-Cost", "50"}, {"X-Forwarded-For", "198.51.100.1"}}};
    e = evaluate(c, spoofed.view(), 0);
    EXPECT_EQ(e.caller_kind, "anonymous");
    EXPECT_EQ(e.cost, 1U);
    EXPECT_EQ(e.client.to_string(), "203.0.113.5");
    Req proxied{.peer = "10.1.1.1", .headers = {{"X-User", "alice"}, {"X-Cost", "50"}, {"X-Forwarded-For", "198.51.100.1"}}};
    e = evaluate(c, proxied.view(), 0);
    EXPECT_EQ(e.caller_kind, "user");
    EXPECT_EQ(e.tier->name, "premium");
    EXPECT_EQ(e.cost, 50U);
    EXPECT_EQ(e.client.to_string(), "198.51.100.1");

    Req internal{.headers = {{"X-API-Key", "ops"}}};
    EXPECT_EQ(evaluate(c, internal.view(), 0).kind, Evaluation::Kind::bypass);
    auto bypass_cfg = base();
    bypass_cfg["bypass"] = {"203.0.113.0/24"};
    EXPECT_EQ(evaluate(parse(bypass_cfg), anon.view(), 0).kind, Evaluation::Kind::bypass);

    Req bad_cost{.peer = "10.1.1.1", .headers = {{"X-Cost", "0"}}};
    e = evaluate(c, bad_cost.view(), 0);
    EXPECT_EQ(e.kind, Evaluation::Kind::reject);
    EXPECT_EQ(e.status, 400U);
}


TEST(L7Evaluate, RlgatedsAllowlistAndTierPrefixesAreFollowedWhenConfigured) {
    std::string error;
    const auto shared = parse_shared_policy(
        json::parse(R"({"generation": 7, "allow": ["192.0.2.0/24"],
                        "members": [{"cidr": "198.51.100.0/24", "tier": "premium"},
                                    {"cidr": "198.51.100.128/25", "tier": "free"},
                                    {"cidr": "203.0.113.0/24", "tier": "no-such-l7-tier"}]})"),
        &error);
    ASSERT_TRUE(shared) << error;
    EXPECT_FALSE(parse_shared_policy(json::parse(R"({"allow": ["nope"], "members": []})"), &error));
    EXPECT_FALSE(parse_shared_policy(json::parse(R"({"allow": []})"), &error));

    auto j = base();
    auto off = parse(j);
    Req allowed{.peer = "192.0.2.9"}, premium{.peer = "198.51.100.9"}, longest{.peer = "198.51.100.200"},
        unknown{.peer = "203.0.113.9"};
    EXPECT_EQ(evaluate(off, allowed.view(), 0, &*shared).kind, Evaluation::Kind::limit) << "not configured: ignored";
    j["from_rlgated"] = {{"allowlist", true}, {"tiers", true}};
    const auto on = parse(j);
    EXPECT_EQ(evaluate(on, allowed.view(), 0, &*shared).kind, Evaluation::Kind::bypass);
    EXPECT_EQ(evaluate(on, premium.view(), 0, &*shared).tier->name, "premium");
    EXPECT_EQ(evaluate(on, longest.view(), 0, &*shared).tier->name, "free") << "the longest prefix wins";
    EXPECT_EQ(evaluate(on, unknown.view(), 0, &*shared).tier->name, "anon") << "no such L7 tier: anonymous";
    Req keyed{.peer = "198.51.100.9", .headers = {{"X-API-Key", "k1"}}};
    EXPECT_EQ(evaluate(on, keyed.view(), 0, &*shared).tier->name, "free") << "a key's own tier comes first";
}

TEST(L7Evaluate, QueryParametersAreDecoded) {
    EXPECT_EQ(query_parameter("/a?x=1&api_key=k%2F1+2&y", "api_key"), "k/1 2");
    EXPECT_EQ(query_parameter("/a?api_key", "api_key"), "");
    EXPECT_EQ(query_parameter("/a?other=api_key", "api_key"), "");
    EXPECT_EQ(query_parameter("/a", "api_key"), "");
    EXPECT_EQ(query_parameter("/a?k=%zz%4", "k"), "%zz%4") << "broken escapes stay as sent";
}

TEST(L7Limiter, AnswersCarryHeadersAndPersistentAbusersAreEscalatedOnce) {
    auto j = base();
    j["escalation"] = {{"after", 3}, {"window", "1m"}, {"ban", "10m"}};
    std::int64_t mono = 5'000'000'000, unix_ns = 1'700'000'000'000'000'000;
    Limiter limiter(std::make_shared<const L7Config>(parse(j)),
                    Clock{.monotonic_ns = [&] { return mono; }, .unix_ns = [&] { return unix_ns; }});
    Req anon;
    auto a = limiter.decide(anon.view());
    limiter.record(a);
    EXPECT_EQ(a.verdict, Verdict::allowed);
    EXPECT_EQ(a.status, 200U);
    EXPECT_FALSE(a.header_list().empty());
    a = limiter.decide(anon.view());
    limiter.record(a);
    int escalations = 0;
    for (int i = 0; i < 10; ++i) {
        a = limiter.decide(anon.view());
        limiter.record(a);
        EXPECT_EQ(a.verdict, Verdict::limited);
        EXPECT_EQ(a.status, 429U);
        EXPECT_EQ(a.retry_after_ns, 30'000'000'000LL) << "GCRA 2/min: one every 30 s";
        escalations += a.escalate;
    }
    EXPECT_EQ(escalations, 1) << "past 3 refusals, once per ban length";
    EXPECT_EQ(limiter.escalations(), 1U);
    mono += 30'000'000'000LL;  // Retry-After honoured
    a = limiter.decide(anon.view());
    EXPECT_EQ(a.verdict, Verdict::allowed);
    // Decisions alone count nothing; recorded answers do.
    std::uint64_t limited = 0;
    for (const auto& c : limiter.counts())
        if (c.verdict == "limited")
            limited += c.count;
    EXPECT_EQ(limited, 10U);

    // A reload changes the limit at once; keys keep their state when the shape stays.
    j["tiers"]["anon"]["limits"][0]["limit"] = 1000;
    limiter.reload(std::make_shared<const L7Config>(parse(j)));
    a = limiter.decide(anon.view());
    EXPECT_EQ(a.verdict, Verdict::limited) << "the GCRA schedule carries over: 60 s booked, 59.94 s of tolerance";
    EXPECT_EQ(a.retry_after_ns, 60'000'000LL);
    mono += 1'000'000'000LL;
    a = limiter.decide(anon.view());
    EXPECT_EQ(a.verdict, Verdict::allowed);
    EXPECT_EQ(a.header_list()[0].second, "1000");
}

}  // namespace
}  // namespace rlgate::l7
