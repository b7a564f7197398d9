// SPDX-License-Identifier: BSD-2-Clause
// Batching of concurrent decisions (store.redis.batch) against a real
// redis-server: decisions in flight together share EVALSHA calls, and two
// stores batching against one Redis still never admit past a limit, for a
// decision of one GCRA limit (the script's fast path) as for one of several
// keys and algorithms (its general path). batch 1 sends one call per decision.
#include <gtest/gtest.h>

#include <thread>

#include "l7/redis_store.hpp"
#include "redis/store/store_harness.hpp"
#include "support/bpf_env.hpp"
#include "support/redis_server.hpp"

namespace rlgate::testing {
namespace {

using namespace std::chrono_literals;
using Keyed = ratelimit::MemoryStore::KeyedLimits;
using ratelimit::Algorithm;
using ratelimit::LimitSpec;

class RedisBatchTest : public RedisStoreTest {
protected:
    l7::RedisStore& store(unsigned batch) {
        auto s = settings("batch:");
        s.timeout_ns = 2'000'000'000;
        s.batch = batch;
        auto& st = harness_->store(s, 5s);
        // Loaded into Redis once (SCRIPT LOAD on the first NOSCRIPT), so that calls count decisions only.
        const std::vector<LimitSpec> any = {{.name = "warm", .algorithm = Algorithm::gcra, .limit = 1, .period_ns = 1'000'000}};
        harness_->decide(st, {{"warm-up", any}});
        return st;
    }
    // Two stores, `per_store` decisions each, all in flight at once: how many were admitted.
    int admitted_by_two(l7::RedisStore& a, l7::RedisStore& b, const std::vector<Keyed>& keyed, std::size_t per_store) {
        int allowed = 0;
        std::vector<ratelimit::Decision> from_b;
        {
            std::jthread other([&] { from_b = harness_->decide_concurrently(b, keyed, per_store); });
            for (const auto& d : harness_->decide_concurrently(a, keyed, per_store))
                allowed += d.allowed;
        }
        for (const auto& d : from_b)
            allowed += d.allowed;
        return allowed;
    }
};

TEST_F(RedisBatchTest, ConcurrentDecisionsShareCallsAndTwoStoresNeverAdmitPastALimit) {
    auto& a = store(32);
    auto& b = store(32);
    // Per hour: no unit comes back while the test runs, however slow the machine.
    const std::vector<LimitSpec> hundred = {{.name = "100/h", .algorithm = Algorithm::gcra, .limit = 100,
                                             .period_ns = 3'600'000'000'000ULL}};
    const std::vector<LimitSpec> window = {{.name = "70/h", .algorithm = Algorithm::sliding_window, .limit = 70,
                                            .period_ns = 3'600'000'000'000ULL},
                                           {.name = "bucket", .algorithm = Algorithm::token_bucket, .limit = 1000,
                                            .period_ns = 60'000'000'000ULL}};
    const std::vector<LimitSpec> roomy = {{.name = "global", .algorithm = Algorithm::gcra, .limit = 1'000'000,
                                           .period_ns = 60'000'000'000ULL}};
    const std::uint64_t calls_before = evalsha_calls();
    const auto a0 = a.stats(), b0 = b.stats();  // the warm-ups'
    // One GCRA limit: the script's fast path.
    EXPECT_EQ(admitted_by_two(a, b, {{"api-key-1", hundred}}, 150), 100);
    // Two keys, three limits of three algorithms: the general path.
    EXPECT_EQ(admitted_by_two(a, b, {{"api-key-2", window}, {"global", roomy}}, 150), 70);
    const auto sa = a.stats(), sb = b.stats();
    const std::uint64_t calls = evalsha_calls() - calls_before;
    const std::uint64_t by_redis = sa.redis + sb.redis - a0.redis - b0.redis;
    EXPECT_EQ(by_redis + sa.cache + sb.cache - a0.cache - b0.cache, 600U) << "by Redis, or refused from the cache";
    EXPECT_EQ(sa.batched + sb.batched - a0.batched - b0.batched, by_redis) << "every decision Redis made was batched";
    EXPECT_GT(by_redis, 170U);
    EXPECT_LT(calls, 600U / 2) << "concurrent decisions shared their EVALSHA calls";
    EXPECT_EQ(calls, sa.batches + sb.batches - a0.batches - b0.batches);
    std::cout << "[ batch    ] 600 decisions in " << calls << " EVALSHA calls\n";
}

TEST_F(RedisBatchTest, BatchOneSendsEachDecisionAlone) {
    auto& a = store(1);
    const std::vector<LimitSpec> roomy = {{.name = "1000/min", .algorithm = Algorithm::gcra, .limit = 1000,
                                           .period_ns = 60'000'000'000ULL}};
    const std::uint64_t calls_before = evalsha_calls();
    int allowed = 0;
    for (const auto& d : harness_->decide_concurrently(a, {{"api-key-3", roomy}}, 40))
        allowed += d.allowed;
    EXPECT_EQ(allowed, 40);
    EXPECT_EQ(evalsha_calls() - calls_before, 40U);
    EXPECT_EQ(a.stats().batches, 0U);
}

// Redis refusing the script (here an ACL user set up as the docs said before the
// script read states with MGET): the store's fallback decides, and the refusal is
// counted (rlgate_l7_redis_script_errors_total) and logged.
TEST_F(RedisBatchTest, ACallRedisRefusesFallsBackAndIsCounted) {
    ASSERT_EQ(redis_->cli("ACL SETUSER old on '>pw' '~batch:*' +evalsha '+script|load' +time +get +set"), "OK\n");
    auto s = settings("batch:");
    s.username = "old";
    s.password = "pw";
    auto& st = harness_->store(s, 5s);
    const std::vector<LimitSpec> ten = {{.name = "10/min", .algorithm = Algorithm::gcra, .limit = 10,
                                         .period_ns = 60'000'000'000ULL}};
    for (int i = 0; i < 3; ++i)
        EXPECT_FALSE(harness_->decide(st, {{"api-key-4", ten}}).allowed) << "on_failure closed refuses";
    EXPECT_EQ(st.stats().closed, 3U);
    EXPECT_EQ(st.stats().redis, 0U);
    EXPECT_GE(st.stats().script_errors, 3U);
}

}  // namespace
}  // namespace rlgate::testing
