// SPDX-License-Identifier: BSD-2-Clause
#include "core/net/frame.hpp"

#include <stdexcept>

namespace rlgate::net {
namespace {

void put16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 8);
    b[at + 1] = static_cast<std::uint8_t>(v);
}

std::uint16_t checksum(const std::uint8_t* data, std::size_t len, std::uint32_t initial = 0) {
    return static_cast<std::uint16_t>(~ones_complement_sum(data, len, initial));
}

std::uint32_t pseudo_header_sum(const FrameSpec& s, std::uint8_t proto, std::size_t l4_len) {
    std::uint32_t sum = 0;
    auto add_addr = [&](const IpAddress& a) {
        const std::size_t from = s.src.v4 ? 12 : 0;
        for (std::size_t i = from; i < 16; i += 2)
            sum += (std::uint32_t{a.bytes[i]} << 8) | a.bytes[i + 1];
    };
    add_addr(s.src);
    add_addr(s.dst);
    sum += proto;
    sum += static_cast<std::uint32_t>(l4_len & 0xffff);
    sum += static_cast<std::uint32_t>(l4_len >> 16);
    return sum;
}

std::size_t l4_header_len(std::uint8_t proto) {
    switch (proto) {
    case kProtoTcp: return 20;
    case kProtoUdp: return 8;
    case kProtoIcmp:
    case kProtoIcmpV6: return 8;
    default: return 0;
    }
}

}  // namespace

std::uint16_t ones_complement_sum(const std::uint8_t* data, std::size_t len, std::uint32_t initial) {
    std::uint64_t sum = initial;
    for (std::size_t i = 0; i + 1 < len; i += 2)
        sum += (std::uint32_t{data[i]} << 8) | data[i + 1];
    if (len & 1)
        sum += std::uint32_t{data[len - 1]} << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

Frame build_frame(const FrameSpec& s) {
    if (s.src.v4 != s.dst.v4)
        throw std::invalid_argument("build_frame: source and destination families differ");
    if (s.vlan_tpids.size() > 4)
        throw std::invalid_argument("build_frame: at most 4 VLAN tags");
    Frame f;
    auto& b = f.bytes;
    b.insert(b.end(), s.dst_mac.begin(), s.dst_mac.end());
    b.insert(b.end(), s.src_mac.begin(), s.src_mac.end());
    for (std::size_t i = 0; i < s.vlan_tpids.size(); ++i) {
        b.resize(b.size() + 4);
        put16(b, b.size() - 4, s.vlan_tpids[i]);
        put16(b, b.size() - 2, static_cast<std::uint16_t>(100 + i));
    }
    b.resize(b.size() + 2);
    put16(b, b.size() - 2, s.src.v4 ? 0x0800 : 0x86DD);
    f.l3_offset = b.size();

    const bool has_l4 = s.fragment_offset == 0;
    const std::size_t l4_len_hdr = has_l4 ? l4_header_len(s.protocol) : 0;
    const std::size_t l4_total = l4_len_hdr + s.payload_bytes;

    if (s.src.v4) {
        const std::size_t ihl = 5 + s.ipv4_option_words;
        if (ihl > 15)
            throw std::invalid_argument("build_frame: too many IPv4 option words");
        const std::size_t hdr = ihl * 4;
        const std::size_t tot = hdr + l4_total;
        b.resize(f.l3_offset + hdr, 0x01 /* NOP option */);
        auto* ip = &b[f.l3_offset];
        ip[0] = static_cast<std::uint8_t>(0x40 | ihl);
        ip[1] = 0;
        put16(b, f.l3_offset + 2, static_cast<std::uint16_t>(tot));
        put16(b, f.l3_offset + 4, 0x1234);
        put16(b, f.l3_offset + 6,
              static_cast<std::uint16_t>((s.more_fragments ? 0x2000 : 0) | (s.fragment_offset & 0x1fff)));
        ip = &b[f.l3_offset];
        ip[8] = 64;
        ip[9] = s.protocol;
        ip[10] = ip[11] = 0;
        for (int i = 0; i < 4; ++i) {
            ip[12 + i] = s.src.bytes[12 + static_cast<std::size_t>(i)];
            ip[16 + i] = s.dst.bytes[12 + static_cast<std::size_t>(i)];
        }
        put16(b, f.l3_offset + 10, checksum(&b[f.l3_offset], hdr));
    } else {
        const std::size_t ext_len = 8 * s.ipv6_ext_headers.size();
        b.resize(f.l3_offset + 40 + ext_len, 0);
        auto* ip = &b[f.l3_offset];
        ip[0] = 0x60;
        put16(b, f.l3_offset + 4, static_cast<std::uint16_t>(ext_len + l4_total));
        ip = &b[f.l3_offset];
        ip[6] = s.ipv6_ext_headers.empty() ? s.protocol : s.ipv6_ext_headers.front();
        ip[7] = 64;
        for (std::size_t i = 0; i < 16; ++i) {
            ip[8 + i] = s.src.bytes[i];
            ip[24 + i] = s.dst.bytes[i];
        }
        for (std::size_t i = 0; i < s.ipv6_ext_headers.size(); ++i) {
            const std::size_t at = f.l3_offset + 40 + 8 * i;
            const std::uint8_t next =
                i + 1 < s.ipv6_ext_headers.size() ? s.ipv6_ext_headers[i + 1] : s.protocol;
            b[at] = next;
            if (s.ipv6_ext_headers[i] == kIpv6Fragment) {
                put16(b, at + 2,
                      static_cast<std::uint16_t>((s.fragment_offset << 3) | (s.more_fragments ? 1 : 0)));
            } else {
                b[at + 1] = 0;  // length in 8-byte units beyond the first 8
                b[at + 2] = 0x01;  // PadN covering the rest
                b[at + 3] = 4;
            }
        }
    }

    f.l4_offset = b.size();
    f.l4_header_len = l4_len_hdr;
    b.resize(b.size() + l4_total, 0);
    for (std::size_t i = 0; i < s.payload_bytes; ++i)
        b[f.l4_offset + l4_len_hdr + i] = static_cast<std::uint8_t>('a' + i % 26);
    if (has_l4) {
        const std::size_t o = f.l4_offset;
        switch (s.protocol) {
        case kProtoTcp:
            put16(b, o, s.sport);
            put16(b, o + 2, s.dport);
            put16(b, o + 4, 0x0102);  // sequence number
            b[o + 12] = 5 << 4;
            b[o + 13] = static_cast<std::uint8_t>((s.syn ? 0x02 : 0) | (s.ack ? 0x10 : 0));
            put16(b, o + 14, 65535);
            put16(b, o + 16, checksum(&b[o], l4_total, pseudo_header_sum(s, kProtoTcp, l4_total)));
            break;
        case kProtoUdp:
            put16(b, o, s.sport);
            put16(b, o + 2, s.dport);
            put16(b, o + 4, static_cast<std::uint16_t>(l4_total));
            {
                std::uint16_t c = checksum(&b[o], l4_total, pseudo_header_sum(s, kProtoUdp, l4_total));
                put16(b, o + 6, c == 0 ? 0xffff : c);
            }
            break;
        case kProtoIcmp:
        case kProtoIcmpV6:
            b[o] = s.protocol == kProtoIcmp ? 8 : 128;  // echo request
            put16(b, o + 4, 0x4242);
            put16(b, o + 6, 1);
            put16(b, o + 2,
                  s.protocol == kProtoIcmp
                      ? checksum(&b[o], l4_total)
                      : checksum(&b[o], l4_total, pseudo_header_sum(s, kProtoIcmpV6, l4_total)));
            break;
        default: break;
        }
    }
    return f;
}

}  // namespace rlgate::net
