// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include "core/bans/ban_book.hpp"
#include "core/ratelimit/token_bucket.hpp"

namespace rlgate::bans {
namespace {

net::Cidr cidr(const char* text) { return *net::Cidr::parse(text); }
constexpr std::uint64_t kMinute = 60'000'000'000ULL;

TEST(Escalation, EachRepeatMultipliesTheBanUpToTheCap) {
    policy::AutoBan rule{.drops = 10, .window_ns = kMinute, .ban_ns = kMinute, .repeat_factor = 10,
                         .max_ban_ns = 60 * kMinute, .memory_ns = 1440 * kMinute};
    EXPECT_EQ(escalated_ban_ns(rule, 0), kMinute);
    EXPECT_EQ(escalated_ban_ns(rule, 1), 10 * kMinute);
    EXPECT_EQ(escalated_ban_ns(rule, 2), 60 * kMinute) << "capped";
    EXPECT_EQ(escalated_ban_ns(rule, 4'000'000'000U), 60 * kMinute) << "no overflow, no endless loop";
    rule.repeat_factor = 1;
    EXPECT_EQ(escalated_ban_ns(rule, 5), kMinute) << "factor 1: no escalation";
    rule.repeat_factor = 1000;
    rule.max_ban_ns = ~0ULL;
    EXPECT_EQ(escalated_ban_ns(rule, 10), ~0ULL) << "saturates instead of wrapping";
}

TEST(BanBook, CountsOffencesWithinTheMemoryPeriod) {
    BanBook book;
    book.add_violation({.source = cidr("192.0.2.1"), .origin = "kernel", .time_ms = 1000});
    book.add_violation({.source = cidr("192.0.2.2"), .origin = "kernel", .time_ms = 2000});
    book.add_violation({.source = cidr("192.0.2.1"), .origin = "l7", .time_ms = 5000});
    EXPECT_EQ(book.offences_since(cidr("192.0.2.1"), 0), 2U);
    EXPECT_EQ(book.offences_since(cidr("192.0.2.1"), 1001), 1U);
    EXPECT_EQ(book.offences_since(cidr("192.0.2.1"), 5001), 0U);
    EXPECT_EQ(book.offences_since(cidr("192.0.2.0/24"), 0), 0U) << "exact source";
    book.prune(2000);
    EXPECT_EQ(book.history().size(), 2U);
    EXPECT_EQ(book.history().front().time_ms, 2000);
}

TEST(BanBook, HistoryIsBounded) {
    BanBook book(3);
    for (int i = 0; i < 10; ++i)
        book.add_violation({.source = cidr("192.0.2.1"), .time_ms = i});
    ASSERT_EQ(book.history().size(), 3U);
    EXPECT_EQ(book.history().front().time_ms, 7) << "the oldest go first";
}

TEST(BanBook, RoundTripsThroughItsVersionedStateFile) {
    BanBook book;
    book.put({.prefix = cidr("203.0.113.0/24"), .origin = "manual", .reason = "scanner \"x\"", .created_ms = 5,
              .expires_ms = 65'005, .offence = 0});
    book.put({.prefix = cidr("2001:db8::/64"), .origin = "kernel", .reason = "rate", .tier = "free", .created_ms = 7,
              .expires_ms = std::nullopt, .offence = 3});
    book.add_violation({.source = cidr("2001:db8::/64"), .origin = "kernel", .tier = "free", .reason = "rate",
                        .time_ms = 7, .ban_ms = 600'000, .offence = 3, .drops = 1000});
    const auto j = book.to_json();
    EXPECT_EQ(j["version"], kStateFormatVersion);
    const auto back = BanBook::from_json(nlohmann::json::parse(j.dump()), 100);
    EXPECT_EQ(back.records(), book.records());
    EXPECT_EQ(back.history(), book.history());
}

TEST(BanBook, DamagedStateIsRefusedWithAReason) {
    auto refuse = [](const nlohmann::json& j) {
        try {
            BanBook::from_json(j, 10);
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(refuse(nlohmann::json::array()), "not an rlgate ban state file");
    EXPECT_NE(refuse({{"format", "rlgate-bans"}, {"version", 99}}).find("version 99"), std::string::npos);
    BanBook book;
    book.put({.prefix = cidr("203.0.113.0/24"), .origin = "manual", .created_ms = 5});
    auto j = book.to_json();
    j["bans"][0]["prefix"] = "203.0.113.7/24";
    EXPECT_NE(refuse(j).find("prefix"), std::string::npos);
    j = book.to_json();
    j["bans"][0].erase("origin");
    EXPECT_NE(refuse(j).find("damaged entry"), std::string::npos);
}

TEST(TokenBucket, RefillsAtItsRateUpToTheBurst) {
    ratelimit::TokenBucket b(10, 3);  // 10/s, burst 3
    const std::uint64_t t0 = 1'000'000'000;
    EXPECT_TRUE(b.try_take(t0));
    EXPECT_TRUE(b.try_take(t0));
    EXPECT_TRUE(b.try_take(t0));
    EXPECT_FALSE(b.try_take(t0));
    EXPECT_NEAR(b.wait_seconds(), 0.1, 1e-9);
    EXPECT_TRUE(b.try_take(t0 + 100'000'000));
    EXPECT_FALSE(b.try_take(t0 + 100'000'000));
    EXPECT_TRUE(b.try_take(t0 + 3'600'000'000'000ULL));
    EXPECT_TRUE(b.try_take(t0 + 3'600'000'000'000ULL));
    EXPECT_TRUE(b.try_take(t0 + 3'600'000'000'000ULL));
    EXPECT_FALSE(b.try_take(t0 + 3'600'000'000'000ULL)) << "an hour of idling still gives only the burst";
}

TEST(TokenBucket, AClockSteppingBackNeitherRefillsNorBreaks) {
    ratelimit::TokenBucket b(1, 1);
    EXPECT_TRUE(b.try_take(5'000'000'000));
    EXPECT_FALSE(b.try_take(1'000'000'000));  // back by 4 s
    EXPECT_FALSE(b.try_take(5'500'000'000));
    EXPECT_TRUE(b.try_take(6'000'000'000));
}

}  // namespace
}  // namespace rlgate::bans
