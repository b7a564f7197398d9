// SPDX-License-Identifier: BSD-2-Clause
// What waits for one webhook: a bounded queue (the oldest notification goes
// when it overflows, counted) and the retry schedule of the one in flight
// (exponential backoff, capped). Pure: times come from the caller.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>

namespace rlgate::alerts {

class DeliveryQueue {
public:
    DeliveryQueue(std::size_t capacity, std::int64_t max_backoff_ms)
        : capacity_(std::max<std::size_t>(1, capacity)), max_backoff_ms_(max_backoff_ms) {}

    void push(std::string payload) {
        if (items_.size() == capacity_) {  // the receiver is still down: its backoff goes on
            // The oldest goes, unless it is on its way right now: then the next oldest.
            if (in_flight_ && items_.size() > 1)
                items_.erase(items_.begin() + 1);
            else if (!in_flight_)
                items_.pop_front();
            else
                return void(++dropped_);  // capacity 1 and busy: the new one goes
            ++dropped_;
        }
        items_.push_back(std::move(payload));
    }
    [[nodiscard]] bool empty() const { return items_.empty(); }
    [[nodiscard]] std::size_t size() const { return items_.size(); }
    [[nodiscard]] const std::string& front() const { return items_.front(); }
    [[nodiscard]] bool due(std::int64_t now_ms) const { return !items_.empty() && now_ms >= next_try_ms_; }

    // The front is being sent: a full queue must not drop it meanwhile.
    void begin_attempt() { in_flight_ = true; }

    void delivered() {
        in_flight_ = false;
        items_.pop_front();
        attempts_ = 0;
        next_try_ms_ = 0;
        ++delivered_;
    }
    // After a failed attempt: 1 s, 2 s, 4 s ... up to the cap.
    void failed(std::int64_t now_ms) {
        in_flight_ = false;
        ++failures_;
        const auto shift = std::min<std::uint32_t>(attempts_++, 30);
        next_try_ms_ = now_ms + std::min<std::int64_t>(max_backoff_ms_, std::int64_t{1000} << shift);
    }
    [[nodiscard]] std::int64_t next_try_ms() const { return next_try_ms_; }
    [[nodiscard]] std::uint64_t dropped() const { return dropped_; }
    [[nodiscard]] std::uint64_t delivered_count() const { return delivered_; }
    [[nodiscard]] std::uint64_t failures() const { return failures_; }

private:
    std::size_t capacity_;
    std::int64_t max_backoff_ms_;
    std::deque<std::string> items_;
    std::uint32_t attempts_ = 0;
    bool in_flight_ = false;
    std::int64_t next_try_ms_ = 0;
    std::uint64_t dropped_ = 0, delivered_ = 0, failures_ = 0;
};

}  // namespace rlgate::alerts
