// SPDX-License-Identifier: BSD-2-Clause
// The L7 limiter's algorithms over an injected clock (nanoseconds of any
// monotonic clock). Pure and allocation-free on the hot path except the
// sliding log, whose size is bounded by its limit. A clock that steps
// backwards is treated as standing still: no negative wait, no free tokens.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "core/ratelimit/time_zone.hpp"

namespace rlgate::ratelimit {

enum class Algorithm { token_bucket, gcra, sliding_log, sliding_window, fixed_window };
enum class Calendar { none, minute, hour, day };  // fixed windows aligned to UTC boundaries

struct LimitSpec {
    std::string name;                 // e.g. "10/min", shown in RateLimit-Policy
    Algorithm algorithm = Algorithm::gcra;
    std::uint64_t limit = 1;          // requests (cost units) per period; token bucket: the burst
    std::uint64_t period_ns = 60'000'000'000ULL;
    std::uint64_t burst = 0;          // token bucket / GCRA: extra capacity; 0 = `limit`
    Calendar calendar = Calendar::none;  // fixed_window only
    std::shared_ptr<const TimeZone> zone;  // calendar windows: local boundaries; null = UTC
};

// Per key and limit. One struct for all algorithms keeps stores simple.
struct LimitState {
    std::int64_t a = 0;  // token bucket: last refill; GCRA: TAT; windows: window start
    double tokens = 0;   // token bucket: tokens held
    std::uint64_t current = 0, previous = 0;  // windows: counts
    // Sliding log only: times of admitted units, allocated on first use so the
    // other algorithms keep a small, flat state.
    std::shared_ptr<std::deque<std::int64_t>> log;
    bool started = false;
};

struct Verdict {
    bool allowed = false;
    std::uint64_t limit = 0;
    std::uint64_t remaining = 0;   // units still admissible now, after this request if allowed
    std::int64_t reset_ns = 0;     // until the limit is fully available again
    std::int64_t retry_after_ns = 0;  // until this request would be admitted (0 if allowed)
};

// Checks `cost` units at `now_ns`; changes `state` only when `commit` and allowed.
// Costs above the limit's capacity are never admitted (retry_after = reset).
Verdict check(const LimitSpec& spec, LimitState& state, std::int64_t now_ns, std::uint64_t cost, bool commit);

// Start of the calendar window containing `unix_ns` (UTC).
std::int64_t calendar_window_start(Calendar c, std::int64_t unix_ns);
std::int64_t calendar_window_length(Calendar c);

// [start, end) in Unix ns of the calendar window containing `unix_ns`, its
// boundaries on local time in `zone` (null: UTC). A local day may last 23 or
// 25 hours across a daylight-saving change.
struct Window {
    std::int64_t start, end;
};
Window calendar_window(Calendar c, std::int64_t unix_ns, const TimeZone* zone);

}  // namespace rlgate::ratelimit
