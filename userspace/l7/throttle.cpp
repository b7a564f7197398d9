// SPDX-License-Identifier: BSD-2-Clause
#include "l7/throttle.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace rlgate::l7 {

namespace asio = boost::asio;

bool ThrottleGate::enter_queue(const Throttle& t) {
    std::lock_guard lock(mu_);
    if (waiting_ >= t.queue)
        return false;
    ++waiting_;
    return true;
}

void ThrottleGate::leave_queue() {
    std::lock_guard lock(mu_);
    --waiting_;
}

asio::awaitable<bool> ThrottleGate::acquire(const Throttle& t, std::chrono::steady_clock::time_point deadline) {
    auto waiter = std::make_shared<Waiter>();
    const auto executor = co_await asio::this_coro::executor;  // a statement of its own (GCC 12), before the lock
    {
        std::lock_guard lock(mu_);
        if (t.concurrency == 0 || in_flight_ < t.concurrency) {
            ++in_flight_;
            co_return true;
        }
        if (waiting_ >= t.queue)
            co_return false;
        ++waiting_;
        waiter->timer = std::make_shared<asio::steady_timer>(executor, deadline);
        queue_.push_back(waiter);
    }
    co_await waiter->timer->async_wait(asio::as_tuple(asio::use_awaitable));
    std::lock_guard lock(mu_);
    if (waiter->granted)
        co_return true;  // release() handed its slot over (waiting_ already adjusted)
    // Deadline passed: leave the queue.
    queue_.erase(std::remove(queue_.begin(), queue_.end(), waiter), queue_.end());
    --waiting_;
    co_return false;
}

void ThrottleGate::release() {
    std::lock_guard lock(mu_);
    if (queue_.empty()) {
        --in_flight_;
        return;
    }
    auto next = queue_.front();
    queue_.pop_front();
    --waiting_;
    next->granted = true;  // the slot passes on: in_flight_ stays
    // Timers are not thread-safe: cancel it on its own executor.
    asio::post(next->timer->get_executor(), [timer = next->timer] { timer->cancel(); });
}

std::uint32_t ThrottleGate::waiting() const {
    std::lock_guard lock(mu_);
    return waiting_;
}

std::uint32_t ThrottleGate::in_flight() const {
    std::lock_guard lock(mu_);
    return in_flight_;
}

}  // namespace rlgate::l7
