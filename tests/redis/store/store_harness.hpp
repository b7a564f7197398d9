// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's RedisStore driven in process by a test: an io_context on a
// thread of its own, stores made from settings (started, waited for until up),
// and decisions run to completion from the test's thread.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "l7/redis_store.hpp"
#include "support/bpf_env.hpp"
#include "support/redis_server.hpp"

namespace rlgate::testing {

class StoreHarness {
public:
    using Keyed = ratelimit::MemoryStore::KeyedLimits;

    StoreHarness() : work_(io_.get_executor()), runner_([this] { io_.run(); }) {}
    ~StoreHarness() {
        for (auto& s : stores_)
            s->stop();
        work_.reset();
        io_.stop();
        runner_.join();
    }
    StoreHarness(const StoreHarness&) = delete;
    StoreHarness& operator=(const StoreHarness&) = delete;

    // A started store; a test failure if it is not up within `wait`.
    l7::RedisStore& store(const l7::RedisStoreSettings& s, std::chrono::milliseconds wait) {
        stores_.push_back(std::make_unique<l7::RedisStore>(io_, s, 1024));
        auto& st = *stores_.back();
        st.start();
        const auto deadline = std::chrono::steady_clock::now() + wait;
        while (!st.up() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        EXPECT_TRUE(st.up()) << "the store never saw Redis up";
        return st;
    }

    ratelimit::Decision decide(l7::RedisStore& st, const std::vector<Keyed>& keyed, std::uint64_t cost = 1) {
        const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        const auto unix = std::chrono::system_clock::now().time_since_epoch().count();
        return boost::asio::co_spawn(io_, st.decide(keyed, cost, now, unix), boost::asio::use_future).get();
    }

    // `n` decisions in flight at once (as a busy server has them), each completed.
    std::vector<ratelimit::Decision> decide_concurrently(l7::RedisStore& st, const std::vector<Keyed>& keyed, std::size_t n,
                                                         std::uint64_t cost = 1) {
        std::vector<std::future<ratelimit::Decision>> pending;
        for (std::size_t i = 0; i < n; ++i) {
            const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
            const auto unix = std::chrono::system_clock::now().time_since_epoch().count();
            pending.push_back(boost::asio::co_spawn(io_, st.decide(keyed, cost, now, unix), boost::asio::use_future));
        }
        std::vector<ratelimit::Decision> out;
        for (auto& p : pending)
            out.push_back(p.get());
        return out;
    }

private:
    boost::asio::io_context io_{2};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::jthread runner_;
    std::vector<std::unique_ptr<l7::RedisStore>> stores_;  // stopped before the io_context ends
};

// The fixture of the in-process store tests: a redis-server of the test's own
// on loopback and a harness, with the settings of a store on it.
class RedisStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(RedisServer::available(), "needs redis-server and redis-cli (Debian: redis-server)");
        redis_ = std::make_unique<RedisServer>();
        harness_.emplace();
    }
    void TearDown() override { harness_.reset(); }

    // On failure, refuse: a test sees Redis's decisions or none.
    [[nodiscard]] l7::RedisStoreSettings settings(std::string prefix) const {
        l7::RedisStoreSettings s;
        s.port = redis_->port();
        s.prefix = std::move(prefix);
        s.timeout_ns = 1'000'000'000;
        s.on_failure = l7::RedisFailure::closed;
        return s;
    }
    [[nodiscard]] std::uint64_t evalsha_calls() const {
        const auto evalsha = redis_->info_field("commandstats", "cmdstat_evalsha");
        return evalsha.empty() ? 0 : std::stoull(evalsha.substr(evalsha.find("calls=") + 6));
    }

    std::unique_ptr<RedisServer> redis_;
    std::optional<StoreHarness> harness_;
};

}  // namespace rlgate::testing
