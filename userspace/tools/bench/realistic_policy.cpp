// SPDX-License-Identifier: BSD-2-Clause
#include "realistic_policy.hpp"

#include <random>
#include <set>
#include <utility>

namespace rlgate::bench {

policy::Policy realistic_policy(std::size_t prefixes) {
    using policy::RuleProtocol;
    policy::Policy p;
    p.tiers.push_back({.name = "default", .limit = {.packets_per_sec = 100, .burst_packets = 200},
                       .autoban = {.drops = 10'000, .window_ns = 10'000'000'000ULL, .ban_ns = 60'000'000'000ULL}});
    p.tiers.push_back({.name = "premium", .limit = {.packets_per_sec = 10'000, .burst_packets = 20'000}});
    p.tiers.push_back({.name = "carrier-nat", .limit = {.packets_per_sec = 5'000, .burst_packets = 10'000},
                       .prefix_v4 = 24, .prefix_v6 = 48});
    p.tiers.push_back({.name = "internal", .limit = {.packets_per_sec = 1'000'000'000, .burst_packets = 1'000'000'000}});
    p.tiers.push_back({.name = "strict", .limit = {.packets_per_sec = 1, .burst_packets = 1}});
    p.default_tier = "default";
    p.rules.push_back({.name = "ssh-syn", .protocol = RuleProtocol::tcp, .port_first = 22, .port_last = 22,
                       .syn_only = true, .limit = {.packets_per_sec = 5, .burst_packets = 10}});
    p.rules.push_back({.name = "dns", .protocol = RuleProtocol::udp, .port_first = 53, .port_last = 53,
                       .limit = {.packets_per_sec = 50, .burst_packets = 100}});
    p.rules.push_back({.name = "web-syn", .protocol = RuleProtocol::tcp, .port_first = 80, .port_last = 443,
                       .syn_only = true, .limit = {.packets_per_sec = 100, .burst_packets = 200}});
    p.rules.push_back({.name = "icmp", .protocol = RuleProtocol::other,
                       .limit = {.packets_per_sec = 10, .burst_packets = 20}});
    p.global = {.packets_per_sec = 1'000'000'000, .burst_packets = 100'000'000};

    p.members.push_back({*net::Cidr::parse("192.0.2.0/25"), "internal"});
    p.members.push_back({*net::Cidr::parse("192.0.2.128/25"), "strict"});
    p.members.push_back({*net::Cidr::parse("2001:db8:10::/48"), "internal"});

    // Deterministic filler: allow /32s, deny /24s, tier prefixes of mixed
    // lengths, a tenth of them IPv6, in ranges the scenarios never use.
    std::mt19937 engine(42);
    auto rng = [&] { return static_cast<std::uint32_t>(engine()); };
    const char* tiers[] = {"premium", "carrier-nat", "strict", "default"};
    auto v4 = [&](std::uint32_t base, std::uint32_t span, unsigned len) {
        const std::uint32_t a = (base + rng() % span) & (len ? ~0U << (32 - len) : 0U);
        net::Cidr c;
        c.address = net::IpAddress::from_v4(a);
        c.prefix = len;
        return c;
    };
    auto v6 = [&](unsigned len) {
        net::Cidr c;
        c.address = *net::IpAddress::parse("2a00::");
        for (std::size_t i = 2; i < len / 8; ++i)
            c.address.bytes[i] = static_cast<std::uint8_t>(rng());
        c.prefix = len;
        return c;
    };
    std::set<std::pair<net::IpAddress, unsigned>> seen;
    auto fresh = [&](const net::Cidr& c) { return seen.emplace(c.address, c.prefix).second; };
    for (std::size_t i = 0; seen.size() < prefixes; ++i) {
        switch (i % 10) {
        case 0:
        case 1:
            if (auto c = v4(0x0a000000, 1U << 24, 32); fresh(c))  // 10/8
                p.allow.push_back(c);
            break;
        case 2:
        case 3:
            if (auto c = v4(0x64400000, 1U << 22, 24); fresh(c))  // 100.64/10
                p.deny.push_back(c);
            break;
        case 4:
            if (auto c = v6(48 + (rng() % 3) * 8); fresh(c))
                p.members.push_back({c, tiers[rng() % 4]});
            break;
        default:
            if (auto c = v4(0x14000000, 1U << 26, 16 + rng() % 13); fresh(c))  // 20/6
                p.members.push_back({c, tiers[rng() % 4]});
        }
    }
    return p;
}

}  // namespace rlgate::bench
