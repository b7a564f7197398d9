// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's configuration: front end (forward-auth or reverse proxy), who
// the caller is (API key, JWT, trusted user header, client IP), tiers with
// their limits per endpoint class, global and per-IP limits, the store, the
// escalation to rlgated and the server's bounds. Parsed and validated in
// one go (the errors of rlgated's config: file, field, reason). Pure.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/redis_settings.hpp"
#include "core/l7/headers.hpp"
#include "core/l7/jwt.hpp"
#include "core/l7/route.hpp"
#include "core/net/ip_address.hpp"
#include "core/ratelimit/algorithms.hpp"

namespace rlgate::l7 {

enum class Mode { forward_auth, proxy };

// Which header a trusted proxy names the client in. One, not both: proxies
// set X-Forwarded-For but pass a client's own Forwarded through untouched.
enum class ClientIpHeader { x_forwarded_for, forwarded };

// Where forward-auth reads the original request: X-Forwarded-Method/-Uri
// (Caddy, Traefik; nginx sets them with proxy_set_header) or X-Original-*.
// One pair only, so a client cannot pick its endpoint with the other.
enum class OriginalRequestHeaders { x_forwarded, x_original };

// Requests over an endpoint's limit wait (in arrival order) instead of being
// refused, up to `queue` of them and `max_wait` each; `concurrency` (proxy
// mode only) also bounds the requests in flight to the upstream.
struct Throttle {
    std::uint32_t concurrency = 0;  // 0 = no bound
    std::uint32_t queue = 0;
    std::int64_t max_wait_ns = 0;
};

struct Endpoint {
    std::string name;
    std::uint64_t cost = 1;
    std::optional<Throttle> throttle;
};

struct Tier {
    std::string name;
    bool bypass = false;                     // internal services, monitoring: never limited
    std::vector<ratelimit::LimitSpec> limits;  // per caller, whatever the endpoint
    std::map<std::string, std::vector<ratelimit::LimitSpec>> endpoint_limits;  // per caller and endpoint class
    std::string message;                     // the 429 body's message (how to get a higher tier)
    std::string upgrade_url;                 // the 429 body's "upgrade_url" (where to get a higher tier)
};

struct JwtSettings {
    std::string header = "Authorization";  // "Bearer <token>"
    JwtVerifier verifier;
};

struct Identity {
    std::string api_key_header = "X-API-Key";
    std::string api_key_query = "api_key";   // empty: not read from the query
    std::optional<JwtSettings> jwt;
    std::string user_header;                 // set by an auth proxy; read from trusted proxies only
    std::string cost_header;                 // request cost set by a trusted proxy (e.g. "X-RateLimit-Cost")
};

struct Escalation {
    bool enabled = true;
    std::string socket = "/run/rlgate/escalate.sock";
    std::uint64_t after = 100;                 // 429s of one client IP within `window` ...
    std::int64_t window_ns = 60'000'000'000LL;
    std::int64_t ban_ns = 600'000'000'000LL;   // ... ask rlgated for a ban this long
    std::int64_t report_interval_ns = 10'000'000'000LL;  // decision counts to rlgated
};

// Policy followed from rlgated (escalation socket, `policy` command).
struct FromRlgated {
    bool allowlist = false;  // rlgated's allow CIDRs bypass L7 limits too
    bool tiers = false;      // anonymous callers in an rlgated tier prefix get the L7 tier of that name
    bool limits = false;     // L7 tiers named like rlgated's follow its factors (overrides, emergency, adaptive)
    std::int64_t refresh_ns = 10'000'000'000LL;
    [[nodiscard]] bool any() const { return allowlist || tiers || limits; }
};

struct ServerLimits {
    std::uint32_t max_connections = 4096;
    std::uint32_t max_connections_per_client = 256;  // per client address (IPv6: /64); trusted proxies exempt; 0 = off
    std::uint32_t max_header_bytes = 16 * 1024;
    std::uint32_t max_headers = 100;
    std::uint64_t max_body_bytes = 10'000'000;   // proxy mode, streamed
    std::int64_t header_timeout_ns = 10'000'000'000LL;
    std::int64_t idle_timeout_ns = 60'000'000'000LL;
};

struct Upstream {
    std::string host;
    std::uint16_t port = 80;
    std::int64_t connect_timeout_ns = 5'000'000'000LL;
    std::int64_t timeout_ns = 30'000'000'000LL;  // for the response head; bodies stream under idle_timeout
    std::uint32_t max_idle = 64;                 // pooled keep-alive connections
};

// What rlgate-l7 does with a request while Redis cannot answer (down, slow).
enum class RedisFailure {
    local,   // limits kept in memory on this host (divided by fleet_size)
    open,    // admit
    closed,  // refuse (429, Retry-After 1)
};

struct RedisStoreSettings : config::RedisSettings {
    RedisFailure on_failure = RedisFailure::local;
    unsigned fleet_size = 1;  // on_failure "local": each host enforces limit / fleet_size
    // Token leasing for hot decisions: `lease_size` decisions charged to Redis in one call
    // and handed out here until used or `lease_ttl` passes (0/1: off).
    unsigned lease_size = 0;
    // At most this many concurrent decisions in one EVALSHA (1: one each). A
    // batch goes out as soon as a connection has none in flight, so batches
    // only grow while Redis is busy: a quiet host waits no longer.
    unsigned batch = 32;
    std::int64_t lease_ttl_ns = 1'000'000'000;
};

struct L7Config {
    Mode mode = Mode::forward_auth;
    std::string listen_host = "127.0.0.1";
    std::uint16_t listen_port = 8081;
    std::string check_path = "/check";
    unsigned deny_status = 429;   // nginx auth_request understands only 401/403: set 403 there
    std::string metrics_path = "/metrics";  // served to loopback peers; proxy mode: not forwarded
    Upstream upstream;            // proxy mode
    std::vector<net::Cidr> trusted_proxies;
    ClientIpHeader client_ip_header = ClientIpHeader::x_forwarded_for;
    OriginalRequestHeaders original_request_headers = OriginalRequestHeaders::x_forwarded;
    std::vector<net::Cidr> bypass;
    Identity identity;
    std::map<std::string, std::string> api_keys;  // key -> tier
    std::map<std::string, std::string> users;     // user -> tier
    std::string user_tier;        // authenticated users and keys not listed; empty: the anonymous tier
    std::string anonymous_tier;
    std::map<std::string, Tier> tiers;
    std::vector<Endpoint> endpoints;
    std::vector<Route> routes;    // routes[i] selects endpoints[i]; the first match wins
    std::vector<ratelimit::LimitSpec> global_limits;
    std::vector<ratelimit::LimitSpec> per_ip_limits;  // every caller's client IP, whoever it claims to be
    HeaderStyle headers = HeaderStyle::both;
    std::string message = "Too many requests. Retry after the time in the Retry-After header.";
    std::size_t store_max_keys = 100'000;   // ~512 B each, allocated at start
    std::optional<RedisStoreSettings> redis;  // store.type "redis": shared limits for a fleet
    Escalation escalation;
    FromRlgated from_rlgated;
    ServerLimits limits;
    std::string log_level = "info";
};

// Throws config::ConfigError (core/config/json_reader.hpp). Files the config
// names (JWT secret or key) are read through `read_file`, so parsing stays pure.
L7Config parse_l7_config(std::string_view text, const std::string& file,
                         const std::function<std::optional<std::string>(const std::string&)>& read_file);

}  // namespace rlgate::l7
