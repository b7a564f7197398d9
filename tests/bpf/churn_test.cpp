// SPDX-License-Identifier: BSD-2-Clause
// The bucket map under churn, through the real program: a spoofed flood of a
// million distinct sources into a map a sixteenth of that size. With the seen
// filter (rl_seen) a one-packet source makes no bucket at all; without it, and
// for sources that come back, a new source replaces an entry of its set. Either
// way the map stays within its configured size, the legitimate sources keep
// their packets, and a source that is over its limit stays limited: its
// bucket, touched often, is not the one evicted (an evicted bucket would come
// back full and let a burst through each time).
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

    // A spoofed flood of kSpoofed random one-packet sources (11.0.0.0 -
    // 110.255.255.255) with kLegit legitimate sources (192.168.0.0 - .99)
    // taking turns, one packet every kEvery spoofed ones.
    static constexpr std::uint32_t kSpoofed = 1'000'000, kLegit = 100, kEvery = 100;
    static IpAddress legit_address(std::uint32_t n) {
        return IpAddress::from_v4_bytes({192, 168, static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
    }
    struct SprayResult {
        std::uint64_t spoofed_passed = 0, legit_sent = 0, legit_passed = 0;
        [[nodiscard]] double legit_share() const {
            return static_cast<double>(legit_passed) / static_cast<double>(legit_sent);
        }
    };
    SprayResult spray() {
        auto spoofed = udp_frame(), legit = udp_frame();
        SprayResult r;
        std::uint32_t rng = 0x9e3779b9;
        for (std::uint32_t i = 0; i < kSpoofed; ++i) {
            rng ^= rng << 13;  // xorshift
            rng ^= rng >> 17;
            rng ^= rng << 5;
            spoofed.set_source((11U << 24) + rng % (100U << 24));
            r.spoofed_passed += dp_->test_run(spoofed.bytes, 1).verdict == XDP_PASS;
            if (i % kEvery == 0) {
                legit.set_source(0xC0A8'0000U + (i / kEvery) % kLegit);
                ++r.legit_sent;
                r.legit_passed += dp_->test_run(legit.bytes, 1).verdict == XDP_PASS;
            }
        }
        return r;
    }
};

TEST_F(ChurnTest, AMillionOnePacketSourcesMakeNoBucketAndEvictNoLegitimateOne) {
    apply(limited_policy(100, 20));
    const auto r = spray();
    EXPECT_EQ(r.spoofed_passed, kSpoofed) << "a one-packet source is within any burst";
    EXPECT_GE(r.legit_share(), 0.99) << r.legit_passed << " of " << r.legit_sent;
    // A spoofed source finds a live tag (another source's, in its slot) at
    // most 1 time in 8; only then does it take a bucket.
    const auto c = dp_->read_counters();
    EXPECT_GT(c.health[RL_HEALTH_FIRST_PACKETS], kSpoofed - kSpoofed / 8);
    EXPECT_LT(c.health[RL_HEALTH_BUCKET_INSERTS], kSpoofed / 8);
    EXPECT_LE(dp_->count_buckets(), kBuckets);
    std::uint32_t legit_with_bucket = 0;
    for (std::uint32_t n = 0; n < kLegit; ++n)
        legit_with_bucket += dp_->lookup_bucket(bucket_key(legit_address(n), 128, 0)).has_value();
    EXPECT_GE(legit_with_bucket, kLegit - 2) << "the spray evicted legitimate sources' buckets";
    RecordProperty("bucket_inserts", std::to_string(c.health[RL_HEALTH_BUCKET_INSERTS]));
    RecordProperty("legit_with_bucket", std::to_string(legit_with_bucket));
}

// The same spray with the filter off: every new source takes a bucket.
class ChurnWithoutSeenFilterTest : public ChurnTest {
protected:
    DataplaneOptions options() const override {
        auto o = ChurnTest::options();
        o.seen_filter = false;
        return o;
    }
};

TEST_F(ChurnWithoutSeenFilterTest, AMillionSpoofedSourcesLeaveLegitimateOnesTheirPacketsAndTheMapBounded) {
    apply(limited_policy(100, 20));
    const auto r = spray();
    EXPECT_GE(r.legit_share(), 0.99) << r.legit_passed << " of " << r.legit_sent;
    const auto c = dp_->read_counters();
    EXPECT_LE(dp_->count_buckets(), kBuckets) << "the map grew beyond its size";
    EXPECT_GT(c.health[RL_HEALTH_BUCKET_INSERTS], kSpoofed - kSpoofed / 100) << "every new source got a bucket";
    EXPECT_GT(c.health[RL_HEALTH_BUCKET_EVICTIONS], kSpoofed - kBuckets - kSpoofed / 100) << "a full set evicts";
    EXPECT_LE(c.health[RL_HEALTH_BUCKET_EVICTIONS], c.health[RL_HEALTH_BUCKET_INSERTS]);
    EXPECT_EQ(c.health[RL_HEALTH_FIRST_PACKETS], 0U);
    RecordProperty("legit_passed_share", std::to_string(r.legit_share()));
    RecordProperty("bucket_inserts", std::to_string(c.health[RL_HEALTH_BUCKET_INSERTS]));
}

TEST_F(ChurnTest, ASourceOverItsLimitStaysLimitedWhileTheMapChurns) {
    constexpr std::uint64_t rate = 100, burst = 50;
    apply(limited_policy(rate, burst));
    auto spoofed = udp_frame(), active = udp_frame();
    active.set_source(0xC0A8'0101U);  // 192.168.1.1
    constexpr std::uint32_t kSources = 1'000'000, kActiveEvery = 50;  // 20,000 packets of the active source
    const auto start = dp_->clock().rl_now_ns;
    std::uint64_t passed = 0, sent = 0;
    for (std::uint32_t i = 0; i < kSources; ++i) {
        spoofed.set_source((11U << 24) + i);
        dp_->test_run(spoofed.bytes, 1);
        dp_->test_run(spoofed.bytes, 1);  // a second packet: the source takes a bucket, the map churns
        if (i % kActiveEvery == 0) {
            ++sent;
            passed += dp_->test_run(active.bytes, 1).verdict == XDP_PASS;
        }
    }
    const double elapsed_s = static_cast<double>(dp_->clock().rl_now_ns - start) / 1e9;
    const double bound = static_cast<double>(burst) + static_cast<double>(rate) * elapsed_s;
    EXPECT_GT(static_cast<double>(sent), 10 * bound) << "the source must be driven well over its limit";
    // One clock tick of slack (4 ms at HZ=250) on the elapsed time.
    EXPECT_LE(static_cast<double>(passed), bound * 1.02 + 1) << passed << " passed of " << sent << " in " << elapsed_s
                                                            << " s while " << kSources << " sources churned";
    EXPECT_GE(static_cast<double>(passed), bound * 0.98 - 1) << "the limit must not be stricter than configured";
    EXPECT_GT(dp_->read_counters().health[RL_HEALTH_BUCKET_EVICTIONS], kSources - kBuckets - kSources / 100);
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

    for (const std::uint32_t a : neighbours) {  // two packets each (the second makes the bucket), all newer
        frame.set_source(a);
        EXPECT_EQ(dp_->test_run(frame.bytes, 1).verdict, XDP_PASS);
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
