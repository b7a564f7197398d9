// SPDX-License-Identifier: BSD-2-Clause
// The L7 algorithms with an injected clock: exact bursts and refills,
// window boundaries, several limits at once, costs, clocks stepping back,
// extreme rates, and a store that stays bounded under key spraying.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/ratelimit/decision.hpp"
#include "core/ratelimit/memory_store.hpp"

namespace rlgate::ratelimit {
namespace {

constexpr std::int64_t kSec = 1'000'000'000LL;

LimitSpec spec(Algorithm a, std::uint64_t limit, std::int64_t period_s, std::uint64_t burst = 0) {
    return LimitSpec{.name = "t", .algorithm = a, .limit = limit, .period_ns = static_cast<std::uint64_t>(period_s * kSec),
                     .burst = burst, .calendar = Calendar::none};
}

int admitted(const LimitSpec& s, LimitState& st, std::int64_t now, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i)
        ok += check(s, st, now, 1, true).allowed;
    return ok;
}

class EveryAlgorithm : public ::testing::TestWithParam<Algorithm> {};

TEST_P(EveryAlgorithm, AdmitsExactlyItsLimitThenRefusesWithAPositiveWait) {
    const auto s = spec(GetParam(), 10, 60);
    LimitState st;
    const std::int64_t t0 = 1'000 * kSec;  // a window boundary for the window algorithms
    EXPECT_EQ(admitted(s, st, t0, 15), 10);
    const auto v = check(s, st, t0, 1, true);
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.remaining, 0U);
    EXPECT_GT(v.retry_after_ns, 0);
    EXPECT_LE(v.retry_after_ns, 60 * kSec);
    // Waiting as told is enough.
    EXPECT_TRUE(check(s, st, t0 + v.retry_after_ns, 1, true).allowed);
}

// 7 per minute is one per 8.571428571... s: GCRA used to round the burst's
// tolerance and each charge separately and admit only 6.
TEST_P(EveryAlgorithm, AdmitsItsWholeBurstWhenTheLimitDoesNotDivideThePeriod) {
    for (const auto& [limit, period_s] : {std::pair{7, 60}, std::pair{3, 10}, std::pair{1000, 3600}}) {
        const auto s = spec(GetParam(), limit, period_s);
        LimitState st;
        const std::int64_t t0 = 36'000 * kSec;  // a window boundary for the window algorithms
        EXPECT_EQ(admitted(s, st, t0, limit + 5), limit) << limit << " per " << period_s << " s";
    }
}

TEST_P(EveryAlgorithm, AClockSteppingBackNeverGivesFreeCapacity) {
    const auto s = spec(GetParam(), 5, 10);
    LimitState st;
    const std::int64_t t0 = 10'000 * kSec;
    EXPECT_EQ(admitted(s, st, t0, 5), 5);
    for (const std::int64_t back : {kSec, 10 * kSec, 3600 * kSec}) {
        const auto v = check(s, st, t0 - back, 1, true);
        EXPECT_FALSE(v.allowed) << back;
        EXPECT_GE(v.retry_after_ns, 0);
        EXPECT_GE(v.reset_ns, 0);
    }
}

TEST_P(EveryAlgorithm, CostsAreChargedWholeAndImpossibleCostsRefused) {
    const auto s = spec(GetParam(), 10, 60);
    LimitState st;
    const std::int64_t t0 = 600 * kSec;
    EXPECT_TRUE(check(s, st, t0, 7, true).allowed);
    const auto v = check(s, st, t0, 4, true);
    EXPECT_FALSE(v.allowed) << "7 + 4 > 10";
    EXPECT_EQ(v.remaining, 3U);
    EXPECT_TRUE(check(s, st, t0, 3, true).allowed);
    LimitState fresh;
    const auto huge = check(s, fresh, t0, 11, true);
    EXPECT_FALSE(huge.allowed) << "more than the limit can ever hold";
    EXPECT_GE(huge.retry_after_ns, 0);
    EXPECT_FALSE(check(s, fresh, t0, ~0ULL >> 1, true).allowed) << "absurd cost";
}

TEST_P(EveryAlgorithm, ExtremeRatesStayNumericallySane) {
    LimitState a, b;
    const auto fast = spec(GetParam(), 1'000'000'000, 1);  // 1e9/s
    EXPECT_EQ(admitted(fast, a, 5 * kSec, 1000), 1000);
    const auto slow = spec(GetParam(), 1, 365LL * 86400);  // once a year
    EXPECT_TRUE(check(slow, b, 5 * kSec, 1, true).allowed);
    const auto v = check(slow, b, 5 * kSec, 1, true);
    EXPECT_FALSE(v.allowed);
    EXPECT_GT(v.retry_after_ns, 0);
    EXPECT_LE(v.retry_after_ns, 2 * 365LL * 86400 * kSec) << "the weighted sliding window sees a request for up to two periods";
}

INSTANTIATE_TEST_SUITE_P(Limits, EveryAlgorithm,
                         ::testing::Values(Algorithm::token_bucket, Algorithm::gcra, Algorithm::sliding_log,
                                           Algorithm::sliding_window, Algorithm::fixed_window));

TEST(TokenBucketL7, RefillsAtItsRate) {
    const auto s = spec(Algorithm::token_bucket, 10, 1, 20);  // 10/s, burst 20
    LimitState st;
    EXPECT_EQ(admitted(s, st, 0, 25), 20);
    EXPECT_EQ(admitted(s, st, kSec / 2, 10), 5);
    EXPECT_EQ(admitted(s, st, 100 * kSec, 30), 20) << "a long pause refills only to the burst";
}

TEST(Gcra, SpacesRequestsEvenlyAfterTheBurst) {
    const auto s = spec(Algorithm::gcra, 10, 1, 3);  // one per 100 ms, 3 ahead
    LimitState st;
    EXPECT_EQ(admitted(s, st, 0, 5), 3);
    const auto v = check(s, st, 0, 1, false);
    EXPECT_EQ(v.retry_after_ns, 100'000'000);
    EXPECT_TRUE(check(s, st, 100'000'000, 1, true).allowed);
    EXPECT_FALSE(check(s, st, 150'000'000, 1, true).allowed);
}

TEST(Windows, TheFixedWindowDoubleBurstAndTheSlidingWindowThatPreventsIt) {
    const auto fixed = spec(Algorithm::fixed_window, 10, 60);
    const auto sliding = spec(Algorithm::sliding_window, 10, 60);
    const auto log = spec(Algorithm::sliding_log, 10, 60);
    LimitState f, s, l;
    const std::int64_t end_of_window = 60 * kSec - 1;  // the last nanosecond of [0, 60 s)
    EXPECT_EQ(admitted(fixed, f, end_of_window, 10), 10);
    EXPECT_EQ(admitted(sliding, s, end_of_window, 10), 10);
    EXPECT_EQ(admitted(log, l, end_of_window, 10), 10);
    const std::int64_t next = 60 * kSec;  // one nanosecond later
    EXPECT_EQ(admitted(fixed, f, next, 10), 10) << "the classic flaw: 20 requests within 1 ns";
    EXPECT_EQ(admitted(sliding, s, next, 10), 0) << "the previous window still weighs in";
    EXPECT_EQ(admitted(log, l, next, 10), 0);
    EXPECT_EQ(admitted(sliding, s, next + 30 * kSec, 10), 5) << "half of it has slid out";
}

TEST(Windows, CalendarWindowsResetOnTheUtcBoundary) {
    LimitSpec s{.name = "day", .algorithm = Algorithm::fixed_window, .limit = 2, .period_ns = 0, .burst = 0,
                .calendar = Calendar::day};
    LimitState st;
    const std::int64_t noon = (20'000LL * 86400 + 12 * 3600) * kSec;  // some day, 12:00 UTC
    EXPECT_EQ(admitted(s, st, noon, 3), 2);
    const auto v = check(s, st, noon, 1, false);
    EXPECT_EQ(v.retry_after_ns, 12 * 3600 * kSec) << "until midnight UTC";
    EXPECT_EQ(admitted(s, st, noon + 12 * 3600 * kSec, 3), 2);
    EXPECT_EQ(calendar_window_start(Calendar::hour, 7200 * kSec + 5), 7200 * kSec);
}

// A TZif v2 file for a zone at UTC+1 with daylight saving (+2) from
// 2026-03-29 01:00Z to 2026-10-25 01:00Z, as RFC 8536 lays it out.
std::string test_tzif() {
    auto be = [](std::string& out, std::uint64_t v, int n) {
        for (int i = n - 1; i >= 0; --i)
            out += static_cast<char>((v >> (8 * i)) & 0xff);
    };
    auto head = [&](std::string& out, std::uint32_t times, std::uint32_t types, std::uint32_t chars) {
        out += "TZif2";
        out += std::string(15, '\0');
        for (std::uint32_t c : {0U, 0U, 0U, times, types, chars})
            be(out, c, 4);
    };
    std::string f;
    head(f, 0, 1, 4);  // v1 block: one type, no transitions
    be(f, 3600, 4);
    f += std::string("\0\0", 2) + std::string("STD\0", 4);
    head(f, 2, 2, 8);
    be(f, 1774746000, 8);
    be(f, 1792890000, 8);
    f += std::string("\1\0", 2);
    be(f, 3600, 4);
    f += std::string("\0\0", 2);
    be(f, 7200, 4);
    f += std::string("\1\4", 2);
    f += std::string("STD\0DST\0", 8);
    f += "\n\n";  // no footer rule: the transitions are all there is
    return f;
}

TEST(Windows, CalendarDaysFollowALocalTimeZoneAcrossDaylightSaving) {
    const auto zone = std::make_shared<const TimeZone>(TimeZone::from_tzif(test_tzif(), "Test/Zone"));
    EXPECT_EQ(zone->offset_at(1774745999), 3600);
    EXPECT_EQ(zone->offset_at(1774746000), 7200);
    EXPECT_EQ(zone->offset_at(1792890000), 3600);
    // 2026-03-29 at noon local: the day began at 23:00Z the evening before and lasts 23 h.
    auto w = calendar_window(Calendar::day, 1774780000 * kSec, zone.get());
    EXPECT_EQ(w.start, 1774738800 * kSec);
    EXPECT_EQ(w.end, 1774821600 * kSec);
    // 2026-10-25: 25 h.
    w = calendar_window(Calendar::day, 1792900000 * kSec, zone.get());
    EXPECT_EQ(w.start, 1792879200 * kSec);
    EXPECT_EQ(w.end, 1792969200 * kSec);
    EXPECT_EQ(calendar_window(Calendar::day, 1792900000 * kSec, nullptr).start, 1792886400 * kSec) << "UTC midnight";

    // A daily quota resets at local midnight, not UTC midnight.
    LimitSpec daily{.name = "daily", .algorithm = Algorithm::fixed_window, .limit = 2, .period_ns = 86400ULL * kSec,
                    .burst = 0, .calendar = Calendar::day, .zone = zone};
    LimitState st;
    EXPECT_EQ(admitted(daily, st, 1792900000 * kSec, 3), 2);
    const auto refused = check(daily, st, 1792900000 * kSec, 1, true);
    EXPECT_EQ(refused.retry_after_ns, (1792969200 - 1792900000) * kSec);
    EXPECT_FALSE(check(daily, st, 1792969199 * kSec, 1, true).allowed);
    EXPECT_TRUE(check(daily, st, 1792969200 * kSec, 1, true).allowed);

    EXPECT_THROW(TimeZone::from_tzif("TZif", "x"), std::invalid_argument);
    EXPECT_THROW(TimeZone::from_tzif(test_tzif().substr(0, test_tzif().size() - 2) + "\nSTD-1DST,M3.5.0/2,M10.5.0/3\n", "x"),
                 std::invalid_argument) << "slim: DST left to a footer rule we do not evaluate";
    EXPECT_THROW(TimeZone::from_tzif(test_tzif().substr(0, 60), "x"), std::invalid_argument);
    EXPECT_THROW(TimeZone::from_tzif("garbage that is long enough to have a header but is not one at all", "x"),
                 std::invalid_argument);
}

TEST(Decide, EveryLimitMustAdmitAndTheTightestIsReported) {
    const std::array specs = {spec(Algorithm::token_bucket, 10, 60), spec(Algorithm::fixed_window, 100, 3600),
                              spec(Algorithm::fixed_window, 12, 86400)};
    std::array<LimitState, 3> states;
    const std::int64_t t0 = 86400 * kSec;
    auto d = decide(specs, states, t0, 1);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.tightest_index, 0U);
    EXPECT_EQ(d.tightest.remaining, 9U);
    for (int i = 0; i < 9; ++i)
        decide(specs, states, t0, 1);
    d = decide(specs, states, t0, 1);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.tightest_index, 0U) << "the per-minute bucket is empty";
    EXPECT_EQ(states[1].current, 10U) << "a refused request is charged to no limit";
    d = decide(specs, states, t0 + 60 * kSec, 2);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.tightest_index, 2U) << "now the daily limit has least left";
    EXPECT_EQ(d.tightest.remaining, 0U);
    d = decide(specs, states, t0 + 120 * kSec, 1);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.tightest_index, 2U);
    EXPECT_EQ(d.tightest.retry_after_ns, 86400 * kSec - 120 * kSec) << "the longest wait wins";
}

TEST(MemoryStore, StaysBoundedUnderKeySprayingAndKeepsActiveKeys) {
    const std::array specs = {spec(Algorithm::gcra, 5, 60)};
    MemoryStore store(1000, 8);
    EXPECT_EQ(store.decide("tenant-a", specs, 0, 5).allowed, true);
    for (int i = 1; i <= 100'000; ++i) {  // one request per microsecond
        store.decide("spray-" + std::to_string(i), specs, i * 1000, 1);
        if (i % 50 == 0)
            store.decide("tenant-a", specs, i * 1000, 0);  // an active key stays recent
    }
    EXPECT_LE(store.size(), 1000U);
    EXPECT_GE(store.evictions(), 99'000U);
    EXPECT_FALSE(store.decide("tenant-a", specs, 100'001'000, 1).allowed) << "its state survived the spray";
    MemoryStore small(64, 1);
    for (int i = 0; i < 1000; ++i)
        small.decide("k" + std::to_string(i), specs, i, 1);
    EXPECT_EQ(small.size(), 64U);
    int present = 0;
    for (int i = 0; i < 1000; ++i) {
        const auto key = "k" + std::to_string(i);
        if (!small.contains(key))
            continue;
        ++present;
        EXPECT_FALSE(small.decide(key, specs, 1000, 5).allowed) << key << ": found with its state after backward-shift deletions";
    }
    EXPECT_EQ(present, 64);
}


TEST(MemoryStore, BatchedDecisionsEqualOneAtATime) {
    const std::array specs = {spec(Algorithm::token_bucket, 3, 60), spec(Algorithm::sliding_window, 5, 600)};
    MemoryStore single(256, 4, 42), batched(256, 4, 42);
    std::vector<std::string> names;
    for (int i = 0; i < 1000; ++i)
        names.push_back("k" + std::to_string((i * 7919) % 300));  // repeats, and more keys than fit: evictions too
    std::vector<std::string_view> views(names.begin(), names.end());
    std::vector<Decision> out(views.size());
    batched.decide_batch(views, specs, kSec, 1, out);
    int allowed = 0;
    for (std::size_t i = 0; i < views.size(); ++i) {
        const auto d = single.decide(views[i], specs, kSec, 1);
        ASSERT_EQ(d.allowed, out[i].allowed) << i;
        ASSERT_EQ(d.tightest.remaining, out[i].tightest.remaining) << i;
        allowed += d.allowed;
    }
    EXPECT_GT(allowed, 0);
    EXPECT_LT(allowed, 1000);
    EXPECT_EQ(single.evictions(), batched.evictions());
    std::vector<Decision> too_few(1);
    EXPECT_THROW(batched.decide_batch(views, specs, kSec, 1, too_few), std::invalid_argument);
}

TEST(MemoryStore, SeveralKeysAreChargedTogetherOrNotAtAll) {
    const std::array per_key = {spec(Algorithm::token_bucket, 10, 60)};
    const std::array global = {spec(Algorithm::fixed_window, 3, 60)};
    MemoryStore store(1000, 4);
    const std::int64_t t0 = 600 * kSec;
    std::array<MemoryStore::KeyedLimits, 2> a = {{{"key:a", per_key}, {"global", global}}};
    std::array<MemoryStore::KeyedLimits, 2> b = {{{"key:b", per_key}, {"global", global}}};
    EXPECT_TRUE(store.decide_keys(a, t0, 1).allowed);
    EXPECT_TRUE(store.decide_keys(b, t0, 1).allowed);
    EXPECT_TRUE(store.decide_keys(a, t0, 1).allowed);
    const auto refused = store.decide_keys(b, t0, 1);
    EXPECT_FALSE(refused.allowed) << "the shared global limit of 3 is spent";
    EXPECT_EQ(refused.tightest_group, 1U);
    EXPECT_EQ(refused.tightest_index, 0U);
    EXPECT_EQ(refused.tightest.retry_after_ns, 60 * kSec);
    // The refused request charged key:b nothing: 9 of its 10 tokens are left.
    const std::array only_b = {MemoryStore::KeyedLimits{"key:b", per_key}};
    const auto next = store.decide_keys(only_b, t0, 9);
    EXPECT_TRUE(next.allowed);
    EXPECT_EQ(next.tightest.remaining, 0U);
    // Allowed: the key with least left is reported.
    std::array<MemoryStore::KeyedLimits, 2> c = {{{"key:c", per_key}, {"global", per_key}}};
    MemoryStore fresh(1000, 4);
    EXPECT_TRUE(fresh.decide_keys(c, t0, 4).allowed);
    const std::array only_c = {MemoryStore::KeyedLimits{"key:c", per_key}};
    EXPECT_TRUE(fresh.decide_keys(only_c, t0, 2).allowed);
    const auto both = fresh.decide_keys(c, t0, 1);
    EXPECT_TRUE(both.allowed);
    EXPECT_EQ(both.tightest_group, 0U);
    EXPECT_EQ(both.tightest.remaining, 3U);
    std::array<MemoryStore::KeyedLimits, 5> too_many{};
    EXPECT_THROW(store.decide_keys(too_many, t0, 1), std::invalid_argument);
}

TEST(MemoryStore, ConcurrentMultiKeyDecisionsNeverExceedTheSharedLimit) {
    const std::array global = {spec(Algorithm::gcra, 1000, 3600)};
    const std::array per_key = {spec(Algorithm::token_bucket, 100'000, 1)};
    MemoryStore store(10'000, 16);
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 2000; ++i) {
                const std::string key = "k" + std::to_string(t) + "-" + std::to_string(i % 37);
                const std::array<MemoryStore::KeyedLimits, 2> keys = {{{key, per_key}, {"global", global}}};
                admitted += store.decide_keys(keys, kSec, 1).allowed;
            }
        });
    for (auto& th : threads)
        th.join();
    EXPECT_EQ(admitted.load(), 1000);
}

}  // namespace
}  // namespace rlgate::ratelimit
