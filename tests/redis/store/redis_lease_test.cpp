// SPDX-License-Identifier: BSD-2-Clause
// Token leasing (store.redis.lease_size) against a real redis-server: two
// stores sharing one key's quota never admit past it, Redis sees a fraction
// of the calls, and a lease refused near the limit falls back to single
// decisions (so the last units are still handed out).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <thread>

#include "l7/redis_store.hpp"
#include "redis/store/store_harness.hpp"
#include "support/bpf_env.hpp"
#include "support/redis_server.hpp"

namespace rlgate::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Keyed = ratelimit::MemoryStore::KeyedLimits;

class RedisLeaseTest : public RedisStoreTest {
protected:
    l7::RedisStore& store(unsigned lease_size) {
        auto s = settings("lease:");
        s.lease_size = lease_size;
        s.lease_ttl_ns = 5'000'000'000;
        return harness_->store(s, 5s);
    }
    ratelimit::Decision decide(l7::RedisStore& st, const std::vector<Keyed>& keyed) { return harness_->decide(st, keyed); }
};

TEST_F(RedisLeaseTest, TwoHostsLeasingNeverAdmitPastTheLimitAndSpareRedis) {
    auto& a = store(10);
    auto& b = store(10);
    const std::vector<ratelimit::LimitSpec> hundred = {
        {.name = "100/min", .algorithm = ratelimit::Algorithm::gcra, .limit = 100, .period_ns = 60'000'000'000ULL}};
    const std::vector<ratelimit::LimitSpec> roomy = {
        {.name = "global", .algorithm = ratelimit::Algorithm::gcra, .limit = 1'000'000, .period_ns = 60'000'000'000ULL}};
    const std::vector<Keyed> keyed = {{"api-key-1", hundred}, {"global", roomy}};
    std::atomic<int> allowed{0};
    std::atomic<std::uint64_t> worst_remaining_error{0};
    {
        std::vector<std::jthread> clients;
        for (int t = 0; t < 4; ++t)
            clients.emplace_back([&, t] {
                for (int i = 0; i < 40; ++i) {
                    const auto d = decide(t % 2 ? a : b, keyed);
                    allowed += d.allowed;
                    if (d.allowed && d.tightest.remaining > 99)
                        ++worst_remaining_error;
                }
            });
    }
    // Charged before use: never past the limit. Units leased by one host and not used by
    // the end are lost (at most two overlapping leases' worth per host).
    EXPECT_LE(allowed.load(), 100);
    EXPECT_GE(allowed.load(), 100 - 2 * 18);
    EXPECT_EQ(worst_remaining_error.load(), 0U) << "remaining never above the limit minus one";
    const auto sa = a.stats(), sb = b.stats();
    EXPECT_GT(sa.leases + sb.leases, 0U);
    EXPECT_GT(sa.lease + sb.lease, 50U) << "most admitted decisions came from a lease";
    const auto calls = evalsha_calls();
    EXPECT_LT(calls, 160U / 2) << "Redis saw fewer calls than decisions";
    std::cout << "[ lease    ] 160 decisions, " << allowed.load() << " admitted, " << calls << " EVALSHA, "
              << sa.leases + sb.leases << " leases\n";
}

TEST_F(RedisLeaseTest, NearTheLimitALeaseIsRefusedAndSingleDecisionsTakeTheLastUnits) {
    auto& a = store(10);
    const std::vector<ratelimit::LimitSpec> fifteen = {
        {.name = "15/min", .algorithm = ratelimit::Algorithm::gcra, .limit = 15, .period_ns = 60'000'000'000ULL}};
    const std::vector<Keyed> keyed = {{"api-key-2", fifteen}};
    int allowed = 0;
    for (int i = 0; i < 20; ++i)
        allowed += decide(a, keyed).allowed;
    EXPECT_EQ(allowed, 15) << "1 single, a lease of 10, then 4 singles: every unit used on one host";
    EXPECT_EQ(a.stats().leases, 1U);
}

}  // namespace
}  // namespace rlgate::testing
