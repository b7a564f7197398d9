// SPDX-License-Identifier: BSD-2-Clause
// Addresses, CIDRs, durations and quantities: parse what parses, and what
// parses prints back to something that parses to the same value.
#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/config/config.hpp"
#include "core/net/ip_address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    using namespace rlgate;
    if (auto a = net::IpAddress::parse(text)) {
        auto again = net::IpAddress::parse(a->to_string());
        if (!again || !(*again == *a))
            __builtin_trap();
        char expected[INET6_ADDRSTRLEN] = {};  // IPv4 is formatted by hand: as inet_ntop would
        if (a->v4 && (!inet_ntop(AF_INET, &a->bytes[12], expected, sizeof expected) || a->to_string() != expected))
            __builtin_trap();
    }
    for (bool host_bits : {false, true}) {
        std::string error;
        if (auto c = net::Cidr::parse(text, &error, host_bits)) {
            auto again = net::Cidr::parse(c->to_string());
            if (!again || !(*again == *c) || !c->contains(c->address))
                __builtin_trap();
        }
    }
    (void)config::parse_duration_ns(text);
    (void)config::parse_quantity(text);
    return 0;
}
