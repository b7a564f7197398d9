// SPDX-License-Identifier: BSD-2-Clause
// Stable names of the dataplane's enums, as shown by rlctl and used in JSON
// field values (documented in docs/rlctl.md): never rename one.
#pragma once

#include <cstdint>
#include <string_view>

#include "rlgate/abi.h"

namespace rlgate::stats {

constexpr std::string_view reason_name(std::uint32_t r) {
    switch (r) {
    case RL_REASON_WITHIN_LIMIT: return "within_limit";
    case RL_REASON_ALLOW: return "allow";
    case RL_REASON_NON_IP: return "non_ip";
    case RL_REASON_MALFORMED: return "malformed";
    case RL_REASON_DENY: return "deny";
    case RL_REASON_BAN: return "ban";
    case RL_REASON_RATE: return "rate";
    case RL_REASON_GLOBAL: return "global";
    case RL_REASON_MAP_FULL: return "map_full";
    default: return "unknown";
    }
}

constexpr std::string_view verdict_name(std::uint32_t v) { return v == RL_VERDICT_DROP ? "drop" : "pass"; }

constexpr std::string_view health_name(std::uint32_t h) {
    switch (h) {
    case RL_HEALTH_BUCKET_INSERTS: return "bucket_inserts";
    case RL_HEALTH_BUCKET_EVICTIONS: return "bucket_evictions";
    case RL_HEALTH_CAS_RETRY: return "cas_retries";
    case RL_HEALTH_CAS_EXHAUSTED: return "cas_exhausted";
    case RL_HEALTH_RECLASSIFY: return "reclassifications";
    case RL_HEALTH_AUTOBAN: return "autobans";
    case RL_HEALTH_AUTOBAN_FAIL: return "autoban_failures";
    case RL_HEALTH_EVENTS_SENT: return "events_sent";
    case RL_HEALTH_EVENTS_SUPPRESSED: return "events_suppressed";
    case RL_HEALTH_BUCKET_EVICTIONS_OWING: return "bucket_evictions_owing";
    case RL_HEALTH_FIRST_PACKETS: return "first_packets";
    default: return "unknown";
    }
}

constexpr std::string_view origin_name(std::uint32_t o) {
    switch (o) {
    case RL_ORIGIN_MANUAL: return "manual";
    case RL_ORIGIN_KERNEL: return "kernel";
    case RL_ORIGIN_L7: return "l7";
    case RL_ORIGIN_PEER: return "peer";
    default: return "unknown";
    }
}

}  // namespace rlgate::stats
