// SPDX-License-Identifier: BSD-2-Clause
// The bucket map under churn, through the real program: a spoofed flood of a
// million distinct sources into a map a sixteenth of that size. The map stays
// within its configured size (a new source replaces an entry of its set), the
// legitimate sources keep their packets, and a source that is over its limit
// stays limited: its bucket, touched often, is not the one evicted (an evicted
// bucket would come back full and let a burst through each time).
#include <arpa/inet.h>

#include <cstring>

#include "xdp_fixture.hpp"

namespace rlgate::testing {
namespace {

class ChurnTest : public XdpTest {
protected:
    static constexpr std::uint32_t kBuckets = 65536;
    DataplaneOptions options() const override {
        auto o = XdpTest::options();
        o.bucket_entries = kBuckets;
        return o;
    }
    // One frame whose IPv4 source is rewritten in place (the program checks no checksum).
    struct SourceFrame {
        std::vector<std::uint8_t> bytes;
        std::size_t src_offset = 0;
        void set_source(std::uint32_t host_order) {
            const std::uint32_t be = htonl(host_order);
            std::memcpy(bytes.data() + src_offset, &be, sizeof be);
        }
    };
    static SourceFrame udp_frame() {
        SourceFrame f{build_frame(udp_from("1.2.3.4")).bytes, 0};
        const std::uint8_t marker[4] = {1, 2, 3, 4};
        const auto it = std::search(f.bytes.begin(), f.bytes.end(), marker, marker + 4);
        f.src_offset = static_cast<std::size_t>(it - f.bytes.begin());
        return f;
    }
};

TEST_F(ChurnTest, AMillionSpoofedSourcesLeaveLegitimateOnesTheirPacketsAndTheMapBounded) {
    apply(limited_policy(100, 20));
    auto spoofed = udp_frame(), legit = udp_frame();
    constexpr std::uint32_t kSpoofed = 1'000'000, kLegit = 100, kEvery = 100;
    std::uint64_t legit_sent = 0, legit_passed = 0;
    std::uint32_t rng = 0x9e3779b9;
    for (std::uint32_t i = 0; i < kSpoofed; ++i) {
        rng ^= rng << 13;  // xorshift: random spoofed addresses in 11.0.0.0/8 .. 110.255.255.255
        rng ^= rng >> 17;
        rng ^= rng << 5;
        spoofed.set_source((11U << 24) + rng % (100U << 24));
        dp_->test_run(spoofed.bytes, 1);
        if (i % kEvery == 0) {  // each legitimate source: one packet per 10,000 spoofed ones
            legit.set_source(0xC0A8'0000U + (i / kEvery) % kLegit);  // 192.168.0.0 - .99
            ++legit_sent;
            legit_passed += dp_->test_run(legit.bytes, 1).verdict == XDP_PASS;
        }
    }
    const auto c = dp_->read_counters();
    const double share = static_cast<double>(legit_passed) / static_cast<double>(legit_sent);
    EXPECT_GE(share, 0.99) << legit_passed << " of " << legit_sent;
    EXPECT_LE(dp_->count_buckets(), kBuckets) << "the map grew beyond its size";
    EXPECT_GT(c.health[RL_HEALTH_BUCKET_INSERTS], kSpoofed - kSpoofed / 100) << "every new source got a bucket";
    EXPECT_GT(c.health[RL_HEALTH_BUCKET_EVICTIONS], kSpoofed - kBuckets - kSpoofed / 100) << "a full set evicts";
    EXPECT_LE(c.health[RL_HEALTH_BUCKET_EVICTIONS], c.health[RL_HEALTH_BUCKET_INSERTS]);
    RecordProperty("legit_passed_share", std::to_string(share));
    RecordProperty("bucket_inserts", std::to_string(c.health[RL_HEALTH_BUCKET_INSERTS]));
}

TEST_F(ChurnTest, ASourceOverItsLimitStaysLimitedWhileTheMapChurns) {
    constexpr std::uint64_t rate = 100, burst = 50;
    apply(limited_policy(rate, burst));
    auto spoofed = udp_frame(), active = udp_frame();
    active.set_source(0xC0A8'0101U);  // 192.168.1.1
    constexpr std::uint32_t kSpoofed = 1'000'000, kEvery = 50;  // 20,000 packets of the active source
    const auto start = dp_->clock().rl_now_ns;
    std::uint64_t passed = 0, sent = 0;
    for (std::uint32_t i = 0; i < kSpoofed; ++i) {
        spoofed.set_source((11U << 24) + i);
        dp_->test_run(spoofed.bytes, 1);
        if (i % kEvery == 0) {
            ++sent;
            passed += dp_->test_run(active.bytes, 1).verdict == XDP_PASS;
        }
    }
    const double elapsed_s = static_cast<double>(dp_->clock().rl_now_ns - start) / 1e9;
    const double bound = static_cast<double>(burst) + static_cast<double>(rate) * elapsed_s;
    EXPECT_GT(static_cast<double>(sent), 10 * bound) << "the source must be driven well over its limit";
    // One clock tick of slack (4 ms at HZ=250) on the elapsed time.
    EXPECT_LE(static_cast<double>(passed), bound * 1.02 + 1) << passed << " passed of " << sent << " in " << elapsed_s
                                                            << " s while " << kSpoofed << " sources churned";
    EXPECT_GE(static_cast<double>(passed), bound * 0.98 - 1) << "the limit must not be stricter than configured";
    RecordProperty("active_passed", std::to_string(passed));
    RecordProperty("active_bound", std::to_string(bound));
}

TEST_F(ChurnTest, NewSourcesOfAFullSetEvictTheEntryThatLosesLeastNotALimitedSource) {
    apply(limited_policy(100, 20));
    auto frame = udp_frame();
    const std::uint32_t limited = 0xC0A8'0101U;  // 192.168.1.1
    auto key_of = [](std::uint32_t a) {
        return bucket_key(IpAddress::from_v4_bytes({static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                                                    static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)}),
                          128, 0);
    };
    // Sources that share the limited source's set (the seed is secret to
    // senders, not to us).
    const std::uint32_t set = dp_->buckets().set_of(key_of(limited));
    std::vector<std::uint32_t> neighbours;
    for (std::uint32_t a = 11U << 24; neighbours.size() < 8; ++a)
        if (dp_->buckets().set_of(key_of(a)) == set)
            neighbours.push_back(a);

    frame.set_source(limited);
    int passed = 0;
    for (int i = 0; i < 40; ++i)
        passed += dp_->test_run(frame.bytes, 1).verdict == XDP_PASS;
    ASSERT_LE(passed, 21) << "burst 20 (+1 if a clock tick refilled one)";
    const auto before = dp_->read_counters().health;

    for (const std::uint32_t a : neighbours) {  // one packet each, all newer than the limited source's last
        frame.set_source(a);
        EXPECT_EQ(dp_->test_run(frame.bytes, 1).verdict, XDP_PASS);
    }
    const auto after = dp_->read_counters().health;
    EXPECT_EQ(after[RL_HEALTH_BUCKET_INSERTS] - before[RL_HEALTH_BUCKET_INSERTS], 8U);
    EXPECT_EQ(after[RL_HEALTH_BUCKET_EVICTIONS] - before[RL_HEALTH_BUCKET_EVICTIONS], 5U) << "3 free ways, then evictions";
    EXPECT_TRUE(dp_->lookup_bucket(key_of(limited)).has_value()) << "the limited source kept its bucket";
    EXPECT_FALSE(dp_->lookup_bucket(key_of(neighbours[0])).has_value()) << "the oldest newcomer went first";
    EXPECT_TRUE(dp_->lookup_bucket(key_of(neighbours[7])).has_value());
    frame.set_source(limited);
    EXPECT_EQ(dp_->test_run(frame.bytes, 1).verdict, XDP_DROP) << "still over its limit: no fresh burst";
}

TEST_F(ChurnTest, AnAggregatedSourceNeverEvictsItsOwnEntryForItsSharedBucket) {
    // A source whose /32 entry and whose tier's /24 shared bucket hash to the
    // same set, the set's other ways busy with buckets in debt: the shared
    // bucket must evict one of those, not the entry that points to it (else
    // each packet would recreate both, with a fresh burst every time).
    auto p = limited_policy(1000, 1000);
    p.tiers.push_back({.name = "carrier", .limit = {.packets_per_sec = 10, .burst_packets = 5}, .prefix_v4 = 24});
    p.members.push_back({*Cidr::parse("100.64.0.0/10"), "carrier"});
    apply(p);
    const auto& sets = dp_->buckets();
    std::optional<IpAddress> source;
    for (std::uint32_t n = 0; n < (1U << 22) && !source; ++n) {
        const std::uint32_t a = (100U << 24) | (64U << 16) | n;
        const auto ip = IpAddress::from_v4_bytes({static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                                                  static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)});
        if (sets.set_of(bucket_key(ip, 128, 0)) == sets.set_of(bucket_key(ip, 96 + 24, 0)))
            source = ip;
    }
    ASSERT_TRUE(source) << "no source whose entry and shared bucket share a set";
    const std::uint32_t set = sets.set_of(bucket_key(*source, 128, 0));
    rl_bucket in_debt{};
    in_debt.last_ns = dp_->clock().rl_now_ns;
    in_debt.pkt_tat_q = (in_debt.last_ns + 3'600'000'000'000ULL) << RL_Q_SHIFT;
    int planted = 0;
    for (std::uint32_t a = 11U << 24; planted < 3; ++a) {
        const auto key = bucket_key(IpAddress::from_v4_bytes({static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
                                                             static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)}),
                                    128, 0);
        if (sets.set_of(key) == set) {
            dp_->update_bucket(key, in_debt);
            ++planted;
        }
    }
    auto frame = udp_frame();
    std::uint32_t host_order = 0;
    for (int i = 12; i < 16; ++i)
        host_order = host_order << 8 | source->bytes[static_cast<std::size_t>(i)];
    frame.set_source(host_order);
    int passed = 0;
    for (int i = 0; i < 50; ++i)
        passed += dp_->test_run(frame.bytes, 1).verdict == XDP_PASS;
    EXPECT_LE(passed, 6) << "burst 5 (+1 if a clock tick refilled one), not a fresh burst per packet";
    EXPECT_TRUE(dp_->lookup_bucket(bucket_key(*source, 128, 0)).has_value());
    EXPECT_TRUE(dp_->lookup_bucket(bucket_key(*source, 96 + 24, 0)).has_value());
}

}  // namespace
}  // namespace rlgate::testing
