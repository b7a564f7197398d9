// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include "core/net/frame.hpp"

using namespace rlgate::net;

namespace {
std::uint16_t rd16(const std::vector<std::uint8_t>& b, std::size_t at) {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}
}  // namespace

TEST(Frame, Ipv4UdpHasValidChecksums) {
    FrameSpec s;
    s.vlan_tpids = {kTpid8021AD, kTpid8021Q};
    s.ipv4_option_words = 2;
    auto f = build_frame(s);
    EXPECT_EQ(f.l3_offset, 14U + 8U);
    EXPECT_EQ(f.l4_offset, f.l3_offset + 28U);
    // A valid header sums to 0xffff including its checksum.
    EXPECT_EQ(ones_complement_sum(&f.bytes[f.l3_offset], 28), 0xffff);
    EXPECT_EQ(rd16(f.bytes, f.l3_offset + 2), 28U + 8U + 18U);
    EXPECT_EQ(rd16(f.bytes, f.l4_offset + 2), 53U);
}

TEST(Frame, TcpChecksumVerifiesWithPseudoHeader) {
    for (bool v6 : {false, true}) {
        FrameSpec s;
        if (v6) {
            s.src = *IpAddress::parse("2001:db8::1");
            s.dst = *IpAddress::parse("2001:db8::2");
        }
        s.protocol = kProtoTcp;
        s.syn = true;
        auto f = build_frame(s);
        const std::size_t l4_len = f.bytes.size() - f.l4_offset;
        std::uint32_t pseudo = 0;
        for (std::size_t i = v6 ? 0 : 12; i < 16; i += 2) {
            pseudo += static_cast<std::uint32_t>((s.src.bytes[i] << 8) | s.src.bytes[i + 1]);
            pseudo += static_cast<std::uint32_t>((s.dst.bytes[i] << 8) | s.dst.bytes[i + 1]);
        }
        pseudo += kProtoTcp + static_cast<std::uint32_t>(l4_len);
        EXPECT_EQ(ones_complement_sum(&f.bytes[f.l4_offset], l4_len, pseudo), 0xffff) << "v6=" << v6;
        EXPECT_EQ(f.bytes[f.l4_offset + 13], 0x02);
    }
}

TEST(Frame, Ipv6ExtensionHeadersChain) {
    FrameSpec s;
    s.src = *IpAddress::parse("2001:db8::1");
    s.dst = *IpAddress::parse("2001:db8::2");
    s.ipv6_ext_headers = {kIpv6HopByHop, kIpv6Routing, kIpv6Fragment, kIpv6DestOpts};
    auto f = build_frame(s);
    EXPECT_EQ(f.bytes[f.l3_offset + 6], kIpv6HopByHop);
    EXPECT_EQ(f.bytes[f.l3_offset + 40], kIpv6Routing);
    EXPECT_EQ(f.bytes[f.l3_offset + 48], kIpv6Fragment);
    EXPECT_EQ(f.bytes[f.l3_offset + 56], kIpv6DestOpts);
    EXPECT_EQ(f.bytes[f.l3_offset + 64], kProtoUdp);
    EXPECT_EQ(f.l4_offset, f.l3_offset + 72);
    EXPECT_EQ(rd16(f.bytes, f.l3_offset + 4), 32U + 8U + 18U);
}

TEST(Frame, NonFirstFragmentHasNoL4Header) {
    FrameSpec s;
    s.fragment_offset = 10;
    auto f = build_frame(s);
    EXPECT_EQ(f.l4_header_len, 0U);
    EXPECT_EQ(rd16(f.bytes, f.l3_offset + 6) & 0x1fff, 10);
}

TEST(Frame, RefusesMixedFamilies) {
    FrameSpec s;
    s.dst = *IpAddress::parse("2001:db8::2");
    EXPECT_THROW(build_frame(s), std::invalid_argument);
}
