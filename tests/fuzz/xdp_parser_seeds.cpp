// SPDX-License-Identifier: BSD-2-Clause
// Writes the seed inputs of fuzz_xdp_parser into a directory: one control
// byte (bit 0: fix up the IP length field; see fuzz_xdp_parser.cpp), then an
// Ethernet frame from core/net/frame.
//   cmake --build build/fuzz --target xdp_parser_seeds
//   build/fuzz/xdp_parser_seeds tests/fuzz/corpus/xdp_parser
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/net/frame.hpp"

namespace {

using namespace rlgate::net;

FrameSpec spec(const char* src, std::uint8_t proto, std::uint16_t dport) {
    FrameSpec s;
    s.src = *IpAddress::parse(src);
    s.dst = *IpAddress::parse(s.src.v4 ? "198.51.100.1" : "2001:db8:ffff::1");
    s.protocol = proto;
    s.dport = dport;
    return s;
}

std::string dir;

void write(const std::string& name, const std::vector<std::uint8_t>& frame, std::uint8_t control = 0) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.put(static_cast<char>(control));
    out.write(reinterpret_cast<const char*>(frame.data()), static_cast<std::streamsize>(frame.size()));
    if (!out)
        std::perror(name.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];

    write("v4-udp-dns", build_frame(spec("198.51.100.20", kProtoUdp, 53)).bytes);
    write("v4-udp-allowed", build_frame(spec("192.0.2.10", kProtoUdp, 123)).bytes);
    write("v4-udp-allowed-over-deny", build_frame(spec("192.0.2.66", kProtoUdp, 123)).bytes);
    write("v4-udp-traceroute-t1", build_frame(spec("10.9.9.9", kProtoUdp, 33434)).bytes);
    write("v4-icmp-allowed-in-t1", build_frame(spec("10.1.2.3", kProtoIcmp, 0)).bytes);

    auto syn = spec("203.0.113.5", kProtoTcp, 22);
    syn.syn = true;
    syn.ipv4_option_words = 3;
    write("v4-options-tcp-syn-t1", build_frame(syn).bytes);

    auto first = spec("198.51.100.20", kProtoUdp, 53);
    first.more_fragments = true;
    write("v4-first-fragment", build_frame(first).bytes);
    auto later = spec("198.51.100.7", kProtoUdp, 53);
    later.fragment_offset = 185;
    write("v4-later-fragment-denied", build_frame(later).bytes);

    auto tagged = spec("203.0.113.99", kProtoTcp, 443);
    tagged.ack = true;
    tagged.vlan_tpids = {kTpid8021Q};
    write("vlan-v4-tcp-denied-in-t1", build_frame(tagged).bytes);

    auto qinq = spec("2001:db8:b::1", kProtoUdp, 53);
    qinq.vlan_tpids = {kTpid8021AD, kTpid8021Q};
    write("qinq-v6-udp-t1", build_frame(qinq).bytes);

    auto three = spec("198.51.100.20", kProtoUdp, 53);
    three.vlan_tpids = {kTpid8021AD, kTpid8021Q, kTpid8021Q};
    write("three-vlan-tags", build_frame(three).bytes);

    auto ext = spec("2001:db8:d::5", kProtoTcp, 80);
    ext.syn = true;
    ext.ipv6_ext_headers = {kIpv6HopByHop, kIpv6Routing, kIpv6DestOpts, kIpv6Fragment};
    write("v6-ext-tcp-syn-denied", build_frame(ext).bytes);

    auto five = spec("2001:db8:1::5", kProtoUdp, 33500);
    five.ipv6_ext_headers = {kIpv6HopByHop, kIpv6DestOpts, kIpv6Routing, kIpv6DestOpts, kIpv6Fragment};
    write("v6-five-ext-headers", build_frame(five).bytes);

    // As many extension headers as the program walks (6), then one more: the
    // first parses (bpf/parse.h took only 5 until fuzz_xdp_parser found it), the second is malformed.
    auto six = spec("2001:db8:d::6", kProtoUdp, 53);
    six.ipv6_ext_headers = {kIpv6HopByHop, kIpv6DestOpts, kIpv6Routing, kIpv6Fragment, kIpv6DestOpts, kIpv6DestOpts};
    write("v6-six-ext-headers", build_frame(six).bytes);
    six.ipv6_ext_headers.push_back(kIpv6DestOpts);
    write("v6-seven-ext-headers", build_frame(six).bytes);

    // AH (next header 51, length in 4-byte units minus 2: 0 = 8 bytes) before UDP.
    auto ah = spec("2001:db8:1::6", kProtoUdp, 53);
    ah.ipv6_ext_headers = {kIpv6DestOpts};
    Frame ahf = build_frame(ah);
    ahf.bytes[ahf.l3_offset + 6] = 51;
    ahf.bytes[ahf.l3_offset + 41] = 0;
    write("v6-ah-udp", ahf.bytes);

    auto v6later = spec("2001:db8:9::1", kProtoUdp, 53);
    v6later.ipv6_ext_headers = {kIpv6HopByHop, kIpv6Fragment};
    v6later.fragment_offset = 100;
    write("v6-later-fragment", build_frame(v6later).bytes);

    write("v6-icmp-allowed-over-deny", build_frame(spec("2001:db8:a:1::1", kProtoIcmpV6, 0)).bytes);

    auto padded = build_frame(spec("198.51.100.20", kProtoUdp, 53));
    padded.bytes.resize(padded.bytes.size() + 20, 0);
    write("v4-ethernet-padding", padded.bytes);

    auto arp = build_frame(spec("198.51.100.20", kProtoUdp, 53)).bytes;
    arp[12] = 0x08;
    arp[13] = 0x06;
    arp.resize(42);
    write("arp", arp);

    auto cut = build_frame(syn);
    cut.bytes.resize(cut.l4_offset + 12);
    write("v4-tcp-truncated", cut.bytes);
    auto cut6 = build_frame(ext);
    cut6.bytes.resize(cut6.l3_offset + 40 + 13);
    write("v6-ext-truncated", cut6.bytes);

    // A payload length that does not match, with the fix-up bit set.
    auto wrong = build_frame(spec("2001:db8:b::7", kProtoTcp, 8080));
    wrong.bytes[wrong.l3_offset + 4] = 0x7f;
    write("v6-tcp-length-fixed-up", wrong.bytes, 1);
    return 0;
}
