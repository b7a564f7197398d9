// SPDX-License-Identifier: BSD-2-Clause
// How to reach Redis, as both config files write it (rlgate-l7's
// "store.redis", rlgated's "fleet.redis"): address or Cluster seeds, AUTH,
// TLS, key prefix, timeouts, connections. Pure: a password_file is only
// named here; whoever starts the client reads it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/json_reader.hpp"

namespace rlgate::config {

struct RedisSettings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    bool cluster = false;  // Redis Cluster: host:port is the first seed
    std::vector<std::pair<std::string, std::uint16_t>> seeds;  // more Cluster seeds
    std::string username, password;  // AUTH (ACL user optional)
    std::string password_file;       // absolute path, read when the client starts
    bool tls = false;
    std::string tls_ca_file, tls_server_name;
    std::string prefix = "rlgate:";  // every key starts with it
    std::int64_t connect_timeout_ns = 200'000'000;
    std::int64_t timeout_ns = 50'000'000;  // per call
    unsigned connections = 2;
    bool operator==(const RedisSettings&) const = default;
};

// The fields parse_redis_settings() reads; the caller checks for unknown ones.
inline constexpr std::array<std::string_view, 13> kRedisSettingsFields = {
    "address", "cluster", "seeds", "username", "password", "password_file", "tls", "tls_ca_file",
    "tls_server_name", "prefix", "connect_timeout", "timeout", "connections"};

RedisSettings parse_redis_settings(const JsonReader& reader, const Json& v, const std::string& path);

// "HOST:PORT" or "[V6]:PORT" with an IP address; fails through `reader`.
std::pair<std::string, std::uint16_t> parse_ip_port(const JsonReader& reader, const Json& v, const std::string& path);

// Strips the line end a password file usually has.
std::string password_from_file_text(std::string text);

}  // namespace rlgate::config
