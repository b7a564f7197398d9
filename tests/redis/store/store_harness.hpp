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
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "l7/redis_store.hpp"

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

private:
    boost::asio::io_context io_{2};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::jthread runner_;
    std::vector<std::unique_ptr<l7::RedisStore>> stores_;  // stopped before the io_context ends
};

}  // namespace rlgate::testing
