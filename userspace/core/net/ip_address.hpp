// SPDX-License-Identifier: BSD-2-Clause
// IPv4/IPv6 addresses and CIDR prefixes in the dataplane's representation:
// 16 bytes, IPv4 mapped into ::ffff:0:0/96. Pure value types, no I/O.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rlgate::net {

struct IpAddress {
    std::array<std::uint8_t, 16> bytes{};
    bool v4 = false;

    static std::optional<IpAddress> parse(std::string_view text);
    static IpAddress from_v4(std::uint32_t host_order);
    static IpAddress from_v4_bytes(const std::uint8_t (&b)[4]);

    [[nodiscard]] std::string to_string() const;
    [[nodiscard]] std::uint32_t v4_host_order() const;
    // Bits of this address family: 32 or 128.
    [[nodiscard]] unsigned family_bits() const { return v4 ? 32U : 128U; }

    auto operator<=>(const IpAddress&) const = default;
};

// Address with the first `prefix128` bits kept (prefix in the 128-bit space).
IpAddress mask_address(const IpAddress& addr, unsigned prefix128);

struct Cidr {
    IpAddress address;  // already masked
    unsigned prefix = 0;  // in the family's own bits: /24 for IPv4, /64 for IPv6

    // "10.0.0.0/8", "2001:db8::/32", or a bare address (= /32 or /128).
    // Host bits set are refused ("10.0.0.1/8") unless `allow_host_bits`.
    static std::optional<Cidr> parse(std::string_view text, std::string* error = nullptr,
                                     bool allow_host_bits = false);

    [[nodiscard]] unsigned prefix128() const { return address.v4 ? prefix + 96U : prefix; }
    [[nodiscard]] bool contains(const IpAddress& a) const;
    [[nodiscard]] bool contains(const Cidr& inner) const;
    [[nodiscard]] std::string to_string() const;

    auto operator<=>(const Cidr&) const = default;
};

}  // namespace rlgate::net
