// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/client_ip.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace rlgate::l7 {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool trusted(const net::IpAddress& a, std::span<const net::Cidr> proxies) {
    return std::any_of(proxies.begin(), proxies.end(), [&](const net::Cidr& c) { return c.contains(a); });
}

// "1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:443", "2001:db8::1"
std::optional<net::IpAddress> parse_node(std::string_view s) {
    s = trim(s);
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"')
        s = s.substr(1, s.size() - 2);
    if (s.starts_with('[')) {
        const auto close = s.find(']');
        return close == std::string_view::npos ? std::nullopt : net::IpAddress::parse(s.substr(1, close - 1));
    }
    if (std::count(s.begin(), s.end(), ':') == 1)
        s = s.substr(0, s.find(':'));
    return net::IpAddress::parse(s);
}

// Addresses of the chain, left (client side) to right (nearest proxy).
std::vector<std::optional<net::IpAddress>> from_xff(std::string_view h) {
    std::vector<std::optional<net::IpAddress>> out;
    while (!h.empty()) {
        const auto comma = h.find(',');
        out.push_back(parse_node(h.substr(0, comma)));
        h = comma == std::string_view::npos ? std::string_view{} : h.substr(comma + 1);
    }
    return out;
}

std::vector<std::optional<net::IpAddress>> from_forwarded(std::string_view h) {
    std::vector<std::optional<net::IpAddress>> out;
    while (!h.empty()) {
        const auto comma = h.find(',');
        auto element = h.substr(0, comma);
        std::optional<net::IpAddress> node;
        bool has_for = false;
        while (!element.empty()) {
            const auto semi = element.find(';');
            const auto pair = trim(element.substr(0, semi));
            if (pair.size() > 4 && (pair.substr(0, 4) == "for=" || pair.substr(0, 4) == "For=" || pair.substr(0, 4) == "FOR=")) {
                has_for = true;
                node = parse_node(pair.substr(4));
            }
            element = semi == std::string_view::npos ? std::string_view{} : element.substr(semi + 1);
        }
        if (has_for)
            out.push_back(node);
        h = comma == std::string_view::npos ? std::string_view{} : h.substr(comma + 1);
    }
    return out;
}

}  // namespace

// "::ffff:192.0.2.1" (a dual-stack proxy's view of an IPv4 client) is 192.0.2.1.
net::IpAddress unmapped(const net::IpAddress& a) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a.v4 || !std::equal(std::begin(kMapped), std::end(kMapped), a.bytes.begin()))
        return a;
    const std::uint8_t v4[4] = {a.bytes[12], a.bytes[13], a.bytes[14], a.bytes[15]};
    return net::IpAddress::from_v4_bytes(v4);
}

net::IpAddress client_ip(const net::IpAddress& peer_in, std::string_view x_forwarded_for, std::string_view forwarded,
                         std::span<const net::Cidr> trusted_proxies) {
    const net::IpAddress peer = unmapped(peer_in);
    if (!trusted(peer, trusted_proxies))
        return peer;  // whatever it claims, an untrusted peer is the client
    const auto chain = !forwarded.empty() ? from_forwarded(forwarded) : from_xff(x_forwarded_for);
    net::IpAddress client = peer;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        if (!*it)
            return client;  // garbage ("unknown", obfuscated): stop at the last address we could trust
        client = unmapped(**it);
        if (!trusted(client, trusted_proxies))
            return client;
    }
    return client;
}

}  // namespace rlgate::l7
