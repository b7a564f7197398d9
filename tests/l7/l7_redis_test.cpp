// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7 with its limits in a real redis-server started by the test on
// loopback: two instances share one quota; a key over its limit stops costing
// Redis anything; NOSCRIPT after SCRIPT FLUSH; and Redis killed, paused and
// restarted, with each fallback (local, open, closed) and no request waiting
// past the timeout. Then its security options against redis-servers set up
// for them: AUTH with a password (--requirepass), an ACL user with the least
// rights rlgate needs (password given or read from a file), and TLS with a
// throwaway CA; each with its failures (wrong password, wrong server name,
// unknown CA, plain TCP to a TLS port), which never count as up.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
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
                {"connect_timeout", "1s"},  // a TLS handshake loading the system CAs under ASan takes > 100 ms
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
    // Batching is on by default: every decision made in Redis went in a batched call.
    for (const L7Process* l7 : {&a, &b}) {
        EXPECT_GE(metric(*l7, "rlgate_l7_redis_batches_total"), 1U);
        EXPECT_EQ(metric(*l7, "rlgate_l7_redis_batched_decisions_total"),
                  metric(*l7, "rlgate_l7_store_decisions_total{source=\"redis\"}"));
    }
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
    std::mutex mu;
    std::string others;  // what the requests not answered 200 got
    std::vector<std::thread> clients;
    for (int c = 0; c < 8; ++c)
        clients.emplace_back([&, c] {
            for (int i = 0; i < 10; ++i) {
                const auto t0 = std::chrono::steady_clock::now();
                const auto r = l7.check("/api/x", {{"X-Forwarded-For", "192.0.2." + std::to_string(10 + c)}});
                answered += r.status == 200;
                if (r.status != 200) {
                    std::lock_guard lock(mu);
                    others += std::to_string(r.status) + " " + r.body + "\n";
                }
                if (std::chrono::steady_clock::now() - t0 > 400ms)
                    ++slow;
            }
        });
    for (auto& t : clients)
        t.join();
    EXPECT_EQ(answered.load(), 80) << "local limits answered every request; the others got:\n" << others << l7.log_text();
    EXPECT_EQ(slow.load(), 0) << "a paused Redis held a request past the timeout";
    EXPECT_GE(metric(l7, "rlgate_l7_redis_timeouts_total"), 1U);
    redis_->resume();
    wait_redis_up(l7);
    const auto r = l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.9"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.at("x-ratelimit-remaining"), "999") << "back to the shared state";
}

// Polls the log of `l7` until it holds `text`.
bool log_shows(const L7Process& l7, const std::string& text, std::chrono::milliseconds within = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (l7.log_text().find(text) == std::string::npos) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

// `l7` (on_failure closed) is up and its first request for `ip` is decided in Redis.
void expect_decided_in_redis(const L7Process& l7, const std::string& ip, const std::string& remaining) {
    wait_redis_up(l7);
    const auto r = l7.check("/api/x", {{"X-Forwarded-For", ip}});
    EXPECT_EQ(r.status, 200) << l7.log_text();
    EXPECT_EQ(r.headers.count("x-ratelimit-remaining") ? r.headers.at("x-ratelimit-remaining") : "", remaining);
    EXPECT_GE(metric(l7, "rlgate_l7_store_decisions_total{source=\"redis\"}"), 1U);
    EXPECT_EQ(metric(l7, "rlgate_l7_store_decisions_total{source=\"closed\"}"), 0U);
}

// `l7` (on_failure closed) cannot use Redis: its log says why, it never reports
// Redis up, and its fallback refuses.
void expect_never_up(const L7Process& l7, const std::string& why) {
    ASSERT_TRUE(log_shows(l7, why)) << "expected \"" << why << "\" in:\n" << l7.log_text();
    const auto closed = metric(l7, "rlgate_l7_store_decisions_total{source=\"closed\"}");
    for (int i = 0; i < 3; ++i) {
        const auto r = l7.check("/api/x", {{"X-Forwarded-For", "192.0.2.99"}});
        EXPECT_EQ(r.status, 429);
        EXPECT_EQ(r.headers.count("retry-after") ? r.headers.at("retry-after") : "", "1");
    }
    EXPECT_EQ(metric(l7, "rlgate_l7_store_decisions_total{source=\"closed\"}"), closed + 3);
    EXPECT_EQ(metric(l7, "rlgate_l7_store_decisions_total{source=\"redis\"}"), 0U);
    EXPECT_EQ(metric(l7, "rlgate_l7_redis_up"), 0U);
    EXPECT_EQ(l7.log_text().find(" is up"), std::string::npos) << l7.log_text();
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size()))
        ++n;
    return n;
}

class RedisL7AuthTest : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(RedisServer::available(), "needs redis-server and redis-cli (Debian: redis-server)");
    }
};

TEST_F(RedisL7AuthTest, PasswordDecidesInRedisAWrongOrMissingOneNeverComesUp) {
    const std::string password = "s3cret pass'word";  // a space and a quote: AUTH must send it as one argument
    RedisServer redis({.args = {"--requirepass", password}, .cli_password = password});
    L7Process good("auth-good"), wrong("auth-wrong"), none("auth-none");
    auto cfg = redis_config(redis, "closed", 5);
    cfg["store"]["redis"]["password"] = password;
    good.write_config(cfg);
    cfg["store"]["redis"]["password"] = "s3cret pass";
    wrong.write_config(cfg);
    cfg["store"]["redis"].erase("password");
    none.write_config(cfg);
    good.start();
    wrong.start();
    none.start();

    expect_decided_in_redis(good, "192.0.2.20", "4");
    EXPECT_GE(redis_calls(redis, "evalsha"), 1U);
    expect_never_up(wrong, "AUTH refused: WRONGPASS");
    expect_never_up(none, "NOAUTH");  // connected, but Redis answers nothing without AUTH
}

TEST_F(RedisL7AuthTest, AclUserWithPasswordOrPasswordFileDecidesInRedis) {
    RedisServer redis;
    // The least rlgate-l7 needs: EVALSHA, SCRIPT LOAD, the commands its script
    // calls, and the keys under its prefix.
    ASSERT_EQ(redis.cli("ACL SETUSER rl on '>pw of rl' '~t:*' +evalsha '+script|load' +time +mget +set +zadd +zrange "
                        "+zcount +zremrangebyscore +pexpire"),
              "OK\n");
    L7Process given("acl-password"), from_file("acl-file"), wrong("acl-wrong");
    auto cfg = redis_config(redis, "closed", 5);
    cfg["store"]["redis"]["username"] = "rl";
    cfg["store"]["redis"]["password"] = "pw of rl";
    given.write_config(cfg);
    const auto pass_file = from_file.dir() / "redis.pass";
    std::ofstream(pass_file) << "pw of rl\n";  // the line's end is not part of it
    cfg["store"]["redis"].erase("password");
    cfg["store"]["redis"]["password_file"] = pass_file.string();
    from_file.write_config(cfg);
    cfg["store"]["redis"].erase("password_file");
    cfg["store"]["redis"]["password"] = "pw of default";
    wrong.write_config(cfg);
    given.start();
    from_file.start();
    wrong.start();

    expect_decided_in_redis(given, "192.0.2.21", "4");
    expect_decided_in_redis(from_file, "192.0.2.21", "3");  // one quota in one Redis
    // Logged in as `rl`, not as the default user (who has no password and would take any).
    EXPECT_GE(count_of(redis.cli("CLIENT LIST"), " user=rl "), 2U) << redis.cli("CLIENT LIST");
    expect_never_up(wrong, "AUTH refused: WRONGPASS");
}

class RedisL7TlsTest : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(RedisServer::available() && RedisServer::openssl_available(),
                       "needs redis-server, redis-cli and openssl (Debian: redis-server openssl)");
        try {
            redis_ = std::make_unique<RedisServer>(RedisServerOptions{.tls = true});
        } catch (const std::runtime_error& e) {
            // A redis-server built without TLS does not know the tls-* directives: it says
            // ">>> 'tls-port "N"'" and "Bad directive or wrong number of arguments".
            const std::string what = e.what();
            // Skipped outside CI, a failure with CI=true (Debian 12's redis-server has TLS).
            const bool no_tls = what.find("Bad directive") != std::string::npos && what.find(">>> 'tls-") != std::string::npos;
            RLGATE_REQUIRE(!no_tls, "this redis-server has no TLS support: " + what);
            throw;
        }
    }
    std::unique_ptr<RedisServer> redis_;
};

TEST_F(RedisL7TlsTest, TlsWithTheRightCaAndNameDecidesInRedisAnythingElseNeverComesUp) {
    L7Process by_ip("tls-ip"), by_name("tls-name"), wrong_name("tls-wrong-name"), unknown_ca("tls-unknown-ca"),
        plain("tls-plain");
    auto cfg = redis_config(*redis_, "closed", 5);
    auto& r = cfg["store"]["redis"];
    r["tls"] = true;
    r["tls_ca_file"] = redis_->ca_file();
    by_ip.write_config(cfg);  // checked against the certificate's IP:127.0.0.1
    r["tls_server_name"] = "localhost";
    by_name.write_config(cfg);  // against its DNS:localhost
    r["tls_server_name"] = "redis.example.org";
    wrong_name.write_config(cfg);
    r.erase("tls_server_name");
    r.erase("tls_ca_file");
    unknown_ca.write_config(cfg);  // the system's CAs: the test CA is not one of them
    r.erase("tls");
    plain.write_config(cfg);
    for (auto* l7 : {&by_ip, &by_name, &wrong_name, &unknown_ca, &plain})
        l7->start();

    expect_decided_in_redis(by_ip, "192.0.2.22", "4");
    expect_decided_in_redis(by_name, "192.0.2.22", "3");
    EXPECT_GE(redis_calls(*redis_, "evalsha"), 2U);
    expect_never_up(wrong_name, "certificate verify failed");
    expect_never_up(unknown_ca, "certificate verify failed");
    expect_never_up(plain, "did not answer PING");
}

}  // namespace
}  // namespace rlgate::testing
