// SPDX-License-Identifier: BSD-2-Clause
// An endpoint's throttle: requests over its rate limit, or over its bound on
// requests in flight (proxy mode), wait in a bounded queue up to a deadline
// instead of being refused. Shared by all connections; thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/l7/l7_config.hpp"

namespace rlgate::l7 {

class ThrottleGate {
public:
    // Takes a place in the queue (false when `queue` requests already wait).
    bool enter_queue(const Throttle& t);
    void leave_queue();

    // Proxy mode: waits (queued, FIFO) for one of `concurrency` slots until
    // `deadline`; false when the queue is full or the deadline passed.
    boost::asio::awaitable<bool> acquire(const Throttle& t, std::chrono::steady_clock::time_point deadline);
    void release();

    [[nodiscard]] std::uint32_t waiting() const;
    [[nodiscard]] std::uint32_t in_flight() const;

private:
    struct Waiter {
        std::shared_ptr<boost::asio::steady_timer> timer;
        bool granted = false;
    };
    mutable std::mutex mu_;
    std::uint32_t waiting_ = 0;
    std::uint32_t in_flight_ = 0;
    std::deque<std::shared_ptr<Waiter>> queue_;
};

}  // namespace rlgate::l7
