// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include <cstring>

#include "core/stats/top_talkers.hpp"

namespace rlgate::stats {
namespace {

BucketSample v4(std::uint8_t last, std::uint8_t prefix128, std::uint32_t passed, std::uint32_t dropped) {
    BucketSample s;
    s.key.addr[0] = 192;
    s.key.addr[1] = 0;
    s.key.addr[2] = 2;
    s.key.addr[3] = last;
    s.key.prefixlen = prefix128;
    s.key.rule = RL_BUCKET_KEY_V4 | 2;
    s.passed = passed;
    s.dropped = dropped;
    return s;
}

TEST(TopTalkers, RanksByPacketsBetweenSnapshots) {
    const std::vector<BucketSample> before = {v4(1, 128, 100, 0), v4(2, 128, 10, 0), v4(3, 128, 0xfffffff0U, 0)};
    const std::vector<BucketSample> after = {v4(1, 128, 150, 0), v4(2, 128, 10, 900), v4(3, 128, 0x10, 0),
                                             v4(0, 120, 40, 0) /* new: an aggregate */};
    const auto top = top_talkers(before, after, 2.0, 10);
    ASSERT_EQ(top.size(), 4U);
    EXPECT_EQ(top[0].source.to_string(), "192.0.2.2/32");
    EXPECT_DOUBLE_EQ(top[0].dropped_pps, 450);
    EXPECT_EQ(top[1].source.to_string(), "192.0.2.1/32");
    EXPECT_DOUBLE_EQ(top[1].passed_pps, 25);
    EXPECT_EQ(top[2].source.to_string(), "192.0.2.0/24");
    EXPECT_DOUBLE_EQ(top[2].passed_pps, 20);
    EXPECT_EQ(top[3].source.to_string(), "192.0.2.3/32");
    EXPECT_DOUBLE_EQ(top[3].passed_pps, 16) << "0x20 packets across the counter wrap in 2 s";
    EXPECT_EQ(top[0].rule, 2);
    EXPECT_EQ(top_talkers(before, after, 2.0, 1).size(), 1U);
}

TEST(TopTalkers, IdleSourcesAreLeftOut) {
    const std::vector<BucketSample> s = {v4(1, 128, 5, 5)};
    EXPECT_TRUE(top_talkers(s, s, 1.0, 10).empty());
}

TEST(TopTalkers, Ipv6KeysKeepTheirPrefix) {
    rl_bucket_key k{};
    const auto a = *net::IpAddress::parse("2001:db8:1:2::");
    std::memcpy(k.addr, a.bytes.data(), sizeof k.addr);
    k.prefixlen = 64;
    EXPECT_EQ(source_of(k).to_string(), "2001:db8:1:2::/64");
}

}  // namespace
}  // namespace rlgate::stats
