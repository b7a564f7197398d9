// SPDX-License-Identifier: BSD-2-Clause
#include "core/net/ip_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace rlgate::net {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    std::string s(text);
    IpAddress a;
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        a.v4 = true;
        a.bytes[10] = 0xff;
        a.bytes[11] = 0xff;
        std::memcpy(&a.bytes[12], &v4, 4);
        return a;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        std::memcpy(a.bytes.data(), &v6, 16);
        return a;
    }
    return std::nullopt;
}

IpAddress IpAddress::from_v4(std::uint32_t host_order) {
    const std::uint8_t b[4] = {static_cast<std::uint8_t>(host_order >> 24),
                               static_cast<std::uint8_t>(host_order >> 16),
                               static_cast<std::uint8_t>(host_order >> 8),
                               static_cast<std::uint8_t>(host_order)};
    return from_v4_bytes(b);
}

IpAddress IpAddress::from_v4_bytes(const std::uint8_t (&b)[4]) {
    IpAddress a;
    a.v4 = true;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], b, 4);
    return a;
}

std::uint32_t IpAddress::v4_host_order() const {
    return (std::uint32_t{bytes[12]} << 24) | (std::uint32_t{bytes[13]} << 16) |
           (std::uint32_t{bytes[14]} << 8) | std::uint32_t{bytes[15]};
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (v4) {
        // By hand: glibc's inet_ntop formats IPv4 with sprintf, and the L7
        // limiter names every anonymous caller by its address.
        char* p = buf;
        for (int i = 12; i < 16; ++i) {
            p = std::to_chars(p, buf + sizeof buf, bytes[static_cast<std::size_t>(i)]).ptr;
            if (i < 15)
                *p++ = '.';
        }
        return std::string(buf, p);
    }
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

IpAddress mask_address(const IpAddress& addr, unsigned prefix128) {
    IpAddress out = addr;
    for (unsigned i = 0; i < 16; ++i) {
        const int bits = static_cast<int>(prefix128) - static_cast<int>(8 * i);
        if (bits >= 8)
            continue;
        out.bytes[i] = bits <= 0 ? std::uint8_t{0} : static_cast<std::uint8_t>(out.bytes[i] & (0xff << (8 - bits)));
    }
    return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text, std::string* error, bool allow_host_bits) {
    auto fail = [&](std::string why) -> std::optional<Cidr> {
        if (error)
            *error = std::move(why);
        return std::nullopt;
    };
    const auto slash = text.find('/');
    const auto addr_text = text.substr(0, slash);
    auto addr = IpAddress::parse(addr_text);
    if (!addr)
        return fail("'" + std::string(addr_text) + "' is not an IPv4 or IPv6 address");
    unsigned prefix = addr->family_bits();
    if (slash != std::string_view::npos) {
        const auto len_text = text.substr(slash + 1);
        unsigned value = 0;
        auto [ptr, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), value);
        if (ec != std::errc{} || ptr != len_text.data() + len_text.size() || len_text.empty())
            return fail("prefix length '" + std::string(len_text) + "' is not a number");
        if (value > addr->family_bits())
            return fail("prefix length /" + std::to_string(value) + " exceeds /" +
                        std::to_string(addr->family_bits()));
        prefix = value;
    }
    Cidr c;
    c.prefix = prefix;
    c.address = mask_address(*addr, addr->v4 ? prefix + 96 : prefix);
    c.address.v4 = addr->v4;
    if (!allow_host_bits && c.address != *addr)
        return fail("'" + std::string(text) + "' has host bits set; did you mean " + c.to_string() + "?");
    return c;
}

bool Cidr::contains(const IpAddress& a) const {
    if (a.v4 != address.v4)
        return false;
    auto m = mask_address(a, prefix128());
    m.v4 = a.v4;
    return m == address;
}

bool Cidr::contains(const Cidr& inner) const {
    return inner.address.v4 == address.v4 && inner.prefix >= prefix && contains(inner.address);
}

std::string Cidr::to_string() const {
    return address.to_string() + "/" + std::to_string(prefix);
}

}  // namespace rlgate::net
