// SPDX-License-Identifier: BSD-2-Clause
// Parser cases through the real program. A deny entry for the test source
// proves the parser found the source address (the frame is dropped with
// reason DENY); malformed frames get the configured verdict and a counter.
#include "xdp_fixture.hpp"

namespace rlgate::testing {
namespace {

constexpr const char* kV4 = "192.0.2.10";
constexpr const char* kV6 = "2001:db8:1:2::10";

class ParserTest : public XdpTest {
protected:
    void deny_test_sources(bool drop_malformed) {
        auto p = limited_policy(0, 0);
        p.deny.push_back(*Cidr::parse("192.0.2.10/32"));
        p.deny.push_back(*Cidr::parse("2001:db8:1:2::/64"));
        p.drop_malformed = drop_malformed;
        apply(p);
    }
    void expect_denied(const FrameSpec& s, const char* what) {
        const auto before = count(RL_REASON_DENY, RL_VERDICT_DROP);
        EXPECT_EQ(run(s), XDP_DROP) << what;
        EXPECT_EQ(count(RL_REASON_DENY, RL_VERDICT_DROP), before + 1) << what;
    }
    void expect_malformed(const std::vector<std::uint8_t>& bytes, const std::string& what) {
        const auto before = count(RL_REASON_MALFORMED, RL_VERDICT_DROP);
        EXPECT_EQ(run_bytes(bytes), XDP_DROP) << what;
        EXPECT_EQ(count(RL_REASON_MALFORMED, RL_VERDICT_DROP), before + 1) << what;
    }
};

TEST_F(ParserTest, NonIpPassesAndIsCounted) {
    deny_test_sources(true);
    auto f = build_frame(udp_from(kV4));
    f.bytes[12] = 0x08;  // ARP
    f.bytes[13] = 0x06;
    EXPECT_EQ(run_bytes(f.bytes), XDP_PASS);
    EXPECT_EQ(count(RL_REASON_NON_IP, RL_VERDICT_PASS), 1U);
}

TEST_F(ParserTest, FindsSourceThroughEveryEncapsulation) {
    deny_test_sources(true);
    for (const char* src : {kV4, kV6}) {
        for (auto proto : {net::kProtoUdp, net::kProtoTcp, net::kProtoIcmp, std::uint8_t{47} /* GRE */}) {
            FrameSpec s = udp_from(src);
            s.protocol = (proto == net::kProtoIcmp && !s.src.v4) ? net::kProtoIcmpV6 : proto;
            expect_denied(s, "plain");
            s.vlan_tpids = {net::kTpid8021Q};
            expect_denied(s, "802.1Q");
            s.vlan_tpids = {net::kTpid8021AD, net::kTpid8021Q};
            expect_denied(s, "QinQ");
        }
    }
    FrameSpec opts = udp_from(kV4);
    for (unsigned words = 1; words <= 10; ++words) {
        opts.ipv4_option_words = words;
        expect_denied(opts, "IPv4 options");
    }
    FrameSpec ext = udp_from(kV6);
    ext.ipv6_ext_headers = {net::kIpv6HopByHop, net::kIpv6Routing, net::kIpv6DestOpts, net::kIpv6Fragment};
    expect_denied(ext, "IPv6 extension headers");
    ext.ipv6_ext_headers = {net::kIpv6HopByHop, net::kIpv6DestOpts, net::kIpv6Routing,
                            net::kIpv6Fragment, net::kIpv6DestOpts, net::kIpv6DestOpts};
    expect_denied(ext, "six IPv6 extension headers, as many as the walk takes");  // found by fuzz_xdp_parser
}

TEST_F(ParserTest, ThreeVlanTagsAreNotParsedAsIp) {
    deny_test_sources(true);
    FrameSpec s = udp_from(kV4);
    s.vlan_tpids = {net::kTpid8021AD, net::kTpid8021Q, net::kTpid8021Q};
    EXPECT_EQ(run(s), XDP_PASS);
    EXPECT_EQ(count(RL_REASON_NON_IP, RL_VERDICT_PASS), 1U);
}

TEST_F(ParserTest, L4ClassAndPortReachTheRuleTable) {
    auto p = limited_policy(0, 0);
    p.rules.push_back({.name = "dns", .protocol = policy::RuleProtocol::udp, .port_first = 53, .port_last = 53,
                       .limit = {.packets_per_sec = 1, .burst_packets = 1}});
    p.rules.push_back({.name = "ssh-syn", .protocol = policy::RuleProtocol::tcp, .port_first = 22,
                       .port_last = 22, .syn_only = true, .limit = {.packets_per_sec = 1, .burst_packets = 1}});
    p.rules.push_back({.name = "other", .protocol = policy::RuleProtocol::other,
                       .limit = {.packets_per_sec = 1, .burst_packets = 1}});
    apply(p);
    auto rule_of_last_pass = [&](const FrameSpec& s) -> int {
        dp_->reset_counters();
        EXPECT_EQ(run(s), XDP_PASS);
        const auto counters = dp_->read_counters();  // a local: a range-for over a temporary's member dangles
        for (const auto& [k, v] : counters.entries)
            if (k.reason == RL_REASON_WITHIN_LIMIT)
                return static_cast<int>(k.rule);
        return -1;
    };
    for (const char* src : {kV4, kV6}) {
        dp_->clear_buckets();
        EXPECT_EQ(rule_of_last_pass(udp_from(src, 53)), 1) << src;
        EXPECT_EQ(rule_of_last_pass(udp_from(src, 54)), 0) << src;
        EXPECT_EQ(rule_of_last_pass(tcp_from(src, 22, true)), 2) << src;
        EXPECT_EQ(rule_of_last_pass(tcp_from(src, 22, false)), 0) << "established TCP is not SYN-only " << src;
        FrameSpec icmp = udp_from(src);
        icmp.protocol = icmp.src.v4 ? net::kProtoIcmp : net::kProtoIcmpV6;
        EXPECT_EQ(rule_of_last_pass(icmp), 3) << src;
    }
    // First fragment keeps its ports; later fragments have none (class "other").
    dp_->clear_buckets();
    FrameSpec first = udp_from(kV4, 53);
    first.more_fragments = true;
    EXPECT_EQ(rule_of_last_pass(first), 1);
    FrameSpec later = udp_from("192.0.2.11", 53);
    later.fragment_offset = 185;
    EXPECT_EQ(rule_of_last_pass(later), 3);
    FrameSpec v6first = udp_from(kV6, 53);
    v6first.ipv6_ext_headers = {net::kIpv6Fragment};
    v6first.more_fragments = true;
    EXPECT_EQ(rule_of_last_pass(v6first), 1);
    FrameSpec v6later = udp_from("2001:db8:9::1", 53);
    v6later.ipv6_ext_headers = {net::kIpv6HopByHop, net::kIpv6Fragment};
    v6later.fragment_offset = 100;
    EXPECT_EQ(rule_of_last_pass(v6later), 3);
}

TEST_F(ParserTest, TruncationAtEveryByteIsMalformed) {
    deny_test_sources(true);
    std::vector<FrameSpec> specs;
    FrameSpec v4tcp = tcp_from(kV4, 80, true);
    v4tcp.vlan_tpids = {net::kTpid8021AD, net::kTpid8021Q};
    v4tcp.ipv4_option_words = 3;
    specs.push_back(v4tcp);
    FrameSpec v6udp = udp_from(kV6);
    v6udp.ipv6_ext_headers = {net::kIpv6HopByHop, net::kIpv6Fragment, net::kIpv6DestOpts};
    specs.push_back(v6udp);
    FrameSpec v4icmp = udp_from(kV4);
    v4icmp.protocol = net::kProtoIcmp;
    specs.push_back(v4icmp);
    for (const auto& s : specs) {
        const auto full = build_frame(s).bytes;
        // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
        for (std::size_t len = 14; len < full.size(); ++len)
            expect_malformed({full.begin(), full.begin() + static_cast<long>(len)},
                             "truncated to " + std::to_string(len) + " of " + std::to_string(full.size()));
        expect_denied(s, "the untruncated frame parses");
    }
}

TEST_F(ParserTest, BogusLengthsAreMalformed) {
    deny_test_sources(true);
    auto mutate = [&](const FrameSpec& s, auto&& fn, const std::string& what) {
        auto f = build_frame(s);
        fn(f);
        expect_malformed(f.bytes, what);
    };
    const FrameSpec v4 = udp_from(kV4);
    const FrameSpec v4tcp = tcp_from(kV4, 80, true);
    const FrameSpec v6 = udp_from(kV6);
    mutate(v4, [](Frame& f) { f.bytes[f.l3_offset] = 0x44; }, "IHL 4");
    mutate(v4, [](Frame& f) { f.bytes[f.l3_offset] = 0x65; }, "version 6 in an IPv4 frame");
    mutate(v4, [](Frame& f) { f.bytes[f.l3_offset] = 0x4f; }, "IHL 15 beyond the frame");
    mutate(v4, [](Frame& f) { f.bytes[f.l3_offset + 2] = 0; f.bytes[f.l3_offset + 3] = 10; }, "total length < IHL");
    mutate(v4, [](Frame& f) { f.bytes[f.l3_offset + 2] = 0x05; }, "total length beyond the frame");
    mutate(v4, [](Frame& f) { f.bytes[f.l4_offset + 4] = 0; f.bytes[f.l4_offset + 5] = 4; }, "UDP length < 8");
    mutate(v4, [](Frame& f) { f.bytes[f.l4_offset + 4] = 0x04; }, "UDP length beyond the datagram");
    mutate(v4tcp, [](Frame& f) { f.bytes[f.l4_offset + 12] = 0x40; }, "TCP data offset 4");
    mutate(v4tcp, [](Frame& f) { f.bytes[f.l4_offset + 12] = 0xf0; }, "TCP data offset beyond the segment");
    mutate(v6, [](Frame& f) { f.bytes[f.l3_offset] = 0x40; }, "version 4 in an IPv6 frame");
    mutate(v6, [](Frame& f) { f.bytes[f.l3_offset + 4] = 0x04; }, "payload length beyond the frame");
    mutate(v6, [](Frame& f) { f.bytes[f.l3_offset + 4] = 0; f.bytes[f.l3_offset + 5] = 4; },
           "payload shorter than the UDP header");
    FrameSpec ext = udp_from(kV6);
    ext.ipv6_ext_headers = {net::kIpv6HopByHop};
    mutate(ext, [](Frame& f) { f.bytes[f.l3_offset + 41] = 200; }, "extension header length beyond the payload");
    FrameSpec chain = udp_from(kV6);
    chain.ipv6_ext_headers = std::vector<std::uint8_t>(7, net::kIpv6DestOpts);
    expect_malformed(build_frame(chain).bytes, "extension chain longer than the bounded walk");
}

TEST_F(ParserTest, EthernetPaddingIsNotMalformed) {
    deny_test_sources(true);
    auto f = build_frame(udp_from(kV4));
    f.bytes.resize(f.bytes.size() + 20, 0);  // padded beyond the IP total length
    const auto before = count(RL_REASON_DENY, RL_VERDICT_DROP);
    EXPECT_EQ(run_bytes(f.bytes), XDP_DROP);
    EXPECT_EQ(count(RL_REASON_DENY, RL_VERDICT_DROP), before + 1);
}

TEST_F(ParserTest, MalformedPassesByDefault) {
    deny_test_sources(false);
    auto f = build_frame(udp_from(kV4));
    f.bytes.resize(f.l3_offset + 10);
    EXPECT_EQ(run_bytes(f.bytes), XDP_PASS);
    EXPECT_EQ(count(RL_REASON_MALFORMED, RL_VERDICT_PASS), 1U);
    EXPECT_EQ(count(RL_REASON_MALFORMED, RL_VERDICT_DROP), 0U);
}

TEST_F(ParserTest, DryRunPassesMalformedFramesItWouldDrop) {
    auto p = limited_policy(0, 0);
    p.drop_malformed = true;
    p.dry_run = true;
    apply(p);
    auto f = build_frame(udp_from(kV4));
    f.bytes.resize(f.l3_offset + 10);
    EXPECT_EQ(run_bytes(f.bytes), XDP_PASS);
    EXPECT_EQ(count(RL_REASON_MALFORMED, RL_VERDICT_PASS), 1U) << "counted under its reason";
    EXPECT_EQ(count(RL_REASON_MALFORMED, RL_VERDICT_DROP), 0U);
}

}  // namespace
}  // namespace rlgate::testing
