// SPDX-License-Identifier: BSD-2-Clause
// The client address of an HTTP request: the peer's, unless the peer is a
// trusted proxy, in which case X-Forwarded-For / Forwarded are walked from
// the right, past trusted proxies, to the first address nobody we trust
// added. A spoofed header from an untrusted peer is ignored. Pure.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "core/net/ip_address.hpp"

namespace rlgate::l7 {

net::IpAddress client_ip(const net::IpAddress& peer, std::string_view x_forwarded_for, std::string_view forwarded,
                         std::span<const net::Cidr> trusted_proxies);

}  // namespace rlgate::l7
