// SPDX-License-Identifier: BSD-2-Clause
// What rlgated hosts tell each other through Redis about bans, as one JSON
// object: published on the fleet channel, and (bans only) kept in the fleet
// hash under the prefix so a host that joins or reconnects later loads them.
//   {"v":1,"op":"ban","cidr":"203.0.113.0/24","host":"edge-1","origin":"kernel",
//    "reason":"...","at_ms":1764000000000,"expires_ms":1764000600000}
// expires_ms 0: until removed. Unix milliseconds: hosts convert them to their
// own kernel clock, so their clocks' skew shifts expiries by as much.
// With a fleet key (fleet.key_file), every message is "<HMAC-SHA256 in hex>."
// followed by the JSON, and a message without a valid MAC is refused: only
// hosts holding the key can ban. Pure: decode() accepts only what encode()
// makes, bounded in size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/net/ip_address.hpp"

namespace rlgate::bans {

inline constexpr std::size_t kFleetMessageMax = 2048;  // bytes; longer ones are refused
inline constexpr std::size_t kFleetReasonMax = 512;

struct FleetMessage {
    enum class Op { ban, unban };
    Op op = Op::ban;
    net::Cidr prefix;
    std::string host;    // who made it (never a peer: peers' bans are not republished)
    std::string origin;  // manual | kernel | l7 on that host
    std::string reason;
    std::int64_t at_ms = 0;
    std::int64_t expires_ms = 0;  // ban only; 0: until removed
    bool operator==(const FleetMessage&) const = default;
};

// `key` empty: no MAC.
std::string encode(const FleetMessage& m, std::string_view key = {});
// nullopt (and *error) for anything else: not JSON, another version, a bad CIDR, sizes,
// and, with a `key`, a missing or wrong MAC.
std::optional<FleetMessage> decode_fleet_message(std::string_view text, std::string* error, std::string_view key = {});

// Whether a host name is acceptable in the fleet (1-64 characters, no whitespace, quotes or braces).
bool valid_fleet_host(std::string_view host);

}  // namespace rlgate::bans
