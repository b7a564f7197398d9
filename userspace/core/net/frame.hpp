// SPDX-License-Identifier: BSD-2-Clause
// Builds Ethernet frames (VLAN, IPv4 options/fragments, IPv6 extension headers,
// TCP/UDP/ICMP) with correct checksums. Used by the BPF tests, the traffic
// generator and the benchmarks. Pure: bytes in, bytes out.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/net/ip_address.hpp"

namespace rlgate::net {

inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoIcmpV6 = 58;
inline constexpr std::uint8_t kIpv6HopByHop = 0;
inline constexpr std::uint8_t kIpv6Routing = 43;
inline constexpr std::uint8_t kIpv6Fragment = 44;
inline constexpr std::uint8_t kIpv6DestOpts = 60;
inline constexpr std::uint16_t kTpid8021Q = 0x8100;
inline constexpr std::uint16_t kTpid8021AD = 0x88A8;

struct FrameSpec {
    IpAddress src = *IpAddress::parse("192.0.2.1");
    IpAddress dst = *IpAddress::parse("198.51.100.1");
    std::uint8_t protocol = kProtoUdp;
    std::uint16_t sport = 40000;
    std::uint16_t dport = 53;
    bool syn = false;
    bool ack = false;
    std::vector<std::uint16_t> vlan_tpids;  // outermost first; VLAN id 100 + index
    std::size_t payload_bytes = 18;
    unsigned ipv4_option_words = 0;      // 32-bit words of NOP options (IHL = 5 + n)
    std::uint16_t fragment_offset = 0;   // 8-byte units; > 0 means no L4 header
    bool more_fragments = false;
    std::vector<std::uint8_t> ipv6_ext_headers;  // next-header values, 8 bytes each
    std::array<std::uint8_t, 6> src_mac{0x02, 0, 0, 0, 0, 0x01};
    std::array<std::uint8_t, 6> dst_mac{0x02, 0, 0, 0, 0, 0x02};
};

struct Frame {
    std::vector<std::uint8_t> bytes;
    std::size_t l3_offset = 0;  // start of the IP header
    std::size_t l4_offset = 0;  // start of the L4 header (== size when absent)
    std::size_t l4_header_len = 0;
};

Frame build_frame(const FrameSpec& spec);

// RFC 1071 one's-complement sum, folded, not inverted.
std::uint16_t ones_complement_sum(const std::uint8_t* data, std::size_t len, std::uint32_t initial = 0);

}  // namespace rlgate::net
