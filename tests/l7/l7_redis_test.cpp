// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7 with its limits in a real redis-server started by the test on
// loopback: two instances share one quota; a key over its limit stops costing
// Redis anything; NOSCRIPT after SCRIPT FLUSH; and Redis killed, paused and
// restarted, with each fallback (local, open, closed) and no request waiting
// past the timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/bpf_env.hpp"
#include "support/l7_process.hpp"
#include "support/redis_server.hpp"

namespace rlgate::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

json redis_config(const RedisServer& redis, const std::string& on_failure, unsigned limit, unsigned fleet = 1) {
    return {{"mode", "forward_auth"},
            {"trusted_proxies", {"127.0.0.1/32"}},  // the test client plays the proxy: X-Forwarded-For counts
            {"anonymous_tier", "anonymous"},
            {"tiers", {{"anonymous", {{"limits", {{{"name", "shared"}, {"limit", limit}, {"per", "1m"}}}}}}}},
            {"escalation", {{"enabled", false}}},
            {"store",
             {{"type", "redis"},
              {"redis",
               {{"address", "127.0.0.1:" + std::to_string(redis.port())},
                {"timeout", "50ms"},
                {"connect_timeout", "100ms"},
                {"on_failure", on_failure},
                {"fleet_size", fleet},
                {"prefix", "t:"}}}}}};
}

std::uint64_t metric(const L7Process& l7, const std::string& line_prefix) {
    const auto m = l7.get("/metrics").body;
    const auto at = m.find("\n" + line_prefix + " ");
    if (at == std::string::npos)
        return 0;
    return std::stoull(m.substr(at + line_prefix.size() + 2));
}

// calls= of a command in INFO commandstats.
std::uint64_t redis_calls(const RedisServer& redis, const std::string& command) {
    const auto v = redis.info_field("commandstats", "cmdstat_" + command);
    const auto at = v.find("calls=");
    return at == std::string::npos ? 0 : std::stoull(v.substr(at + 6));
}

class RedisL7Test : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(RedisServer::available(), "needs redis-server and redis-cli (Debian: redis-server)");
        redis_ = std::make_unique<RedisServer>();
    }
    std::unique_ptr<RedisServer> redis_;
};

// Waits until `l7` reports Redis as up (its connections are made in the background).
void wait_redis_up(const L7Process& l7, bool up = true) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline && (metric(l7, "rlgate_l7_redis_up") == 1) != up)
        std::this_thread::sleep_for(20ms);
    ASSERT_EQ(metric(l7, "rlgate_l7_redis_up"), up ? 1U : 0U) << l7.log_text();
}

TEST_F(RedisL7Test, TwoInstancesShareOneQuotaUnderConcurrency) {
    L7Process a("redis-a"), b("redis-b");
    a.write_config(redis_config(*redis_, "closed", 25));
    b.write_config(redis_config(*redis_, "closed", 25));
    a.start();
    b.start();
    wait_redis_up(a);
    wait_redis_up(b);
    // Four clients, two per instance, 50 requests each, all the same anonymous caller.
    std::atomic<int> allowed{0}, refused{0}, other{0};
    auto client = [&](const L7Process& l7) {
        for (int i = 0; i < 50; ++i) {
            const auto r = l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.1"}});
            (r.status == 200 ? allowed : r.status == 429 ? refused : other)++;
        }
    };
    std::vector<std::thread> clients;
    for (int i = 0; i < 4; ++i)
        clients.emplace_back(client, std::cref(i % 2 ? a : b));
    for (auto& t : clients)
        t.join();
    EXPECT_EQ(allowed.load(), 25) << "one quota across both instances";
    EXPECT_EQ(refused.load(), 175);
    EXPECT_EQ(other.load(), 0);
    // Every limit key in Redis carries a TTL (idle keys vanish) and the prefix.
    const auto keys = redis_->cli("--scan --pattern 't:*'");
    ASSERT_FALSE(keys.empty());
    const auto first = keys.substr(0, keys.find('\n'));
    const auto ttl = std::stoll(redis_->cli("PTTL '" + first + "'"));
    EXPECT_GT(ttl, 0) << first;
    EXPECT_LE(ttl, 70'000) << first;
}

TEST_F(RedisL7Test, AKeyOverItsLimitCostsRedisNothingUntilItsRetryTime) {
    L7Process l7("redis-cache");
    l7.write_config(redis_config(*redis_, "closed", 3));
    l7.start();
    wait_redis_up(l7);
    for (int i = 0; i < 4; ++i)
        l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.2"}});  // 3 admitted, the 4th refused by Redis
    const auto before = redis_calls(*redis_, "evalsha");
    int refused = 0;
    for (int i = 0; i < 100; ++i)
        refused += l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.2"}}).status == 429;
    EXPECT_EQ(refused, 100);
    EXPECT_EQ(redis_calls(*redis_, "evalsha"), before) << "refused from the local cache";
    EXPECT_GE(metric(l7, "rlgate_l7_store_decisions_total{source=\"cache\"}"), 100U);
    // Another caller still goes to Redis.
    EXPECT_EQ(l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.3"}}).status, 200);
    EXPECT_EQ(redis_calls(*redis_, "evalsha"), before + 1);
}

TEST_F(RedisL7Test, ScriptFlushIsRecoveredByLoadingTheScriptAgain) {
    L7Process l7("redis-noscript");
    l7.write_config(redis_config(*redis_, "closed", 5));
    l7.start();
    wait_redis_up(l7);
    EXPECT_EQ(l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.4"}}).status, 200);
    EXPECT_EQ(redis_->cli("SCRIPT FLUSH"), "OK\n");
    const auto r = l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.4"}});
    EXPECT_EQ(r.status, 200) << "decided in Redis again, not by the fallback";
    EXPECT_EQ(r.headers.at("x-ratelimit-remaining"), "3") << "the shared count went on";
    EXPECT_GE(metric(l7, "rlgate_l7_redis_script_loads_total"), 1U);
    EXPECT_EQ(metric(l7, "rlgate_l7_store_decisions_total{source=\"closed\"}"), 0U);
}

TEST_F(RedisL7Test, KilledRedisFallsBackToLocalLimitsThenBackToSharedState) {
    L7Process l7("redis-kill");
    l7.write_config(redis_config(*redis_, "local", 20, 2));  // locally 20 / 2 = 10
    l7.start();
    wait_redis_up(l7);
    EXPECT_EQ(l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.5"}}).status, 200);
    redis_->kill();
    int allowed = 0;
    auto slowest = 0ms;
    for (int i = 0; i < 30; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        allowed += l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.5"}}).status == 200;
        slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0));
    }
    EXPECT_EQ(allowed, 10) << "this host's share of the limit while Redis is gone";
    EXPECT_LT(slowest, 500ms) << "no request waits on a dead Redis";
    wait_redis_up(l7, false);
    EXPECT_GE(metric(l7, "rlgate_l7_store_decisions_total{source=\"local\"}"), 29U);

    redis_->start();  // same port, empty: the shared state starts over
    wait_redis_up(l7);
    const auto r = l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.5"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.at("x-ratelimit-remaining"), "19") << "decided in the new Redis";
}

TEST_F(RedisL7Test, FailOpenAdmitsAndFailClosedRefusesWhileRedisIsDown) {
    L7Process open("redis-open"), closed("redis-closed");
    open.write_config(redis_config(*redis_, "open", 1));
    closed.write_config(redis_config(*redis_, "closed", 1));
    open.start();
    closed.start();
    wait_redis_up(open);
    wait_redis_up(closed);
    redis_->kill();
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(open.check("/api/x", {{"X-Forwarded-For", "192.0.2.6"}}).status, 200);
        const auto r = closed.check("/api/x", {{"X-Forwarded-For", "192.0.2.7"}});
        EXPECT_EQ(r.status, 429);
        EXPECT_EQ(r.headers.at("retry-after"), "1");
    }
}

TEST_F(RedisL7Test, APausedRedisCostsEachRequestAtMostTheTimeoutWithoutPileUp) {
    L7Process l7("redis-pause");
    l7.write_config(redis_config(*redis_, "local", 1000));
    l7.start();
    wait_redis_up(l7);
    redis_->pause();
    // Eight clients at once against a Redis that accepts but never answers.
    std::atomic<int> answered{0}, slow{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c)
        clients.emplace_back([&, c] {
            for (int i = 0; i < 10; ++i) {
                const auto t0 = std::chrono::steady_clock::now();
                const auto r = l7.check("/api/x", {{"X-Forwarded-For", "192.0.2." + std::to_string(10 + c)}});
                answered += r.status == 200;
                if (std::chrono::steady_clock::now() - t0 > 400ms)
                    ++slow;
            }
        });
    for (auto& t : clients)
        t.join();
    EXPECT_EQ(answered.load(), 80) << "local limits answered every request";
    EXPECT_EQ(slow.load(), 0) << "a paused Redis held a request past the timeout";
    EXPECT_GE(metric(l7, "rlgate_l7_redis_timeouts_total"), 1U);
    redis_->resume();
    wait_redis_up(l7);
    const auto r = l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.9"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.at("x-ratelimit-remaining"), "999") << "back to the shared state";
}

}  // namespace
}  // namespace rlgate::testing
