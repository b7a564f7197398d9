// SPDX-License-Identifier: BSD-2-Clause
// The daemon's configuration file (JSON with comments) validated into a typed
// model. Pure: takes the text, never opens files, so the same code checks
// `rlctl policy validate FILE` and the daemon's own reloads.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/json_reader.hpp"  // ConfigError
#include "core/config/redis_settings.hpp"
#include "core/policy/controller.hpp"
#include "core/policy/scaling.hpp"
#include "core/policy/policy.hpp"

namespace rlgate::config {

enum class AttachModeSetting { native, generic, automatic };

struct InterfaceConfig {
    std::string name;
    AttachModeSetting mode = AttachModeSetting::native;
    auto operator<=>(const InterfaceConfig&) const = default;
};

struct DaemonSettings {
    std::string pin_dir = "/sys/fs/bpf/rlgate";
    std::string socket_path = "/run/rlgate/rlgated.sock";
    std::string state_dir = "/var/lib/rlgate";
    std::string log_level = "info";  // trace|debug|info|warn|error
    // Narrow socket for rlgate-l7's abuse reports (only the `escalate` command).
    std::string escalation_socket = "/run/rlgate/escalate.sock";
    std::string escalation_group;  // group allowed besides root; empty: root only
};

// Bans made by the daemon: L7 reports, escalation history, violation log.
struct BanSettings {
    std::uint64_t l7_default_ttl_ns = 600'000'000'000ULL;
    std::uint64_t l7_max_ttl_ns = 3'600'000'000'000ULL;
    std::uint32_t l7_reports_per_sec = 10;  // per reporting peer
    std::uint32_t l7_burst = 50;
    std::string violation_log_format = "text";  // text | json (one JSON object per line)
    std::string violation_log_path;             // empty: the daemon's own log
    std::uint32_t history_max = 100'000;        // violations remembered
};

// Fleet mode: bans shared with the other rlgated hosts through Redis.
struct FleetSettings {
    bool enabled = false;          // a "fleet" object is present
    RedisSettings redis;           // standalone Redis (pub/sub and one hash)
    std::string host;              // this host's name in the fleet; empty: the machine's host name
    std::uint32_t publish_per_sec = 50;  // bans this host publishes; more are applied here only
    std::uint32_t publish_burst = 500;
    std::string key_file;          // shared secret: messages are signed and checked (HMAC-SHA256)
    std::uint32_t min_prefix_v4 = 16;  // broader peer bans are refused
    std::uint32_t min_prefix_v6 = 32;
    std::uint32_t apply_per_sec = 1000;  // peer bans applied here; more are dropped (counted)
    std::uint32_t apply_burst = 5000;
    bool operator==(const FleetSettings&) const = default;
};

// Adaptive limits: the controller's settings and the load levels it reacts to
// (each signal's "high": load 1.0). A signal left at 0 is not watched.
struct AdaptiveSettings {
    bool enabled = false;  // an "adaptive" object is present
    policy::ControllerSettings controller;
    double softirq_cpu = 0;          // share of a CPU in softirq (the busiest CPU), 0..1
    std::uint64_t pps = 0;           // packets/s of the busiest attached interface
    double map_fill = 0;             // rl_buckets entries / capacity, 0..1
    std::uint64_t l7_latency_ms = 0; // rlgate-l7's upstream latency (the slowest since its previous report)
    std::uint64_t l7_in_flight = 0;  // rlgate-l7's requests in flight
    bool operator==(const AdaptiveSettings&) const = default;
};

// Map sizes fix the pinned maps' layout: changing them needs `rlgated --cleanup`.
struct MapSizes {
    std::uint32_t buckets = 1U << 20;
    std::uint32_t classes = 65536;
    std::uint32_t bans = 65536;
    // A source gets its bucket at its second packet (rl_seen): spoofed
    // one-packet sources evict nothing. Not a size: a restart applies it.
    bool seen_filter = true;
};

struct EventBudget {
    std::uint32_t per_sec = 100;
    std::uint32_t burst = 100;
};

// The admin HTTP listener: /metrics, the JSON API and the dashboard.
struct AdminSettings {
    std::string listen = "127.0.0.1:9477";  // host:port; empty: off; port 0: any free port
    std::string token;                        // bearer token; required when not on loopback
    std::uint32_t max_connections = 64;
};

enum class AlertType { drop_ratio, ban_rate, map_fill, repeat_offender, program_detached, l7_redis_down, fleet_redis_down };

struct AlertRule {
    std::string name;
    AlertType type = AlertType::drop_ratio;
    double above = 0;        // fires when the value exceeds this ...
    double clear_below = 0;  // ... and clears below this (hysteresis; default: `above`)
    std::uint64_t for_ns = 0;                     // ... for this long, both ways (0: at once)
    std::uint64_t window_ns = 60'000'000'000ULL;  // the value is measured over this window
    std::string map;  // map_fill: rl_buckets | rl_bans | rl_class
    bool operator==(const AlertRule&) const = default;
};

struct Webhook {
    std::string host;  // http only: a local relay handles TLS
    std::uint16_t port = 80;
    std::string path = "/";
    std::string url;
    std::uint64_t timeout_ns = 5'000'000'000ULL;
    bool operator==(const Webhook&) const = default;
};

struct AlertSettings {
    std::vector<AlertRule> rules;
    std::vector<Webhook> webhooks;
    std::uint32_t queue = 1000;  // notifications waiting per webhook; the oldest go first when full
    std::uint64_t max_backoff_ns = 60'000'000'000ULL;
};

struct Config {
    std::vector<InterfaceConfig> interfaces;
    DaemonSettings daemon;
    MapSizes maps;
    EventBudget events;
    BanSettings bans;
    AdminSettings admin;
    AlertSettings alerts;
    FleetSettings fleet;
    AdaptiveSettings adaptive;
    std::map<std::string, double> emergency;     // tier -> factor in emergency mode (rlctl emergency on)
    std::vector<policy::Override> schedule;      // scheduled overrides (origin "schedule")
    policy::Policy policy;
};

const char* to_string(AlertType t);
// "http://host:port/path" -> Webhook; nullopt with `error` set otherwise.
std::optional<Webhook> parse_webhook_url(std::string_view url, std::string* error);


// Parses and validates; `file` only names the source in errors. The policy
// part is also compiled once, so a config that parses is one the dataplane
// accepts.
Config parse_config(std::string_view text, const std::string& file);

// "250ms", "10s", "5m", "2h", "1d" -> nanoseconds; nullopt on bad input.
std::optional<std::uint64_t> parse_duration_ns(std::string_view text);

// "1500", "64k", "10M", "1G" (powers of 1000 — rates are decimal), with an
// optional "B"/"b" unit suffix ignored; nullopt on bad input or overflow.
std::optional<std::uint64_t> parse_quantity(std::string_view text);

}  // namespace rlgate::config
