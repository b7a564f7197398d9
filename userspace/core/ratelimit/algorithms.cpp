// SPDX-License-Identifier: BSD-2-Clause
#include "core/ratelimit/algorithms.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rlgate::ratelimit {
namespace {

constexpr std::int64_t kMinute = 60'000'000'000LL;

std::uint64_t capacity(const LimitSpec& s) { return s.burst ? s.burst : s.limit; }

// Nanoseconds for `units` at `limit` per `period`, rounded up, saturating.
std::int64_t ns_for(const LimitSpec& s, double units) {
    const double ns = std::ceil(units * static_cast<double>(s.period_ns) / static_cast<double>(std::max<std::uint64_t>(1, s.limit)));
    return ns >= 9.2e18 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(ns);
}

Verdict token_bucket(const LimitSpec& s, LimitState& st, std::int64_t now, std::uint64_t cost, bool commit) {
    const double cap = static_cast<double>(capacity(s));
    double tokens = st.started ? st.tokens : cap;
    std::int64_t last = st.started ? st.a : now;
    if (now > last) {
        tokens = std::min(cap, tokens + static_cast<double>(now - last) * static_cast<double>(s.limit) / static_cast<double>(s.period_ns));
        last = now;
    }
    Verdict v;
    v.limit = capacity(s);
    const auto c = static_cast<double>(cost);
    v.allowed = c <= tokens && cost <= capacity(s);
    const double left = v.allowed ? tokens - c : tokens;
    v.remaining = static_cast<std::uint64_t>(std::floor(left));
    v.reset_ns = ns_for(s, cap - left);
    v.retry_after_ns = v.allowed ? 0 : (cost > capacity(s) ? v.reset_ns : ns_for(s, c - tokens));
    if (commit && v.allowed) {
        st.tokens = left;
        st.a = last;
        st.started = true;
    }
    return v;
}

// `n` emission intervals, saturating; in doubles, as the Redis script does.
std::int64_t intervals(std::int64_t interval, std::uint64_t n) {
    const double ns = static_cast<double>(interval) * static_cast<double>(n);
    return ns >= 9.2e18 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(ns);
}

// GCRA: one theoretical arrival time; burst = how far ahead of now it may run.
// Costs and the tolerance are whole emission intervals (rounded up to a ns):
// ceil(C × P / L) would be a few ns short of C intervals whenever L does not
// divide P, and a burst of C would then admit C - 1 (7 per minute: 6).
Verdict gcra(const LimitSpec& s, LimitState& st, std::int64_t now, std::uint64_t cost, bool commit) {
    const std::int64_t interval = ns_for(s, 1.0);
    const std::int64_t tolerance = intervals(interval, capacity(s));
    const std::int64_t tat = st.started ? std::max(st.a, now) : now;
    const std::int64_t increment = intervals(interval, cost);
    const std::int64_t new_tat = tat > std::numeric_limits<std::int64_t>::max() - increment ? std::numeric_limits<std::int64_t>::max() : tat + increment;
    Verdict v;
    v.limit = capacity(s);
    const std::int64_t allow_at = new_tat - tolerance;
    v.allowed = cost <= capacity(s) && allow_at <= now;
    const std::int64_t used_until = v.allowed ? new_tat : tat;
    const std::int64_t slack = tolerance - (used_until - now);
    v.remaining = slack <= 0 || interval <= 0 ? 0 : static_cast<std::uint64_t>(slack / interval);
    v.reset_ns = std::max<std::int64_t>(0, used_until - now);
    v.retry_after_ns = v.allowed ? 0 : (cost > capacity(s) ? v.reset_ns : std::max<std::int64_t>(0, allow_at - now));
    if (commit && v.allowed) {
        st.a = new_tat;
        st.started = true;
    }
    return v;
}

Verdict fixed_window(const LimitSpec& s, LimitState& st, std::int64_t now, std::uint64_t cost, bool commit) {
    std::int64_t length = 0, start = 0;
    if (s.calendar != Calendar::none) {
        const auto w = calendar_window(s.calendar, now, s.zone.get());
        start = w.start;
        length = w.end - w.start;
    } else {
        length = static_cast<std::int64_t>(s.period_ns);
        start = now - (now % length + length) % length;
    }
    std::uint64_t count = st.started && st.a == start ? st.current : 0;
    if (st.started && st.a > start)  // the clock stepped back into an earlier window: stay in the newer one
        count = st.current;
    const std::int64_t window_start = std::max(st.started ? st.a : start, start);
    Verdict v;
    v.limit = s.limit;
    v.allowed = count + cost <= s.limit && cost <= s.limit;
    const auto used = v.allowed ? count + cost : count;
    v.remaining = s.limit - std::min(s.limit, used);
    v.reset_ns = std::max<std::int64_t>(0, window_start + length - now);
    v.retry_after_ns = v.allowed ? 0 : v.reset_ns;
    if (commit && v.allowed) {
        st.a = window_start;
        st.current = used;
        st.started = true;
    }
    return v;
}

// Weighted sliding window: the previous window's count weighs by how much of it is still inside.
Verdict sliding_window(const LimitSpec& s, LimitState& st, std::int64_t now, std::uint64_t cost, bool commit) {
    const auto length = static_cast<std::int64_t>(s.period_ns);
    std::int64_t start = now - (now % length + length) % length;
    std::uint64_t current = 0, previous = 0;
    if (st.started) {
        if (st.a > start)  // clock went back: keep counting in the newer window
            start = st.a;
        if (st.a == start) {
            current = st.current;
            previous = st.previous;
        } else if (st.a == start - length) {
            previous = st.current;
        }
    }
    const double elapsed = static_cast<double>(std::max<std::int64_t>(0, now - start)) / static_cast<double>(length);
    const double weighted = static_cast<double>(previous) * (1.0 - std::min(1.0, elapsed)) + static_cast<double>(current);
    Verdict v;
    v.limit = s.limit;
    v.allowed = weighted + static_cast<double>(cost) <= static_cast<double>(s.limit) && cost <= s.limit;
    const double used = v.allowed ? weighted + static_cast<double>(cost) : weighted;
    v.remaining = static_cast<std::uint64_t>(std::max(0.0, std::floor(static_cast<double>(s.limit) - used)));
    v.reset_ns = std::max<std::int64_t>(0, start + 2 * length - now);
    if (!v.allowed) {
        // The previous window's weight falls linearly: wait until enough of it has gone.
        const auto len = static_cast<double>(length);
        if (cost > s.limit) {
            v.retry_after_ns = v.reset_ns;
        } else if (current + cost <= s.limit) {
            // This window has room once enough of the previous one has slid out.
            const double excess = weighted + static_cast<double>(cost) - static_cast<double>(s.limit);
            v.retry_after_ns = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(excess / static_cast<double>(previous) * len)));
        } else {
            // Only the next window has room, once enough of this one (its previous then) has slid out.
            const double share = static_cast<double>(current + cost - s.limit) / static_cast<double>(current);
            v.retry_after_ns = (start + length - now) + static_cast<std::int64_t>(std::ceil(share * len));
        }
    }
    if (commit && v.allowed) {
        st.a = start;
        st.current = current + cost;
        st.previous = previous;
        st.started = true;
    }
    return v;
}

Verdict sliding_log(const LimitSpec& s, LimitState& state, std::int64_t now, std::uint64_t cost, bool commit) {
    const auto length = static_cast<std::int64_t>(s.period_ns);
    if (!state.log)
        state.log = std::make_shared<std::deque<std::int64_t>>();
    struct {
        std::deque<std::int64_t>& log;
    } st{*state.log};
    const std::int64_t newest = st.log.empty() ? now : std::max(now, st.log.back());
    while (!st.log.empty() && st.log.front() <= newest - length)
        st.log.pop_front();  // expired entries go even without a commit: they can never count again
    Verdict v;
    v.limit = s.limit;
    const auto n = static_cast<std::uint64_t>(st.log.size());
    v.allowed = n + cost <= s.limit;
    const auto used = v.allowed ? n + cost : n;
    v.remaining = s.limit - std::min(s.limit, used);
    v.reset_ns = st.log.empty() && !v.allowed ? 0 : std::max<std::int64_t>(0, (v.allowed ? newest : (st.log.empty() ? newest : st.log.back())) + length - now);
    if (!v.allowed) {
        if (cost > s.limit) {
            v.retry_after_ns = std::max<std::int64_t>(0, v.reset_ns);
        } else {
            // The entry whose expiry makes room for `cost` more units.
            const auto idx = static_cast<std::size_t>(n + cost - s.limit - 1);
            v.retry_after_ns = std::max<std::int64_t>(1, st.log[idx] + length - now);
        }
    }
    if (commit && v.allowed)
        for (std::uint64_t i = 0; i < cost; ++i)
            st.log.push_back(newest);
    return v;
}

}  // namespace

std::int64_t calendar_window_length(Calendar c) {
    switch (c) {
    case Calendar::minute: return kMinute;
    case Calendar::hour: return 60 * kMinute;
    case Calendar::day: return 24 * 60 * kMinute;
    case Calendar::none: break;
    }
    return kMinute;
}

std::int64_t calendar_window_start(Calendar c, std::int64_t unix_ns) {
    const auto len = calendar_window_length(c);
    return unix_ns - ((unix_ns % len) + len) % len;  // UTC has no leap seconds in Unix time
}

Window calendar_window(Calendar c, std::int64_t unix_ns, const TimeZone* zone) {
    const auto len = calendar_window_length(c);
    if (!zone)
        return {calendar_window_start(c, unix_ns), calendar_window_start(c, unix_ns) + len};
    constexpr std::int64_t kS = 1'000'000'000;
    auto floor_div = [](std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); };
    const std::int64_t unix_s = floor_div(unix_ns, kS);
    const std::int64_t local_ns = unix_ns + std::int64_t{zone->offset_at(unix_s)} * kS;
    const std::int64_t local_start = floor_div(local_ns, len) * len;
    // Local boundary -> UTC: the offset in force at that instant, found by
    // guessing with the current one and checking once.
    auto to_unix = [&](std::int64_t local) {
        std::int64_t guess = local - std::int64_t{zone->offset_at(unix_s)} * kS;
        guess = local - std::int64_t{zone->offset_at(floor_div(guess, kS))} * kS;
        return guess;
    };
    Window w{to_unix(local_start), to_unix(local_start + len)};
    if (w.start > unix_ns)  // a boundary inside a skipped hour: the window began at the change
        w.start = unix_ns;
    // A zone file with absurd transitions (offsets leaping by a day within
    // hours) can give a window that does not hold `unix_ns`: fall back to UTC.
    if (w.end <= unix_ns || w.end - w.start > 2 * len)
        return calendar_window(c, unix_ns, nullptr);
    return w;
}

Verdict check(const LimitSpec& spec, LimitState& state, std::int64_t now_ns, std::uint64_t cost, bool commit) {
    switch (spec.algorithm) {
    case Algorithm::token_bucket: return token_bucket(spec, state, now_ns, cost, commit);
    case Algorithm::gcra: return gcra(spec, state, now_ns, cost, commit);
    case Algorithm::sliding_log: return sliding_log(spec, state, now_ns, cost, commit);
    case Algorithm::sliding_window: return sliding_window(spec, state, now_ns, cost, commit);
    case Algorithm::fixed_window: return fixed_window(spec, state, now_ns, cost, commit);
    }
    return {};
}

}  // namespace rlgate::ratelimit
