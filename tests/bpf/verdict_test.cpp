// SPDX-License-Identifier: BSD-2-Clause
// Verdict order, buckets, tiers, rules, global limit, bans, auto-ban, dry-run
// and policy swaps, through the real program with BPF_PROG_TEST_RUN.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <optional>
#include <set>
#include <thread>

#include "dataplane/bpf_error.hpp"

#include "xdp_fixture.hpp"

namespace rlgate::testing {
namespace {

using namespace std::chrono_literals;
using policy::RuleProtocol;

constexpr std::uint64_t kSecondQ = 1'000'000'000ULL << RL_Q_SHIFT;

TEST_F(XdpTest, PassesEverythingBeforeAPolicyIsLoaded) {
    EXPECT_EQ(dp_->policy_generation(), 0U);
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 50), 50);
}

TEST_F(XdpTest, BurstPassesExactlyThenDrops) {
    apply(limited_policy(10, 5));
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 5), 5);
    EXPECT_EQ(run(udp_from("192.0.2.1")), XDP_DROP);
    EXPECT_EQ(count(RL_REASON_WITHIN_LIMIT, RL_VERDICT_PASS), 5U);
    EXPECT_EQ(count(RL_REASON_RATE, RL_VERDICT_DROP), 1U);
    EXPECT_EQ(passes(udp_from("192.0.2.2"), 5), 5) << "another source has its own bucket";
}

TEST_F(XdpTest, RefillsWithElapsedTime) {
    apply(limited_policy(10, 5));  // one token per 100 ms
    const auto src = *IpAddress::parse("192.0.2.1");
    ASSERT_EQ(passes(udp_from("192.0.2.1"), 6), 5);
    const auto key = bucket_key(src, 128, 0);
    auto b = dp_->lookup_bucket(key);
    ASSERT_TRUE(b);
    b->pkt_tat_q -= 3 * kSecondQ / 10;  // as if 300 ms had passed
    dp_->update_bucket(key, *b);
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 5), 3);
    b = dp_->lookup_bucket(key);
    b->pkt_tat_q -= 100 * kSecondQ;  // idle for long: refill stops at the burst
    dp_->update_bucket(key, *b);
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 10), 5);
}

TEST_F(XdpTest, ByteLimitCountsFrameBytes) {
    policy::Policy p;
    p.tiers.push_back({.name = "default", .limit = {.bytes_per_sec = 1000, .burst_bytes = 2000}});
    apply(p);
    FrameSpec s = udp_from("192.0.2.1");
    s.payload_bytes = 458;  // 14 + 20 + 8 + 458 = 500 bytes on the wire
    EXPECT_EQ(passes(s, 10), 4);
    s.src = *IpAddress::parse("192.0.2.2");
    s.payload_bytes = 958;  // 1000 bytes
    EXPECT_EQ(passes(s, 10), 2);
}

TEST_F(XdpTest, Ipv6SourcesShareTheirSlash64) {
    apply(limited_policy(10, 5));
    EXPECT_EQ(passes(udp_from("2001:db8:1:2::1"), 3), 3);
    EXPECT_EQ(passes(udp_from("2001:db8:1:2:ffff::9"), 3), 2) << "same /64, same bucket";
    EXPECT_EQ(passes(udp_from("2001:db8:1:3::1"), 5), 5) << "next /64 is another source";
}

TEST_F(XdpTest, TierPrefixLengthsAggregateSources) {
    auto p = limited_policy(10, 5);
    p.tiers.push_back({.name = "carrier-nat", .limit = {.packets_per_sec = 10, .burst_packets = 8}, .prefix_v4 = 24,
                       .prefix_v6 = 48});
    p.members.push_back({*Cidr::parse("100.64.0.0/10"), "carrier-nat"});
    p.members.push_back({*Cidr::parse("2001:db8:a::/48"), "carrier-nat"});
    apply(p);
    EXPECT_EQ(passes(udp_from("100.64.1.1"), 5), 5);
    EXPECT_EQ(passes(udp_from("100.64.1.200"), 5), 3) << "same /24";
    EXPECT_EQ(passes(udp_from("100.64.2.1"), 10), 8) << "next /24";
    EXPECT_EQ(passes(udp_from("2001:db8:a:1::1"), 5), 5);
    EXPECT_EQ(passes(udp_from("2001:db8:a:ff::1"), 5), 3) << "same /48, different /64";
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 10), 5) << "default tier /32";
}

TEST_F(XdpTest, TierSelectionByLongestPrefix) {
    auto p = limited_policy(10, 2);
    p.tiers.push_back({.name = "premium", .limit = {.packets_per_sec = 10, .burst_packets = 20}});
    p.tiers.push_back({.name = "partner", .limit = {.packets_per_sec = 10, .burst_packets = 7}});
    p.members.push_back({*Cidr::parse("10.0.0.0/8"), "premium"});
    p.members.push_back({*Cidr::parse("10.5.0.0/16"), "partner"});
    apply(p);
    EXPECT_EQ(passes(udp_from("10.1.1.1"), 30), 20);
    EXPECT_EQ(passes(udp_from("10.5.1.1"), 30), 7);
    EXPECT_EQ(passes(udp_from("11.0.0.1"), 30), 2);
    const auto c = dp_->read_counters();
    EXPECT_EQ(c.packets_where([](const CounterKey& k) { return k.tier == 1 && k.reason == RL_REASON_WITHIN_LIMIT; }),
              20U);
    EXPECT_EQ(c.packets_where([](const CounterKey& k) { return k.tier == 2 && k.reason == RL_REASON_RATE; }), 23U);
}

TEST_F(XdpTest, RulesHaveTheirOwnBucketPerSource) {
    auto p = limited_policy(0, 0);  // unlimited by default
    p.rules.push_back({.name = "ssh-syn", .protocol = RuleProtocol::tcp, .port_first = 22, .port_last = 22,
                       .syn_only = true, .limit = {.packets_per_sec = 1, .burst_packets = 2}});
    p.rules.push_back({.name = "games", .protocol = RuleProtocol::udp, .port_first = 27000, .port_last = 27100,
                       .limit = {.packets_per_sec = 1, .burst_packets = 3}});
    apply(p);
    EXPECT_EQ(passes(tcp_from("192.0.2.1", 22, true), 5), 2);
    EXPECT_EQ(passes(tcp_from("192.0.2.1", 22, false), 5), 5) << "established flows are not SYN-limited";
    EXPECT_EQ(passes(tcp_from("192.0.2.1", 80, true), 5), 5);
    EXPECT_EQ(passes(udp_from("192.0.2.1", 27050), 5), 3);
    EXPECT_EQ(passes(udp_from("192.0.2.1", 27100), 5), 0) << "the range shares one bucket per source";
    EXPECT_EQ(passes(udp_from("192.0.2.1", 27101), 5), 5);
    const auto c = dp_->read_counters();
    EXPECT_EQ(c.packets_where([](const CounterKey& k) { return k.rule == 1 && k.reason == RL_REASON_RATE; }), 3U);
    EXPECT_EQ(c.packets_where([](const CounterKey& k) { return k.rule == 2 && k.reason == RL_REASON_RATE; }), 7U);
}

TEST_F(XdpTest, GlobalLimitProtectsTheHost) {
    auto p = limited_policy(10, 5);
    p.global = {.packets_per_sec = 10, .burst_packets = 8};
    apply(p);
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 3), 3);
    EXPECT_EQ(passes(udp_from("192.0.2.2"), 3), 3);
    EXPECT_EQ(passes(udp_from("192.0.2.3"), 3), 2);
    EXPECT_EQ(count(RL_REASON_GLOBAL, RL_VERDICT_DROP), 1U);
    // The source charged for the globally dropped packet got its token back:
    // without the global limit it has 5 - 2 = 3 left, not 2.
    p.global = {};
    apply(p);
    EXPECT_EQ(passes(udp_from("192.0.2.3"), 5), 3);
}

TEST_F(XdpTest, GlobalLimitLeasesStayWithinTheBurst) {
    auto p = limited_policy(0, 0);
    p.global = {.packets_per_sec = 1, .burst_packets = 100};  // leases of 32 packets
    apply(p);
    int passed = 0;
    for (int i = 1; i <= 40; ++i)
        passed += passes(udp_from(("192.0.2." + std::to_string(i)).c_str()), 5);
    EXPECT_EQ(passed, 100) << "one CPU: leases plus single takes add up to the burst exactly";
    EXPECT_EQ(count(RL_REASON_GLOBAL, RL_VERDICT_DROP), 100U);
}

// Priority shedding: over the global limit, a tier with a quarter of the global burst stops
// at a quarter; the tier with all of it gets the rest; the low tier cannot take it back.
TEST_F(XdpTest, OverTheGlobalLimitLowerTiersAreShedFirst) {
    policy::Policy p;
    p.tiers = {{.name = "free", .limit = {}, .global_share = 0.25}, {.name = "premium", .limit = {}}};
    p.default_tier = "free";
    p.members = {{*Cidr::parse("198.51.100.0/24"), "premium"}};
    p.global = {.packets_per_sec = 1, .burst_packets = 100};
    apply(p);
    int free_passed = 0, premium_passed = 0;
    for (int i = 1; i <= 40; ++i)
        free_passed += passes(udp_from(("192.0.2." + std::to_string(i)).c_str()), 5);
    EXPECT_EQ(free_passed, 25) << "a quarter of the burst";
    for (int i = 1; i <= 40; ++i)
        premium_passed += passes(udp_from(("198.51.100." + std::to_string(i)).c_str()), 5);
    EXPECT_EQ(premium_passed, 75) << "the rest of the burst, leases included";
    EXPECT_EQ(passes(udp_from("192.0.2.77"), 5), 0);
    const auto c = dp_->read_counters();
    EXPECT_EQ(c.packets_where([](const CounterKey& k) { return k.tier == 0 && k.reason == RL_REASON_GLOBAL; }), 180U);
    EXPECT_EQ(c.packets_where([](const CounterKey& k) { return k.tier == 1 && k.reason == RL_REASON_GLOBAL; }), 125U);
}

TEST_F(XdpTest, AllowlistBeatsDenyAndBan) {
    auto p = limited_policy(1, 1);
    p.allow.push_back(*Cidr::parse("10.1.0.0/16"));
    p.deny.push_back(*Cidr::parse("10.0.0.0/8"));
    apply(p);
    dp_->add_ban(*Cidr::parse("10.1.2.3/32"), 0ns);
    EXPECT_EQ(passes(udp_from("10.1.2.3"), 20), 20);
    EXPECT_EQ(count(RL_REASON_ALLOW, RL_VERDICT_PASS), 20U);
    EXPECT_EQ(run(udp_from("10.2.0.1")), XDP_DROP);
    EXPECT_EQ(count(RL_REASON_DENY, RL_VERDICT_DROP), 1U);
}

TEST_F(XdpTest, BanDropsOnlyTheBannedPrefix) {
    apply(limited_policy(1000, 1000));
    EXPECT_EQ(run(udp_from("203.0.113.7")), XDP_PASS);  // cached as a limited source first
    dp_->add_ban(*Cidr::parse("203.0.113.0/24"), 60s);
    EXPECT_EQ(passes(udp_from("203.0.113.7"), 10), 0);
    EXPECT_EQ(passes(udp_from("203.0.113.200"), 10), 0);
    EXPECT_EQ(count(RL_REASON_BAN, RL_VERDICT_DROP), 20U);
    EXPECT_EQ(passes(udp_from("203.0.114.1"), 10), 10);
    ASSERT_TRUE(dp_->remove_ban(*Cidr::parse("203.0.113.0/24")));
    EXPECT_EQ(passes(udp_from("203.0.113.7"), 10), 10) << "unban takes effect at once";
    EXPECT_FALSE(dp_->remove_ban(*Cidr::parse("203.0.113.0/24")));
}

TEST_F(XdpTest, BanExpiryRestoresService) {
    apply(limited_policy(1000, 1000));
    dp_->add_ban(*Cidr::parse("203.0.113.7/32"), 50ms);
    EXPECT_EQ(run(udp_from("203.0.113.7")), XDP_DROP);
    std::this_thread::sleep_for(80ms);
    EXPECT_EQ(run(udp_from("203.0.113.7")), XDP_PASS) << "expired ban ignored before any reaping";
    EXPECT_EQ(dp_->list_bans().size(), 1U) << "the entry is still in the map";
}

TEST_F(XdpTest, ExpiredBanEntryIsNeverEnforced) {
    apply(limited_policy(1000, 1000));
    dp_->add_ban(*Cidr::parse("203.0.113.7/32"), 60s);
    auto bans = dp_->list_bans();
    ASSERT_EQ(bans.size(), 1U);
    EXPECT_EQ(bans[0].prefix.to_string(), "203.0.113.7/32");
    const auto now = dp_->clock().rl_now_ns;
    EXPECT_GT(bans[0].value.expires_ns, now + 59'000'000'000ULL);
    // Rewrite it as already expired.
    rl_lpm_key k{};
    k.prefixlen = RL_LPM_SLOT_BITS + 128;
    k.slot = RL_LPM_SLOT_V4;
    std::memcpy(k.addr, IpAddress::parse("203.0.113.7")->bytes.data(), 16);
    bans[0].value.expires_ns = now - 1;
    ASSERT_EQ(bpf_map_update_elem(dp_->map_fd("rl_bans"), &k, &bans[0].value, BPF_ANY), 0);
    EXPECT_EQ(run(udp_from("203.0.113.7")), XDP_PASS);
}

// IPv4 lives in the tries as ::ffff:a.b.c.d: without the family bit in the key an
// IPv6 prefix with leading zero bits (::/0, ::/48, a kernel auto-ban of an
// aggregated ::/1 bucket) would cover every IPv4 source.
TEST_F(XdpTest, Ipv6PrefixesNeverMatchIpv4Sources) {
    auto p = limited_policy(1000, 1000);
    p.deny.push_back(*Cidr::parse("::/0"));
    apply(p);
    EXPECT_EQ(run(udp_from("2001:db8::1")), XDP_DROP) << "::/0 denies IPv6";
    EXPECT_EQ(run(udp_from("192.0.2.1")), XDP_PASS) << "but not IPv4";
    apply(limited_policy(1000, 1000));
    dp_->add_ban(*Cidr::parse("::/48"), 0ns);
    EXPECT_EQ(run(udp_from("::1:2:3:4")), XDP_DROP);
    EXPECT_EQ(run(udp_from("198.51.100.1")), XDP_PASS) << "an IPv6 ban with leading zeros left IPv4 alone";
    dp_->add_ban(*Cidr::parse("0.0.0.0/0"), 0ns);
    EXPECT_EQ(run(udp_from("198.51.100.1")), XDP_DROP);
    EXPECT_EQ(run(udp_from("2001:db8::1")), XDP_PASS) << "and an IPv4 ban leaves IPv6 alone";
    std::set<std::string> listed;
    for (const auto& b : dp_->list_bans())
        listed.insert(b.prefix.to_string());
    EXPECT_EQ(listed, (std::set<std::string>{"::/48", "0.0.0.0/0"})) << "families read back from the keys";
}

TEST_F(XdpTest, Ipv6BansNarrowerThanTrackingAreRefused) {
    apply(limited_policy(10, 5));
    EXPECT_THROW(dp_->add_ban(*Cidr::parse("2001:db8::1/128"), 0ns), BpfError);
    EXPECT_NO_THROW(dp_->add_ban(*Cidr::parse("2001:db8::/64"), 0ns));
    EXPECT_EQ(run(udp_from("2001:db8::77")), XDP_DROP);
}

class AutoBanTest : public XdpTest {
protected:
    DataplaneOptions options() const override {
        auto o = XdpTest::options();
        o.events_per_sec = 1;  // budget: 2 events, then 1 per second
        o.events_burst = 2;
        o.drop_samples_per_sec = 0;  // only auto-ban events here
        return o;
    }
};

class DropSampleTest : public XdpTest {
protected:
    DataplaneOptions options() const override {
        auto o = XdpTest::options();
        o.drop_samples_per_sec = 1;  // budget: 2 samples at once, then 1 per second
        return o;
    }
};

TEST_F(DropSampleTest, DropsAreSampledWithTheirReason) {
    auto p = limited_policy(1, 1);
    p.deny.push_back(*Cidr::parse("192.0.2.0/24"));
    apply(p);
    EXPECT_EQ(run(udp_from("192.0.2.7")), XDP_DROP);                // deny: sampled
    EXPECT_EQ(passes(udp_from("198.18.0.1"), 40), 1);               // 39 rate drops: one sampled
    std::vector<rl_event> events;
    dp_->poll_events(100ms, [&](const rl_event& e) { events.push_back(e); });
    ASSERT_EQ(events.size(), 2U) << "a flood of drops stays within the sample budget";
    EXPECT_EQ(events[0].type, static_cast<std::uint32_t>(RL_EVENT_DROP));
    EXPECT_EQ(events[0].reason, RL_REASON_DENY);
    EXPECT_EQ(events[1].reason, RL_REASON_RATE);
    IpAddress a;
    std::memcpy(a.bytes.data(), events[1].addr, 16);
    a.v4 = true;
    EXPECT_EQ(a.to_string(), "198.18.0.1");
    EXPECT_EQ(events[1].tier, 0);
}

TEST_F(AutoBanTest, ThresholdCrossingBansAndEmitsSampledEvents) {
    auto p = limited_policy(1, 2);
    p.tiers[0].autoban = {.drops = 3, .window_ns = 10'000'000'000ULL, .ban_ns = 60'000'000'000ULL};
    apply(p);
    EXPECT_EQ(passes(udp_from("198.18.0.1"), 4), 2);  // 2 pass, 2 rate drops
    EXPECT_TRUE(dp_->list_bans().empty());
    EXPECT_EQ(run(udp_from("198.18.0.1")), XDP_DROP);  // third drop: banned
    auto bans = dp_->list_bans();
    ASSERT_EQ(bans.size(), 1U);
    EXPECT_EQ(bans[0].prefix.to_string(), "198.18.0.1/32");
    EXPECT_EQ(bans[0].value.origin, RL_ORIGIN_KERNEL);
    EXPECT_EQ(bans[0].value.rule, 0);
    EXPECT_EQ(bans[0].value.expires_ns - bans[0].value.created_ns, 60'000'000'000ULL);
    const auto before = count(RL_REASON_BAN, RL_VERDICT_DROP);
    EXPECT_EQ(passes(udp_from("198.18.0.1"), 5), 0);
    EXPECT_EQ(count(RL_REASON_BAN, RL_VERDICT_DROP), before + 5);
    EXPECT_EQ(passes(udp_from("198.18.0.2"), 2), 2) << "other sources unaffected";

    // Nine more sources cross the threshold: 10 bans, but the budget allows 2 events.
    for (int i = 10; i < 19; ++i)
        passes(udp_from(("198.18.0." + std::to_string(i)).c_str()), 5);
    std::vector<rl_event> events;
    dp_->poll_events(100ms, [&](const rl_event& e) { events.push_back(e); });
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].type, static_cast<std::uint32_t>(RL_EVENT_AUTOBAN));
    EXPECT_EQ(events[0].prefixlen, 128);
    EXPECT_EQ(events[0].drops, 3U);
    EXPECT_EQ(events[0].ban_ns, 60'000'000'000ULL);
    IpAddress first;
    std::memcpy(first.bytes.data(), events[0].addr, 16);
    first.v4 = true;
    EXPECT_EQ(first.to_string(), "198.18.0.1");
    const auto c = dp_->read_counters();
    EXPECT_EQ(c.health[RL_HEALTH_AUTOBAN], 10U);
    EXPECT_EQ(c.health[RL_HEALTH_EVENTS_SENT], 2U);
    EXPECT_EQ(c.health[RL_HEALTH_EVENTS_SUPPRESSED], 8U);
    EXPECT_EQ(dp_->list_bans().size(), 10U);
}

TEST_F(AutoBanTest, AutoBanExpiryRestoresService) {
    auto p = limited_policy(1, 1);
    p.tiers[0].autoban = {.drops = 2, .window_ns = 10'000'000'000ULL, .ban_ns = 40'000'000ULL};
    apply(p);
    EXPECT_EQ(passes(udp_from("198.18.0.1"), 3), 1);
    ASSERT_EQ(dp_->list_bans().size(), 1U);
    // Let the 40 ms ban run out and the bucket refill (1 pps: move its clock back).
    std::this_thread::sleep_for(70ms);
    const auto key = bucket_key(*IpAddress::parse("198.18.0.1"), 128, 0);
    auto b = dp_->lookup_bucket(key);
    ASSERT_TRUE(b);
    b->pkt_tat_q -= 10 * kSecondQ;
    dp_->update_bucket(key, *b);
    EXPECT_EQ(run(udp_from("198.18.0.1")), XDP_PASS);
}

TEST_F(XdpTest, DryRunCountsWouldBeDropsAndPasses) {
    auto p = limited_policy(10, 2);
    p.deny.push_back(*Cidr::parse("192.0.2.99/32"));
    p.tiers[0].autoban = {.drops = 1, .window_ns = 1'000'000'000ULL, .ban_ns = 1'000'000'000ULL};
    p.dry_run = true;
    apply(p);
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 10), 10);
    EXPECT_EQ(count(RL_REASON_RATE, RL_VERDICT_PASS), 8U);
    EXPECT_EQ(count(RL_REASON_RATE, RL_VERDICT_DROP), 0U);
    EXPECT_EQ(run(udp_from("192.0.2.99")), XDP_PASS);
    EXPECT_EQ(count(RL_REASON_DENY, RL_VERDICT_PASS), 1U);
    EXPECT_TRUE(dp_->list_bans().empty()) << "dry-run changes no state";
}

TEST_F(XdpTest, PolicySwapKeepsBucketsAndTakesEffectAtOnce) {
    auto p = limited_policy(1, 5);  // 1 pps: no refill while the test swaps policies
    const auto gen1 = apply(p);
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 6), 5);
    const auto key = bucket_key(*IpAddress::parse("192.0.2.1"), 128, 0);
    const auto tat_before = dp_->lookup_bucket(key)->pkt_tat_q;

    p.tiers.push_back({.name = "premium", .limit = {.packets_per_sec = 1, .burst_packets = 50}});
    p.members.push_back({*Cidr::parse("198.51.100.0/24"), "premium"});
    const auto gen2 = apply(p);
    EXPECT_EQ(gen2, gen1 + 1);
    EXPECT_EQ(run(udp_from("192.0.2.1")), XDP_DROP) << "bucket kept across the swap";
    EXPECT_EQ(dp_->lookup_bucket(key)->pkt_tat_q, tat_before);
    EXPECT_EQ(dp_->lookup_bucket(key)->policy_gen, gen2) << "classification revalidated";

    p.allow.push_back(*Cidr::parse("192.0.2.0/24"));
    apply(p);
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 10), 10) << "newly allowlisted at once";
    p.allow.clear();
    apply(p);
    EXPECT_EQ(run(udp_from("192.0.2.1")), XDP_DROP) << "back to its (still empty) bucket";
    // Many swaps: slots alternate and stale entries are cleared.
    for (int i = 0; i < 10; ++i)
        apply(p);
    std::size_t entries = 0;
    rl_lpm_key k{}, next{};
    const rl_lpm_key* prev = nullptr;
    while (bpf_map_get_next_key(dp_->map_fd("rl_class"), prev, &next) == 0) {
        ++entries;
        k = next;
        prev = &k;
    }
    EXPECT_EQ(entries, 2U) << "one membership prefix per slot";
}

// `n` sources `prefix`.1, .2, ... whose rl_seen slots differ: another
// source's tag in its slot would make a source "seen" at its first packet.
std::vector<FrameSpec> sources_in_own_slots(const Dataplane& dp, const std::string& prefix, int n) {
    std::vector<FrameSpec> out;
    std::set<std::uint32_t> slots;
    for (int i = 1; i < 255 && std::ssize(out) < n; ++i) {
        auto s = udp_from((prefix + std::to_string(i)).c_str());
        if (slots.insert(dp.seen_slot(bucket_key(s.src, 128, 0))).second)
            out.push_back(s);
    }
    return out;
}

TEST_F(XdpTest, CountsBucketInsertsOnEachSourcesSecondPacket) {
    apply(limited_policy(10, 5));
    const auto sources = sources_in_own_slots(*dp_, "192.0.2.", 50);
    ASSERT_EQ(sources.size(), 50U);
    for (const auto& s : sources)
        run(s);
    EXPECT_EQ(dp_->read_counters().health[RL_HEALTH_FIRST_PACKETS], 50U);
    EXPECT_EQ(dp_->read_counters().health[RL_HEALTH_BUCKET_INSERTS], 0U) << "a first packet makes no bucket";
    EXPECT_EQ(dp_->count_buckets(), 0U);
    for (const auto& s : sources)
        run(s);
    EXPECT_EQ(dp_->read_counters().health[RL_HEALTH_BUCKET_INSERTS], 50U);
    EXPECT_EQ(dp_->read_counters().health[RL_HEALTH_FIRST_PACKETS], 50U);
    EXPECT_EQ(dp_->count_buckets(), 50U);
}

TEST_F(XdpTest, ASourcesBucketTakesOverItsFirstPacket) {
    apply(limited_policy(10, 3));
    const auto src = udp_from("192.0.2.7");
    const auto key = bucket_key(src.src, 128, 0);
    EXPECT_EQ(run(src), XDP_PASS);
    EXPECT_FALSE(dp_->lookup_bucket(key)) << "judged as a fresh bucket would, no bucket made";
    EXPECT_EQ(run(src), XDP_PASS);
    ASSERT_TRUE(dp_->lookup_bucket(key));
    EXPECT_EQ(dp_->lookup_bucket(key)->passed, 2U) << "the second packet's bucket counts the first";
    EXPECT_EQ(run(src), XDP_PASS);
    EXPECT_EQ(passes(src, 10), 0) << "burst 3 exactly: the first packet was charged";
}

TEST_F(XdpTest, AnotherSourcesTagInTheSameSlotIsNotTakenForASourcesOwn) {
    // Tags carry 3 bits of the key's hash besides the slot, so a source whose
    // slot another tagged is still judged as new (and charged for no first
    // packet it never sent) unless those bits match too: 1 time in 8.
    apply(limited_policy(1, 1));
    const auto victim = udp_from("192.0.2.7");
    const auto victim_key = bucket_key(victim.src, 128, 0);
    std::optional<FrameSpec> other;
    for (std::uint32_t i = 0; i < (1U << 22) && !other; ++i) {
        FrameSpec s = udp_from("10.0.0.0");
        s.src = IpAddress::from_v4_bytes({10, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                                          static_cast<std::uint8_t>(i)});
        const auto key = bucket_key(s.src, 128, 0);
        if (dp_->seen_slot(key) == dp_->seen_slot(victim_key) && dp_->seen_tag(key, 0) != dp_->seen_tag(victim_key, 0))
            other = s;
    }
    ASSERT_TRUE(other) << "no source shares the slot";
    EXPECT_EQ(run(*other), XDP_PASS);
    const auto first = dp_->read_counters().health[RL_HEALTH_FIRST_PACKETS];
    EXPECT_EQ(run(victim), XDP_PASS);
    EXPECT_EQ(dp_->read_counters().health[RL_HEALTH_FIRST_PACKETS], first + 1) << "judged as new";
    EXPECT_FALSE(dp_->lookup_bucket(victim_key));
    EXPECT_EQ(run(victim), XDP_DROP) << "burst 1: its bucket took the first packet over";
    EXPECT_TRUE(dp_->lookup_bucket(victim_key));
}

TEST_F(XdpTest, AFirstPacketGetsItsClassesVerdict) {
    auto p = limited_policy(10, 3);
    p.allow.push_back(*Cidr::parse("198.51.100.0/24"));
    p.deny.push_back(*Cidr::parse("192.0.2.0/24"));
    apply(p);
    dp_->add_ban(*Cidr::parse("203.0.113.0/24"), std::chrono::seconds(60));
    EXPECT_EQ(run(udp_from("198.51.100.1")), XDP_PASS);
    EXPECT_EQ(run(udp_from("192.0.2.1")), XDP_DROP);
    EXPECT_EQ(run(udp_from("203.0.113.1")), XDP_DROP);
    EXPECT_EQ(run(udp_from("100.64.0.1")), XDP_PASS);  // a policy's bursts hold at least one full frame
    const auto c = dp_->read_counters();
    EXPECT_EQ(c.packets(RL_REASON_ALLOW, RL_VERDICT_PASS), 1U);
    EXPECT_EQ(c.packets(RL_REASON_DENY, RL_VERDICT_DROP), 1U);
    EXPECT_EQ(c.packets(RL_REASON_BAN, RL_VERDICT_DROP), 1U);
    EXPECT_EQ(c.packets(RL_REASON_WITHIN_LIMIT, RL_VERDICT_PASS), 1U);
    EXPECT_EQ(c.health[RL_HEALTH_FIRST_PACKETS], 4U);
    EXPECT_EQ(dp_->count_buckets(), 0U);
}

TEST_F(XdpTest, FirstPacketsOfAnAggregatedTierAreChargedToTheSharedBucket) {
    // One packet from each of 20 addresses of one /24: without its shared
    // bucket, a spray inside the prefix would pass one packet per address.
    auto p = limited_policy(1000, 1000);
    p.tiers.push_back({.name = "carrier", .limit = {.packets_per_sec = 1, .burst_packets = 5}, .prefix_v4 = 24});
    p.members.push_back({*Cidr::parse("100.64.0.0/10"), "carrier"});
    apply(p);
    const auto sources = sources_in_own_slots(*dp_, "100.64.1.", 20);
    ASSERT_EQ(sources.size(), 20U);
    int passed = 0;
    for (const auto& s : sources)
        passed += run(s) == XDP_PASS;
    EXPECT_EQ(passed, 5);
    EXPECT_EQ(dp_->read_counters().health[RL_HEALTH_FIRST_PACKETS], 20U);
}

TEST_F(XdpTest, ASourceUnseenForTwoWindowsIsNewAgain) {
    // 8,192 entries: 65,536 seen slots, a window of 4,096 first packets.
    apply(limited_policy(1000, 1000));
    const auto src = udp_from("192.0.2.7");
    const auto key = bucket_key(src.src, 128, 0);
    run(src);
    run(src);
    ASSERT_TRUE(dp_->lookup_bucket(key));
    // Other sources' first packets, none in the source's slot, until the
    // clock has surely moved two windows on (each CPU adds its first packets
    // in batches, so up to a batch per CPU may not have reached it yet).
    const std::uint64_t target = 1 + 2 * 4096 + std::uint64_t{RL_SEEN_CLOCK_BATCH} * libbpf_num_possible_cpus();
    std::uint64_t first = 0;
    for (std::uint32_t i = 1; i < (1U << 20) && first < target; ++i) {
        FrameSpec other = udp_from("10.0.0.0");
        other.src = IpAddress::from_v4_bytes({10, static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                                              static_cast<std::uint8_t>(i)});
        if (dp_->seen_slot(bucket_key(other.src, 128, 0)) == dp_->seen_slot(key))
            continue;
        run(other);
        if (i % 256 == 0)
            first = dp_->read_counters().health[RL_HEALTH_FIRST_PACKETS];
    }
    ASSERT_GE(first, target);
    const auto before = dp_->read_counters().health;
    run(src);
    const auto after = dp_->read_counters().health;
    EXPECT_EQ(after[RL_HEALTH_FIRST_PACKETS] - before[RL_HEALTH_FIRST_PACKETS], 1U)
        << "two windows of other first packets later, the source is judged as new";
    run(src);
    EXPECT_EQ(dp_->read_counters().health[RL_HEALTH_FIRST_PACKETS], after[RL_HEALTH_FIRST_PACKETS])
        << "and seen again at its next packet";
}

TEST_F(XdpTest, ClockProbeMatchesMonotonicTime) {
    const auto a = dp_->clock();
    EXPECT_GT(a.ns_per_jiffy, 0U);
    EXPECT_LE(a.ns_per_jiffy, 10'000'000U);
    std::this_thread::sleep_for(100ms);
    const auto b = dp_->clock();
    const double rl = static_cast<double>(b.rl_now_ns - a.rl_now_ns);
    const double mono = static_cast<double>(b.mono_ns - a.mono_ns);
    EXPECT_NEAR(rl, mono, 2.0 * static_cast<double>(a.ns_per_jiffy));
}

}  // namespace
}  // namespace rlgate::testing

namespace rlgate::testing {
namespace {

TEST_F(XdpTest, BannedEntriesCountTheirBanHitsAcrossRevalidation) {
    apply(limited_policy(1000, 1000));
    dp_->add_ban(*Cidr::parse("203.0.113.0/24"), std::chrono::seconds(60));
    EXPECT_EQ(passes(udp_from("203.0.113.1"), 5), 0);
    EXPECT_EQ(passes(udp_from("203.0.113.2"), 3), 0);
    const auto key1 = bucket_key(*IpAddress::parse("203.0.113.1"), 128, 0);
    ASSERT_TRUE(dp_->lookup_bucket(key1));
    EXPECT_EQ(dp_->lookup_bucket(key1)->state, RL_STATE_BANNED);
    EXPECT_EQ(dp_->lookup_bucket(key1)->window_drops, 5U);
    EXPECT_EQ(dp_->lookup_bucket(bucket_key(*IpAddress::parse("203.0.113.2"), 128, 0))->window_drops, 3U);

    dp_->add_ban(*Cidr::parse("198.18.0.0/16"), std::chrono::seconds(60));  // every entry revalidates
    EXPECT_EQ(run(udp_from("203.0.113.1")), XDP_DROP);
    EXPECT_EQ(dp_->lookup_bucket(key1)->window_drops, 6U) << "the same ban keeps its count";

    dp_->remove_ban(*Cidr::parse("203.0.113.0/24"));
    EXPECT_EQ(run(udp_from("203.0.113.1")), XDP_PASS);
    EXPECT_EQ(dp_->lookup_bucket(key1)->state, RL_STATE_LIMITED);
    EXPECT_EQ(dp_->lookup_bucket(key1)->window_drops, 0U) << "released: a fresh auto-ban window";
}

}  // namespace
}  // namespace rlgate::testing

namespace rlgate::testing {
namespace {

TEST_F(XdpTest, InterfaceCountersSeeEveryPacketOnce) {
    apply(limited_policy(1, 3));
    EXPECT_EQ(passes(udp_from("192.0.2.1"), 5), 3);
    // BPF_PROG_TEST_RUN frames arrive on the loopback device (ifindex 1).
    const auto c = dp_->read_interface_counters(1);
    EXPECT_EQ(c[RL_REASON_WITHIN_LIMIT][RL_VERDICT_PASS].packets, 3U);
    EXPECT_EQ(c[RL_REASON_RATE][RL_VERDICT_DROP].packets, 2U);
    EXPECT_EQ(c[RL_REASON_RATE][RL_VERDICT_DROP].bytes, 2 * build_frame(udp_from("192.0.2.1")).bytes.size());
    EXPECT_EQ(dp_->read_interface_counters(2)[RL_REASON_RATE][RL_VERDICT_DROP].packets, 0U);
}

}  // namespace
}  // namespace rlgate::testing

namespace rlgate::testing {
namespace {

TEST_F(AutoBanTest, AnExpiredBanNobodyReapedIsReplacedByTheNextOne) {
    auto p = limited_policy(1, 1);
    p.tiers[0].autoban = {.drops = 2, .window_ns = 10'000'000'000ULL, .ban_ns = 40'000'000ULL};
    apply(p);
    EXPECT_EQ(passes(udp_from("198.18.0.1"), 3), 1);
    ASSERT_EQ(dp_->list_bans().size(), 1U);
    const auto first = dp_->list_bans()[0].value.created_ns;
    std::this_thread::sleep_for(70ms);  // expired, still in the map: no daemon reaps here
    EXPECT_EQ(passes(udp_from("198.18.0.1"), 4), 0) << "limited again, then banned again";
    const auto bans = dp_->list_bans();
    ASSERT_EQ(bans.size(), 1U);
    EXPECT_GT(bans[0].value.created_ns, first) << "a fresh ban, not blocked by the expired one";
    EXPECT_EQ(dp_->read_counters().health[RL_HEALTH_AUTOBAN], 2U);
    EXPECT_EQ(run(udp_from("198.18.0.1")), XDP_DROP);
    EXPECT_EQ(count(RL_REASON_RATE, RL_VERDICT_DROP), 2U + 2U) << "two drops reach the threshold each time";
    EXPECT_EQ(count(RL_REASON_BAN, RL_VERDICT_DROP), 3U) << "then the ban drops";
}

TEST_F(XdpTest, AggregatedBucketsCarryTheirTier) {
    auto p = limited_policy(1000, 1000);
    p.tiers.push_back({.name = "carrier", .limit = {.packets_per_sec = 10, .burst_packets = 10}, .prefix_v4 = 24});
    p.members.push_back({*Cidr::parse("100.64.0.0/16"), "carrier"});
    apply(p);
    EXPECT_EQ(passes(udp_from("100.64.7.1"), 3), 3);
    EXPECT_EQ(passes(udp_from("100.64.7.2"), 3), 3);
    const auto agg = dp_->lookup_bucket(bucket_key(*IpAddress::parse("100.64.7.0"), 96 + 24, 0));
    ASSERT_TRUE(agg);
    EXPECT_EQ(agg->state, RL_STATE_AGGREGATED);
    EXPECT_EQ(agg->tier, 1);
    EXPECT_EQ(agg->passed, 6U);
}

}  // namespace
}  // namespace rlgate::testing
