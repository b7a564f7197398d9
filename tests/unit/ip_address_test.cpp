// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <string>

#include "core/net/ip_address.hpp"

using rlgate::net::Cidr;
using rlgate::net::IpAddress;

TEST(IpAddress, ParsesBothFamiliesIntoMappedForm) {
    auto v4 = IpAddress::parse("192.0.2.7");
    ASSERT_TRUE(v4);
    EXPECT_TRUE(v4->v4);
    EXPECT_EQ(v4->bytes[10], 0xff);
    EXPECT_EQ(v4->bytes[15], 7);
    EXPECT_EQ(v4->to_string(), "192.0.2.7");
    EXPECT_EQ(v4->v4_host_order(), 0xC0000207U);
    auto v6 = IpAddress::parse("2001:db8::1");
    ASSERT_TRUE(v6);
    EXPECT_FALSE(v6->v4);
    EXPECT_EQ(v6->to_string(), "2001:db8::1");
    EXPECT_FALSE(IpAddress::parse("300.1.1.1"));
    EXPECT_FALSE(IpAddress::parse("example.com"));
    EXPECT_FALSE(IpAddress::parse(""));
}

// IPv4 is formatted by hand (inet_ntop's sprintf was 2 % of rlgate-l7's time):
// the same text as inet_ntop for every value of each octet.
TEST(IpAddress, FormatsIpv4ExactlyAsInetNtop) {
    for (unsigned v = 0; v < 256; ++v) {
        for (const std::uint32_t host : {v << 24, v << 16 | 0x01000001U, v << 8 | 0x0a000000U, v | 0xfffefd00U, v * 0x01010101U}) {
            const auto a = IpAddress::from_v4(host);
            const std::uint32_t net = htonl(host);
            char expected[INET_ADDRSTRLEN] = {};
            ASSERT_NE(inet_ntop(AF_INET, &net, expected, sizeof expected), nullptr);
            EXPECT_EQ(a.to_string(), expected) << host;
        }
    }
}

TEST(Cidr, ParsesAndValidates) {
    std::string err;
    auto c = Cidr::parse("10.0.0.0/8", &err);
    ASSERT_TRUE(c) << err;
    EXPECT_EQ(c->prefix, 8U);
    EXPECT_EQ(c->prefix128(), 104U);
    EXPECT_EQ(c->to_string(), "10.0.0.0/8");
    EXPECT_EQ(Cidr::parse("2001:db8::/32")->prefix128(), 32U);
    EXPECT_EQ(Cidr::parse("192.0.2.1")->prefix, 32U);

    EXPECT_FALSE(Cidr::parse("10.0.0.1/8", &err));
    EXPECT_NE(err.find("host bits"), std::string::npos);
    EXPECT_NE(err.find("10.0.0.0/8"), std::string::npos) << "suggests the network: " << err;
    EXPECT_FALSE(Cidr::parse("10.0.0.0/33", &err));
    EXPECT_NE(err.find("exceeds"), std::string::npos);
    EXPECT_FALSE(Cidr::parse("10.0.0.0/x", &err));
    EXPECT_FALSE(Cidr::parse("10.0.0.0/", &err));
    EXPECT_FALSE(Cidr::parse("nonsense/8", &err));
    EXPECT_TRUE(Cidr::parse("10.0.0.1/8", &err, true));
}

TEST(Cidr, Containment) {
    auto net = *Cidr::parse("10.1.0.0/16");
    EXPECT_TRUE(net.contains(*IpAddress::parse("10.1.200.3")));
    EXPECT_FALSE(net.contains(*IpAddress::parse("10.2.0.1")));
    EXPECT_FALSE(net.contains(*IpAddress::parse("::ffff:10.1.0.1"))) << "an IPv6-typed address never matches an IPv4 prefix";
    EXPECT_TRUE(net.contains(*Cidr::parse("10.1.2.0/24")));
    EXPECT_FALSE(net.contains(*Cidr::parse("10.0.0.0/8")));
    auto v6 = *Cidr::parse("2001:db8:1::/48");
    EXPECT_TRUE(v6.contains(*IpAddress::parse("2001:db8:1:ffff::1")));
    EXPECT_FALSE(v6.contains(*IpAddress::parse("2001:db8:2::1")));
    EXPECT_FALSE(v6.contains(*IpAddress::parse("10.1.0.1")));
}
