// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/l7_config.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

#include "core/config/config.hpp"
#include "core/config/json_reader.hpp"
#include "core/config/redis_settings.hpp"
#include "core/ratelimit/memory_store.hpp"

namespace rlgate::l7 {
namespace {

using config::at_index;
using config::in_quotes;
using config::join;
using config::Json;

constexpr std::uint64_t kMaxSlidingLog = 10'000;  // its state holds one timestamp per unit

class Parser : private config::JsonReader {
public:
    Parser(const std::string& file, const std::function<std::optional<std::string>(const std::string&)>& read_file)
        : JsonReader(file), read_file_(read_file) {}

    L7Config parse(std::string_view text);

private:
    std::pair<std::string, std::uint16_t> get_host_port(const Json& v, const std::string& path) const;
    RedisStoreSettings parse_redis(const Json& v, const std::string& path) const;
    ratelimit::LimitSpec parse_limit(const Json& v, const std::string& path) const;
    std::vector<ratelimit::LimitSpec> parse_limits(const Json& v, const std::string& path) const;
    std::vector<net::Cidr> parse_cidrs(const Json& v, const std::string& path) const;
    void parse_identity(const Json& v, Identity& out) const;
    std::optional<JwtSettings> parse_jwt(const Json& v, const std::string& path) const;
    void parse_tiers(const Json& v, L7Config& out) const;
    void parse_endpoints(const Json& v, L7Config& out) const;
    void parse_proxy(const Json& v, L7Config& out) const;
    void parse_escalation(const Json& v, Escalation& out) const;
    void parse_server_limits(const Json& v, ServerLimits& out) const;
    std::int64_t get_duration_i(const Json& v, const std::string& path) const {
        const auto ns = get_duration(v, path);
        if (ns > 366ULL * 86'400'000'000'000ULL)
            fail(path, "longer than a year");
        return static_cast<std::int64_t>(ns);
    }
    std::string read_named_file(const Json& v, const std::string& path) const {
        const auto name = get_abs_path(v, path);
        auto text = read_file_(name);
        if (!text)
            fail(path, "cannot read " + name);
        return *text;
    }

    // "Europe/Berlin" -> /usr/share/zoneinfo/Europe/Berlin, loaded once per name.
    std::shared_ptr<const ratelimit::TimeZone> load_zone(const Json& v, const std::string& path) const {
        const auto name = get_string(v, path);
        if (name == "UTC")
            return nullptr;
        const bool sane = !name.empty() && name.size() < 64 && name.front() != '/' && name.find("..") == std::string::npos &&
                          std::all_of(name.begin(), name.end(), [](char c) {
                              return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '+';
                          });
        if (!sane)
            fail(path, in_quotes(name) + " is not a time zone name (e.g. \"Europe/Berlin\", \"UTC\")");
        if (auto it = zones_.find(name); it != zones_.end())
            return it->second;
        const auto bytes = read_file_("/usr/share/zoneinfo/" + name);
        if (!bytes)
            fail(path, "unknown time zone " + in_quotes(name) + " (no /usr/share/zoneinfo/" + name + "; package tzdata)");
        try {
            auto z = std::make_shared<const ratelimit::TimeZone>(ratelimit::TimeZone::from_tzif(*bytes, name));
            zones_.emplace(name, z);
            return z;
        } catch (const std::invalid_argument& e) {
            fail(path, "/usr/share/zoneinfo/" + name + ": " + e.what());
        }
    }

    const std::function<std::optional<std::string>(const std::string&)>& read_file_;
    mutable std::map<std::string, std::shared_ptr<const ratelimit::TimeZone>> zones_;
};

std::pair<std::string, std::uint16_t> Parser::get_host_port(const Json& v, const std::string& path) const {
    return config::parse_ip_port(*this, v, path);
}

ratelimit::LimitSpec Parser::parse_limit(const Json& v, const std::string& path) const {
    expect_object(v, path, {"name", "algorithm", "limit", "per", "calendar", "time_zone", "burst"});
    ratelimit::LimitSpec s;
    if (!v.contains("limit"))
        fail(join(path, "limit"), "required: requests (cost units) per period");
    s.limit = get_uint_in(v["limit"], join(path, "limit"), 1, 1'000'000'000'000ULL);
    s.algorithm = ratelimit::Algorithm::gcra;
    if (v.contains("algorithm")) {
        static const std::map<std::string, ratelimit::Algorithm, std::less<>> kNames = {
            {"token_bucket", ratelimit::Algorithm::token_bucket},
            {"gcra", ratelimit::Algorithm::gcra},
            {"sliding_log", ratelimit::Algorithm::sliding_log},
            {"sliding_window", ratelimit::Algorithm::sliding_window},
            {"fixed_window", ratelimit::Algorithm::fixed_window}};
        const auto a = get_string(v["algorithm"], join(path, "algorithm"));
        const auto it = kNames.find(a);
        if (it == kNames.end())
            fail(join(path, "algorithm"),
                 in_quotes(a) + " is not an algorithm (token_bucket, gcra, sliding_log, sliding_window, fixed_window)");
        s.algorithm = it->second;
    }
    std::string per_text;
    if (v.contains("calendar")) {
        if (s.algorithm != ratelimit::Algorithm::fixed_window)
            fail(join(path, "calendar"), "only for \"algorithm\": \"fixed_window\"");
        if (v.contains("per"))
            fail(join(path, "per"), "give either \"per\" or \"calendar\"");
        const auto c = get_string(v["calendar"], join(path, "calendar"));
        if (c == "minute")
            s.calendar = ratelimit::Calendar::minute;
        else if (c == "hour")
            s.calendar = ratelimit::Calendar::hour;
        else if (c == "day")
            s.calendar = ratelimit::Calendar::day;
        else
            fail(join(path, "calendar"), in_quotes(c) + " is not a calendar window (minute, hour, day; UTC)");
        s.period_ns = static_cast<std::uint64_t>(ratelimit::calendar_window_length(s.calendar));
        per_text = c;
        if (v.contains("time_zone"))
            s.zone = load_zone(v["time_zone"], join(path, "time_zone"));
    } else {
        if (v.contains("time_zone"))
            fail(join(path, "time_zone"), "only for calendar windows");
        if (!v.contains("per"))
            fail(join(path, "per"), "required: the period, e.g. \"1m\"");
        s.period_ns = static_cast<std::uint64_t>(get_duration_i(v["per"], join(path, "per")));
        per_text = v["per"].get<std::string>();
    }
    if (v.contains("burst")) {
        if (s.algorithm != ratelimit::Algorithm::token_bucket && s.algorithm != ratelimit::Algorithm::gcra)
            fail(join(path, "burst"), "only for token_bucket and gcra (the windows admit `limit` per window)");
        s.burst = get_uint_in(v["burst"], join(path, "burst"), 1, 1'000'000'000'000ULL);
    }
    if (s.algorithm == ratelimit::Algorithm::sliding_log && s.limit > kMaxSlidingLog)
        fail(join(path, "limit"), "a sliding_log keeps one timestamp per request: at most " +
                                      std::to_string(kMaxSlidingLog) + " (use sliding_window for more)");
    s.name = v.contains("name") ? get_string(v["name"], join(path, "name")) : std::to_string(s.limit) + "/" + per_text;
    if (s.name.empty() || s.name.size() > 64)
        fail(join(path, "name"), "1..64 characters");
    for (char c : s.name)
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            fail(join(path, "name"), "printable ASCII without quotes or backslashes (it goes into RateLimit headers)");
    return s;
}

std::vector<ratelimit::LimitSpec> Parser::parse_limits(const Json& v, const std::string& path) const {
    get_array(v, path);
    if (v.size() > ratelimit::MemoryStore::kMaxLimits)
        fail(path, "at most " + std::to_string(ratelimit::MemoryStore::kMaxLimits) + " limits per list");
    std::vector<ratelimit::LimitSpec> out;
    std::set<std::string> names;
    for (std::size_t i = 0; i < v.size(); ++i) {
        out.push_back(parse_limit(v[i], at_index(path, i)));
        if (!names.insert(out.back().name).second)
            fail(at_index(path, i), "two limits named " + in_quotes(out.back().name) + " (name them apart)");
    }
    return out;
}

std::vector<net::Cidr> Parser::parse_cidrs(const Json& v, const std::string& path) const {
    get_array(v, path);
    std::vector<net::Cidr> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto s = get_string(v[i], at_index(path, i));
        std::string error;
        auto c = net::Cidr::parse(s, &error);
        if (!c)
            fail(at_index(path, i), error);
        out.push_back(*c);
    }
    return out;
}

RedisStoreSettings Parser::parse_redis(const Json& v, const std::string& path) const {
    std::vector<std::string_view> known(config::kRedisSettingsFields.begin(), config::kRedisSettingsFields.end());
    known.insert(known.end(), {"on_failure", "fleet_size", "lease_size", "lease_ttl", "batch"});
    expect_object(v, path, known);
    RedisStoreSettings r;
    static_cast<config::RedisSettings&>(r) = config::parse_redis_settings(*this, v, path);
    if (!r.password_file.empty())
        r.password = config::password_from_file_text(read_named_file(v["password_file"], join(path, "password_file")));
    if (v.contains("on_failure")) {
        const auto f = get_string(v["on_failure"], join(path, "on_failure"));
        if (f == "local")
            r.on_failure = RedisFailure::local;
        else if (f == "open")
            r.on_failure = RedisFailure::open;
        else if (f == "closed")
            r.on_failure = RedisFailure::closed;
        else
            fail(join(path, "on_failure"), in_quotes(f) + " is not local, open or closed");
    }
    if (v.contains("fleet_size"))
        r.fleet_size = static_cast<unsigned>(get_uint_in(v["fleet_size"], join(path, "fleet_size"), 1, 10'000));
    if (v.contains("batch"))
        r.batch = static_cast<unsigned>(get_uint_in(v["batch"], join(path, "batch"), 1, 256));
    if (v.contains("lease_size"))
        r.lease_size = static_cast<unsigned>(get_uint_in(v["lease_size"], join(path, "lease_size"), 0, 10'000));
    if (v.contains("lease_ttl")) {
        r.lease_ttl_ns = get_duration_i(v["lease_ttl"], join(path, "lease_ttl"));
        if (r.lease_ttl_ns < 10'000'000 || r.lease_ttl_ns > 60'000'000'000)
            fail(join(path, "lease_ttl"), "between 10 ms and 60 s");
    }
    return r;
}

std::optional<JwtSettings> Parser::parse_jwt(const Json& v, const std::string& path) const {
    expect_object(v, path, {"algorithm", "secret", "secret_file", "public_key_file", "issuer", "audience", "header", "leeway"});
    if (!v.contains("algorithm"))
        fail(join(path, "algorithm"), "required: HS256 or RS256");
    const auto alg = get_string(v["algorithm"], join(path, "algorithm"));
    std::optional<JwtVerifier> verifier;
    try {
        if (alg == "HS256") {
            if (v.contains("public_key_file"))
                fail(join(path, "public_key_file"), "for RS256; HS256 takes \"secret\" or \"secret_file\"");
            if (v.contains("secret") == v.contains("secret_file"))
                fail(join(path, "secret"), "give exactly one of \"secret\" and \"secret_file\"");
            auto secret = v.contains("secret") ? get_string(v["secret"], join(path, "secret"))
                                               : read_named_file(v["secret_file"], join(path, "secret_file"));
            while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
                secret.pop_back();
            if (secret.size() < 32)
                fail(join(path, v.contains("secret") ? "secret" : "secret_file"),
                     "an HS256 secret needs at least 32 bytes (256 bits)");
            verifier = JwtVerifier::hs256(std::move(secret));
        } else if (alg == "RS256") {
            if (v.contains("secret") || v.contains("secret_file"))
                fail(join(path, "secret"), "for HS256; RS256 takes \"public_key_file\"");
            if (!v.contains("public_key_file"))
                fail(join(path, "public_key_file"), "required for RS256: the issuer's public key (PEM)");
            verifier = JwtVerifier::rs256(read_named_file(v["public_key_file"], join(path, "public_key_file")));
        } else {
            fail(join(path, "algorithm"), in_quotes(alg) + " is not supported (HS256 or RS256)");
        }
    } catch (const std::invalid_argument& e) {
        fail(path, e.what());
    }
    if (v.contains("issuer"))
        verifier->issuer = get_string(v["issuer"], join(path, "issuer"));
    if (v.contains("audience"))
        verifier->audience = get_string(v["audience"], join(path, "audience"));
    if (v.contains("leeway"))
        verifier->leeway_s = get_duration_i(v["leeway"], join(path, "leeway")) / 1'000'000'000LL;
    JwtSettings s{.header = "Authorization", .verifier = *verifier};
    if (v.contains("header"))
        s.header = get_string(v["header"], join(path, "header"));
    return s;
}

void Parser::parse_identity(const Json& v, Identity& out) const {
    expect_object(v, "identity", {"api_key_header", "api_key_query", "jwt", "user_header", "cost_header"});
    auto header_name = [&](const char* field) {
        const auto s = get_string(v[field], join("identity", field));
        for (char c : s)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
                fail(join("identity", field), in_quotes(s) + " is not a header name");
        return s;
    };
    if (v.contains("api_key_header"))
        out.api_key_header = header_name("api_key_header");
    if (v.contains("api_key_query"))
        out.api_key_query = get_string(v["api_key_query"], "identity.api_key_query");
    if (v.contains("jwt"))
        out.jwt = parse_jwt(v["jwt"], "identity.jwt");
    if (v.contains("user_header"))
        out.user_header = header_name("user_header");
    if (v.contains("cost_header"))
        out.cost_header = header_name("cost_header");
}

void Parser::parse_tiers(const Json& v, L7Config& out) const {
    if (!v.is_object() || v.empty())
        fail("tiers", "expected an object of tiers by name (at least one)");
    for (const auto& [name, t] : v.items()) {
        const std::string path = join("tiers", name);
        if (name.empty() || name.size() > 64)
            fail(path, "tier names are 1..64 characters");
        expect_object(t, path, {"bypass", "limits", "endpoints", "message", "upgrade_url"});
        Tier tier;
        tier.name = name;
        if (t.contains("bypass"))
            tier.bypass = get_bool(t["bypass"], join(path, "bypass"));
        if (t.contains("limits"))
            tier.limits = parse_limits(t["limits"], join(path, "limits"));
        if (t.contains("endpoints")) {
            const auto& eps = t["endpoints"];
            if (!eps.is_object())
                fail(join(path, "endpoints"), "expected an object of limit lists by endpoint name");
            for (const auto& [ep, lims] : eps.items())
                tier.endpoint_limits[ep] = parse_limits(lims, join(join(path, "endpoints"), ep));
        }
        if (t.contains("message"))
            tier.message = get_string(t["message"], join(path, "message"));
        if (t.contains("upgrade_url")) {
            tier.upgrade_url = get_string(t["upgrade_url"], join(path, "upgrade_url"));
            if (!(tier.upgrade_url.starts_with("https://") || tier.upgrade_url.starts_with("http://")) ||
                tier.upgrade_url.size() > 512 || tier.upgrade_url.find_first_of(" \t\r\n\"") != std::string::npos)
                fail(join(path, "upgrade_url"), "an http(s) URL of at most 512 characters, without spaces or quotes");
        }
        if (tier.bypass && (!tier.limits.empty() || !tier.endpoint_limits.empty()))
            fail(join(path, "bypass"), "a bypass tier has no limits");
        out.tiers.emplace(name, std::move(tier));
    }
}

void Parser::parse_endpoints(const Json& v, L7Config& out) const {
    get_array(v, "endpoints");
    std::set<std::string> names;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string path = at_index("endpoints", i);
        const auto& e = v[i];
        expect_object(e, path, {"name", "route", "cost", "throttle"});
        if (!e.contains("name") || !e.contains("route"))
            fail(path, "\"name\" and \"route\" are required");
        const auto name = get_string(e["name"], join(path, "name"));
        if (name.empty() || name.size() > 64 || !names.insert(name).second)
            fail(join(path, "name"), "1..64 characters and unique");
        std::string error;
        auto route = parse_route(name, get_string(e["route"], join(path, "route")), &error);
        if (!route)
            fail(join(path, "route"), error);
        Endpoint ep{.name = name};
        if (e.contains("cost"))
            ep.cost = get_uint_in(e["cost"], join(path, "cost"), 1, 1'000'000);
        if (e.contains("throttle")) {
            const auto& t = e["throttle"];
            const std::string tpath = join(path, "throttle");
            expect_object(t, tpath, {"concurrency", "queue", "max_wait"});
            Throttle th;
            if (t.contains("concurrency"))
                th.concurrency = static_cast<std::uint32_t>(get_uint_in(t["concurrency"], join(tpath, "concurrency"), 1, 1'000'000));
            if (!t.contains("queue") || !t.contains("max_wait"))
                fail(tpath, "\"queue\" (how many may wait) and \"max_wait\" (how long) are required");
            th.queue = static_cast<std::uint32_t>(get_uint_in(t["queue"], join(tpath, "queue"), 1, 100'000));
            th.max_wait_ns = get_duration_i(t["max_wait"], join(tpath, "max_wait"));
            ep.throttle = th;
        }
        out.endpoints.push_back(std::move(ep));
        out.routes.push_back(std::move(*route));
    }
}

void Parser::parse_proxy(const Json& v, L7Config& out) const {
    expect_object(v, "proxy", {"upstream", "connect_timeout", "timeout", "max_idle"});
    if (!v.contains("upstream"))
        fail("proxy.upstream", "required: \"http://HOST:PORT\"");
    const auto url = get_string(v["upstream"], "proxy.upstream");
    constexpr std::string_view kScheme = "http://";
    if (url.rfind(kScheme, 0) != 0)
        fail("proxy.upstream", in_quotes(url) + ": only http:// upstreams (TLS ends before rlgate-l7)");
    auto authority = url.substr(kScheme.size());
    if (!authority.empty() && authority.back() == '/')
        authority.pop_back();
    if (authority.find('/') != std::string::npos)
        fail("proxy.upstream", "no path: requests keep theirs");
    const auto [host, port] = get_host_port(Json(authority), "proxy.upstream");
    out.upstream.host = host;
    out.upstream.port = port;
    if (v.contains("connect_timeout"))
        out.upstream.connect_timeout_ns = get_duration_i(v["connect_timeout"], "proxy.connect_timeout");
    if (v.contains("timeout"))
        out.upstream.timeout_ns = get_duration_i(v["timeout"], "proxy.timeout");
    if (v.contains("max_idle"))
        out.upstream.max_idle = static_cast<std::uint32_t>(get_uint_in(v["max_idle"], "proxy.max_idle", 0, 100'000));
}

void Parser::parse_escalation(const Json& v, Escalation& out) const {
    expect_object(v, "escalation", {"enabled", "socket", "after", "window", "ban", "report_interval"});
    if (v.contains("enabled"))
        out.enabled = get_bool(v["enabled"], "escalation.enabled");
    if (v.contains("socket"))
        out.socket = get_abs_path(v["socket"], "escalation.socket");
    if (out.socket.size() > 107)
        fail("escalation.socket", "longer than a Unix socket path can be (107 bytes)");
    if (v.contains("after"))
        out.after = get_uint_in(v["after"], "escalation.after", 1, 1'000'000'000);
    if (v.contains("window"))
        out.window_ns = get_duration_i(v["window"], "escalation.window");
    if (v.contains("ban"))
        out.ban_ns = get_duration_i(v["ban"], "escalation.ban");
    if (out.ban_ns < 1'000'000'000LL)
        fail("escalation.ban", "at least 1s");
    if (v.contains("report_interval"))
        out.report_interval_ns = get_duration_i(v["report_interval"], "escalation.report_interval");
}

void Parser::parse_server_limits(const Json& v, ServerLimits& out) const {
    expect_object(v, "limits",
                  {"max_connections", "max_connections_per_client", "max_header_bytes", "max_headers", "max_body_bytes",
                   "header_timeout", "idle_timeout"});
    if (v.contains("max_connections"))
        out.max_connections = static_cast<std::uint32_t>(get_uint_in(v["max_connections"], "limits.max_connections", 1, 1'000'000));
    if (v.contains("max_connections_per_client"))
        out.max_connections_per_client = static_cast<std::uint32_t>(
            get_uint_in(v["max_connections_per_client"], "limits.max_connections_per_client", 0, 1'000'000));
    if (v.contains("max_header_bytes"))
        out.max_header_bytes = static_cast<std::uint32_t>(get_uint_in(v["max_header_bytes"], "limits.max_header_bytes", 1024, 1 << 20));
    if (v.contains("max_headers"))
        out.max_headers = static_cast<std::uint32_t>(get_uint_in(v["max_headers"], "limits.max_headers", 8, 10'000));
    if (v.contains("max_body_bytes"))
        out.max_body_bytes = get_quantity(v["max_body_bytes"], "limits.max_body_bytes");
    if (v.contains("header_timeout"))
        out.header_timeout_ns = get_duration_i(v["header_timeout"], "limits.header_timeout");
    if (v.contains("idle_timeout"))
        out.idle_timeout_ns = get_duration_i(v["idle_timeout"], "limits.idle_timeout");
}

L7Config Parser::parse(std::string_view text) {
    const Json root = parse_json(text);
    expect_object(root, "",
                  {"mode", "listen", "check_path", "deny_status", "metrics_path", "proxy", "trusted_proxies", "client_ip_header",
                   "original_request_headers", "bypass",
                   "identity", "api_keys", "users", "user_tier", "anonymous_tier", "tiers", "endpoints", "global",
                   "per_ip", "headers", "message", "store", "escalation", "from_rlgated", "limits", "log_level"});
    L7Config c;
    if (root.contains("mode")) {
        const auto m = get_string(root["mode"], "mode");
        if (m == "forward_auth")
            c.mode = Mode::forward_auth;
        else if (m == "proxy")
            c.mode = Mode::proxy;
        else
            fail("mode", in_quotes(m) + " is not a mode (forward_auth or proxy)");
    }
    if (root.contains("listen"))
        std::tie(c.listen_host, c.listen_port) = get_host_port(root["listen"], "listen");
    auto get_path = [&](const char* field) {
        auto p = get_string(root[field], field);
        if (p.empty() || p.front() != '/' || p.find_first_of(" ?#") != std::string::npos)
            fail(field, "an absolute URL path without query, e.g. \"/check\"");
        return p;
    };
    if (root.contains("check_path"))
        c.check_path = get_path("check_path");
    if (root.contains("metrics_path"))
        c.metrics_path = get_path("metrics_path");
    if (root.contains("deny_status")) {
        c.deny_status = static_cast<unsigned>(get_uint(root["deny_status"], "deny_status"));
        if (c.deny_status != 429 && c.deny_status != 403 && c.deny_status != 401)
            fail("deny_status", "429, or 403 / 401 for proxies that accept only those from an auth check (nginx)");
    }
    if (c.mode == Mode::proxy) {
        if (!root.contains("proxy"))
            fail("proxy", "required in proxy mode: {\"upstream\": \"http://HOST:PORT\"}");
        parse_proxy(root["proxy"], c);
    } else if (root.contains("proxy")) {
        fail("proxy", "only in \"mode\": \"proxy\"");
    }
    if (root.contains("trusted_proxies"))
        c.trusted_proxies = parse_cidrs(root["trusted_proxies"], "trusted_proxies");
    if (root.contains("client_ip_header")) {
        const auto h = get_string(root["client_ip_header"], "client_ip_header");
        if (h == "X-Forwarded-For")
            c.client_ip_header = ClientIpHeader::x_forwarded_for;
        else if (h == "Forwarded")
            c.client_ip_header = ClientIpHeader::forwarded;
        else
            fail("client_ip_header", in_quotes(h) + " is not supported (X-Forwarded-For or Forwarded)");
    }
    if (root.contains("original_request_headers")) {
        const auto h = get_string(root["original_request_headers"], "original_request_headers");
        if (h == "X-Forwarded")
            c.original_request_headers = OriginalRequestHeaders::x_forwarded;
        else if (h == "X-Original")
            c.original_request_headers = OriginalRequestHeaders::x_original;
        else
            fail("original_request_headers",
                 in_quotes(h) + " is not supported (X-Forwarded: X-Forwarded-Method/-Uri; X-Original: X-Original-Method/-URI)");
    }
    if (root.contains("bypass"))
        c.bypass = parse_cidrs(root["bypass"], "bypass");
    if (root.contains("identity"))
        parse_identity(root["identity"], c.identity);
    if (!root.contains("tiers"))
        fail("tiers", "required: at least one tier");
    parse_tiers(root["tiers"], c);
    auto tier_ref = [&](const Json& v, const std::string& path) {
        const auto t = get_string(v, path);
        if (!c.tiers.contains(t))
            fail(path, "unknown tier " + in_quotes(t));
        return t;
    };
    if (!root.contains("anonymous_tier"))
        fail("anonymous_tier", "required: the tier of callers without a key (usually the strictest)");
    c.anonymous_tier = tier_ref(root["anonymous_tier"], "anonymous_tier");
    if (root.contains("user_tier"))
        c.user_tier = tier_ref(root["user_tier"], "user_tier");
    for (const char* field : {"api_keys", "users"}) {
        if (!root.contains(field))
            continue;
        const auto& m = root[field];
        if (!m.is_object())
            fail(field, "expected an object: name -> tier");
        auto& target = std::string_view(field) == "api_keys" ? c.api_keys : c.users;
        for (const auto& [k, t] : m.items()) {
            if (k.empty() || k.size() > 256)
                fail(join(field, k), "1..256 characters");
            target[k] = tier_ref(t, join(field, k));
        }
    }
    if (root.contains("endpoints"))
        parse_endpoints(root["endpoints"], c);
    for (const auto& [name, tier] : c.tiers)
        for (const auto& [ep, _] : tier.endpoint_limits) {
            bool known = false;
            for (const auto& e : c.endpoints)
                known = known || e.name == ep;
            if (!known)
                fail(join(join(join("tiers", name), "endpoints"), ep), "no endpoint of that name in \"endpoints\"");
        }
    if (root.contains("global"))
        c.global_limits = parse_limits(root["global"], "global");
    if (root.contains("per_ip"))
        c.per_ip_limits = parse_limits(root["per_ip"], "per_ip");
    if (root.contains("headers")) {
        const auto h = get_string(root["headers"], "headers");
        if (h == "both")
            c.headers = HeaderStyle::both;
        else if (h == "ietf")
            c.headers = HeaderStyle::ietf;
        else if (h == "legacy")
            c.headers = HeaderStyle::legacy;
        else
            fail("headers", in_quotes(h) + " is not a header style (both, ietf, legacy)");
    }
    if (root.contains("message"))
        c.message = get_string(root["message"], "message");
    if (root.contains("store")) {
        const auto& s = root["store"];
        expect_object(s, "store", {"max_keys", "type", "redis"});
        if (s.contains("max_keys"))
            c.store_max_keys = get_uint_in(s["max_keys"], "store.max_keys", 64, 1'000'000'000);
        const std::string type = s.contains("type") ? get_string(s["type"], "store.type") : "memory";
        if (type == "redis")
            c.redis = s.contains("redis") ? parse_redis(s["redis"], "store.redis") : RedisStoreSettings{};
        else if (type != "memory")
            fail("store.type", in_quotes(type) + " is not a store (memory or redis)");
        else if (s.contains("redis"))
            fail("store.redis", "only with \"type\": \"redis\"");
    }
    if (root.contains("escalation"))
        parse_escalation(root["escalation"], c.escalation);
    if (root.contains("from_rlgated")) {
        const auto& f = root["from_rlgated"];
        expect_object(f, "from_rlgated", {"allowlist", "tiers", "limits", "refresh"});
        if (f.contains("limits"))
            c.from_rlgated.limits = get_bool(f["limits"], "from_rlgated.limits");
        if (f.contains("allowlist"))
            c.from_rlgated.allowlist = get_bool(f["allowlist"], "from_rlgated.allowlist");
        if (f.contains("tiers"))
            c.from_rlgated.tiers = get_bool(f["tiers"], "from_rlgated.tiers");
        if (f.contains("refresh"))
            c.from_rlgated.refresh_ns = get_duration_i(f["refresh"], "from_rlgated.refresh");
        if (c.from_rlgated.refresh_ns < 1'000'000'000LL)
            fail("from_rlgated.refresh", "at least 1s");
    }
    if (root.contains("limits"))
        parse_server_limits(root["limits"], c.limits);
    if (root.contains("log_level")) {
        c.log_level = get_string(root["log_level"], "log_level");
        static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
        if (!kLevels.contains(c.log_level))
            fail("log_level", in_quotes(c.log_level) + " is not a level (trace, debug, info, warn, error, critical, off)");
    }
    for (const auto& e : c.endpoints)
        if (e.throttle && e.throttle->concurrency && c.mode != Mode::proxy)
            fail("endpoints", e.name + ": a throttle's \"concurrency\" needs proxy mode (forward-auth never sees a "
                              "request end); \"queue\" and \"max_wait\" work in both modes");
    return c;
}

}  // namespace

L7Config parse_l7_config(std::string_view text, const std::string& file,
                         const std::function<std::optional<std::string>(const std::string&)>& read_file) {
    return Parser(file, read_file).parse(text);
}

}  // namespace rlgate::l7
