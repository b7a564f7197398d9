// SPDX-License-Identifier: BSD-2-Clause
// A token bucket with an injected clock (nanoseconds of any monotonic
// clock). Pure; not thread-safe. Never hands out more than `burst` after a
// pause, and a clock that steps backwards neither refills nor goes negative.
#pragma once

#include <algorithm>
#include <cstdint>

namespace rlgate::ratelimit {

class TokenBucket {
public:
    TokenBucket(double rate_per_sec, double burst) : rate_(rate_per_sec), burst_(burst), tokens_(burst) {}

    // Takes `cost` tokens at time `now_ns` if available.
    bool try_take(std::uint64_t now_ns, double cost = 1.0) {
        if (started_ && now_ns > last_ns_)
            tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ns - last_ns_) / 1e9);
        if (!started_ || now_ns > last_ns_)
            last_ns_ = now_ns;
        started_ = true;
        if (tokens_ < cost)
            return false;
        tokens_ -= cost;
        return true;
    }
    // Seconds until `cost` tokens are available (0 if now).
    [[nodiscard]] double wait_seconds(double cost = 1.0) const {
        return tokens_ >= cost || rate_ <= 0 ? 0.0 : (cost - tokens_) / rate_;
    }

private:
    double rate_, burst_, tokens_;
    std::uint64_t last_ns_ = 0;
    bool started_ = false;
};

}  // namespace rlgate::ratelimit
