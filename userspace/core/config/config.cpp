// SPDX-License-Identifier: BSD-2-Clause
#include "core/config/config.hpp"
#include "core/bans/fleet_message.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

namespace rlgate::config {
namespace {

constexpr std::size_t kMaxIfNameLen = 15;     // IFNAMSIZ - 1
constexpr std::size_t kMaxSocketPathLen = 107;  // sizeof(sockaddr_un::sun_path) - 1

class Parser : private JsonReader {
public:
    explicit Parser(const std::string& file) : JsonReader(file) {}

    Config parse(std::string_view text);

private:
    net::Cidr get_cidr(const Json& v, const std::string& path) const;

    void parse_interfaces(const Json& v, Config& out) const;
    void parse_daemon(const Json& v, DaemonSettings& out) const;
    void parse_maps(const Json& v, MapSizes& out) const;
    void parse_events(const Json& v, EventBudget& out) const;
    void parse_bans(const Json& v, BanSettings& out) const;
    void parse_fleet(const Json& v, FleetSettings& out) const;
    void parse_adaptive(const Json& v, Config& cfg) const;
    void parse_emergency(const Json& v, Config& cfg) const;
    void parse_schedule(const Json& v, Config& cfg) const;
    double get_factor(const Json& v, const std::string& path) const;
    std::int64_t get_utc_ms(const Json& v, const std::string& path) const;
    void parse_admin(const Json& v, AdminSettings& out) const;
    void parse_alerts(const Json& v, AlertSettings& out) const;
    void parse_tiers(const Json& v, policy::Policy& out) const;
    void parse_rules(const Json& v, policy::Policy& out) const;
    std::vector<net::Cidr> parse_cidr_list(const Json& v, const std::string& path) const;
    // Reads whichever of pps, burst, bytes_per_sec and burst_bytes `obj` has,
    // and checks the result with the compiler's own rules.
    policy::RateLimit parse_limit(const Json& obj, const std::string& path) const;
    void check_limit(const policy::RateLimit& limit, const std::string& path) const;
};

net::Cidr Parser::get_cidr(const Json& v, const std::string& path) const {
    const auto s = get_string(v, path);
    std::string error;
    auto c = net::Cidr::parse(s, &error);
    if (!c)
        fail(path, error);
    // The compiler checks this too, but can only name the prefix, not the entry.
    if (!c->address.v4 && c->prefix > RL_MAX_V6_PREFIX)
        fail(path, "IPv6 prefixes longer than /" + std::to_string(RL_MAX_V6_PREFIX) +
                       " are not supported (an IPv6 source owns at least a /64)");
    return *c;
}

void Parser::parse_interfaces(const Json& v, Config& out) const {
    get_array(v, "interfaces");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto& item = v[i];
        const std::string path = at_index("interfaces", i);
        InterfaceConfig ic;
        std::string name_path = path;
        if (item.is_string()) {
            ic.name = item.get<std::string>();
        } else if (item.is_object()) {
            expect_object(item, path, {"name", "mode"});
            name_path = path + ".name";
            if (!item.contains("name"))
                fail(name_path, "required");
            ic.name = get_string(item["name"], name_path);
            if (item.contains("mode")) {
                const auto mode = get_string(item["mode"], path + ".mode");
                if (mode == "native")
                    ic.mode = AttachModeSetting::native;
                else if (mode == "generic")
                    ic.mode = AttachModeSetting::generic;
                else if (mode == "auto")
                    ic.mode = AttachModeSetting::automatic;
                else
                    fail(path + ".mode", in_quotes(mode) + " is not a mode (native, generic or auto)");
            }
        } else {
            fail(path, "expected an interface name or an object {\"name\": ..., \"mode\": ...}");
        }
        // The kernel's dev_valid_name().
        const auto& n = ic.name;
        if (n.empty() || n.size() > kMaxIfNameLen)
            fail(name_path, "interface names are 1.." + std::to_string(kMaxIfNameLen) + " characters");
        if (n == "." || n == "..")
            fail(name_path, in_quotes(n) + " is not a valid interface name");
        for (char c : n)
            if (c == '/' || c == ':' || c == '\0' || std::isspace(static_cast<unsigned char>(c)))
                fail(name_path, in_quotes(n) + " is not a valid interface name (no '/', ':' or whitespace)");
        if (!seen.insert(n).second)
            fail(name_path, "duplicate interface " + in_quotes(n));
        out.interfaces.push_back(std::move(ic));
    }
}

void Parser::parse_daemon(const Json& v, DaemonSettings& out) const {
    expect_object(v, "daemon", {"pin_dir", "socket", "state_dir", "log_level", "escalation_socket", "escalation_group"});
    if (v.contains("escalation_socket")) {
        out.escalation_socket = get_abs_path(v["escalation_socket"], "daemon.escalation_socket");
        if (out.escalation_socket.size() > kMaxSocketPathLen)
            fail("daemon.escalation_socket", "longer than " + std::to_string(kMaxSocketPathLen) +
                                                 " bytes, the limit of a unix socket address");
    }
    if (v.contains("escalation_group"))
        out.escalation_group = get_string(v["escalation_group"], "daemon.escalation_group");
    if (v.contains("pin_dir"))
        out.pin_dir = get_abs_path(v["pin_dir"], "daemon.pin_dir");
    if (v.contains("socket")) {
        out.socket_path = get_abs_path(v["socket"], "daemon.socket");
        if (out.socket_path.size() > kMaxSocketPathLen)
            fail("daemon.socket", "longer than " + std::to_string(kMaxSocketPathLen) +
                                      " bytes, the limit of a unix socket address");
    }
    if (v.contains("state_dir"))
        out.state_dir = get_abs_path(v["state_dir"], "daemon.state_dir");
    if (v.contains("log_level")) {
        out.log_level = get_string(v["log_level"], "daemon.log_level");
        static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
        if (std::find(std::begin(kLevels), std::end(kLevels), out.log_level) == std::end(kLevels))
            fail("daemon.log_level", in_quotes(out.log_level) + " is not a level (trace, debug, info, warn or error)");
    }
}

void Parser::parse_maps(const Json& v, MapSizes& out) const {
    expect_object(v, "maps", {"buckets", "classes", "bans", "seen_filter"});
    if (v.contains("buckets"))
        out.buckets = static_cast<std::uint32_t>(get_uint_in(v["buckets"], "maps.buckets", 1024, 1U << 26));
    if (v.contains("classes"))
        out.classes = static_cast<std::uint32_t>(get_uint_in(v["classes"], "maps.classes", 16, 1U << 24));
    if (v.contains("bans"))
        out.bans = static_cast<std::uint32_t>(get_uint_in(v["bans"], "maps.bans", 16, 1U << 24));
    if (v.contains("seen_filter"))
        out.seen_filter = get_bool(v["seen_filter"], "maps.seen_filter");
}

void Parser::parse_events(const Json& v, EventBudget& out) const {
    expect_object(v, "events", {"per_sec", "burst"});
    if (v.contains("per_sec"))
        out.per_sec = static_cast<std::uint32_t>(get_uint_in(v["per_sec"], "events.per_sec", 1, 1'000'000));
    if (v.contains("burst"))
        out.burst = static_cast<std::uint32_t>(get_uint_in(v["burst"], "events.burst", 1, 1'000'000));
}

void Parser::parse_fleet(const Json& v, FleetSettings& out) const {
    expect_object(v, "fleet", {"redis", "host", "publish_per_sec", "publish_burst", "key_file", "min_prefix_v4",
                               "min_prefix_v6", "apply_per_sec", "apply_burst"});
    out.enabled = true;
    if (!v.contains("redis"))
        fail("fleet.redis", "required: how to reach the fleet's Redis (e.g. {\"address\": \"10.0.0.5:6379\"})");
    const auto& r = v["redis"];
    expect_object(r, "fleet.redis", config::kRedisSettingsFields);
    out.redis = parse_redis_settings(*this, r, "fleet.redis");
    if (out.redis.cluster)
        fail("fleet.redis.cluster", "bans are shared through a standalone Redis (or a replicated one's primary); "
                                    "Redis Cluster is for rlgate-l7's limits");
    if (v.contains("host")) {
        out.host = get_string(v["host"], "fleet.host");
        if (!bans::valid_fleet_host(out.host))
            fail("fleet.host", "1 to 64 characters, no whitespace, quotes or braces");
    }
    if (v.contains("publish_per_sec"))
        out.publish_per_sec = static_cast<std::uint32_t>(get_uint_in(v["publish_per_sec"], "fleet.publish_per_sec", 1, 100'000));
    if (v.contains("publish_burst"))
        out.publish_burst = static_cast<std::uint32_t>(get_uint_in(v["publish_burst"], "fleet.publish_burst", 1, 1'000'000));
    if (v.contains("key_file"))
        out.key_file = get_abs_path(v["key_file"], "fleet.key_file");
    if (v.contains("min_prefix_v4"))
        out.min_prefix_v4 = static_cast<std::uint32_t>(get_uint_in(v["min_prefix_v4"], "fleet.min_prefix_v4", 0, 32));
    if (v.contains("min_prefix_v6"))
        out.min_prefix_v6 = static_cast<std::uint32_t>(get_uint_in(v["min_prefix_v6"], "fleet.min_prefix_v6", 0, 128));
    if (v.contains("apply_per_sec"))
        out.apply_per_sec = static_cast<std::uint32_t>(get_uint_in(v["apply_per_sec"], "fleet.apply_per_sec", 1, 1'000'000));
    if (v.contains("apply_burst"))
        out.apply_burst = static_cast<std::uint32_t>(get_uint_in(v["apply_burst"], "fleet.apply_burst", 1, 10'000'000));
}

double Parser::get_factor(const Json& v, const std::string& path) const {
    const double f = get_number(v, path);
    if (!(f > 0) || f > 1000)
        fail(path, "a factor above 0 and at most 1000");
    return f;
}

// "2026-11-27T00:00:00Z": UTC only, so a schedule means the same instant on every host.
std::int64_t Parser::get_utc_ms(const Json& v, const std::string& path) const {
    const auto s = get_string(v, path);
    std::tm tm{};
    const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end != '\0')
        fail(path, in_quotes(s) + " is not a UTC time like \"2026-11-27T00:00:00Z\"");
    return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

void Parser::parse_adaptive(const Json& v, Config& cfg) const {
    expect_object(v, "adaptive", {"tiers", "step", "min_factor", "recover_below", "dwell", "signals"});
    auto& a = cfg.adaptive;
    a.enabled = true;
    if (!v.contains("tiers"))
        fail("adaptive.tiers", "required: the tiers the controller may scale, lowest priority first");
    const auto& tiers = get_array(v["tiers"], "adaptive.tiers");
    for (std::size_t i = 0; i < tiers.size(); ++i)
        a.controller.order.push_back(get_string(tiers[i], at_index("adaptive.tiers", i)));
    if (v.contains("step")) {
        a.controller.step = get_number(v["step"], "adaptive.step");
        if (!(a.controller.step > 0 && a.controller.step < 1))
            fail("adaptive.step", "between 0 and 1 (exclusive): the factor of one step");
    }
    if (v.contains("min_factor")) {
        a.controller.min_factor = get_number(v["min_factor"], "adaptive.min_factor");
        if (!(a.controller.min_factor > 0 && a.controller.min_factor < 1))
            fail("adaptive.min_factor", "between 0 and 1 (exclusive)");
    }
    if (v.contains("recover_below")) {
        a.controller.recover_below = get_number(v["recover_below"], "adaptive.recover_below");
        if (!(a.controller.recover_below > 0 && a.controller.recover_below < 1))
            fail("adaptive.recover_below", "between 0 and 1 (exclusive): a share of each signal's high level");
    }
    if (v.contains("dwell")) {
        const auto ns = get_duration(v["dwell"], "adaptive.dwell");
        if (ns < 1'000'000'000ULL || ns > 3'600'000'000'000ULL)
            fail("adaptive.dwell", "between 1s and 1h");
        a.controller.dwell_ms = static_cast<std::int64_t>(ns / 1'000'000);
    }
    if (!v.contains("signals"))
        fail("adaptive.signals", "required: at least one load level (softirq_cpu, pps, map_fill, l7_latency, l7_in_flight)");
    const auto& s = v["signals"];
    expect_object(s, "adaptive.signals", {"softirq_cpu", "pps", "map_fill", "l7_latency", "l7_in_flight"});
    auto share = [&](const char* name, double& out) {
        if (!s.contains(name))
            return;
        out = get_number(s[name], std::string("adaptive.signals.") + name);
        if (!(out > 0 && out <= 1))
            fail(std::string("adaptive.signals.") + name, "a share above 0 and at most 1");
    };
    share("softirq_cpu", a.softirq_cpu);
    share("map_fill", a.map_fill);
    if (s.contains("pps"))
        a.pps = get_quantity(s["pps"], "adaptive.signals.pps");
    if (s.contains("l7_latency"))
        a.l7_latency_ms = get_duration(s["l7_latency"], "adaptive.signals.l7_latency") / 1'000'000;
    if (s.contains("l7_in_flight"))
        a.l7_in_flight = get_uint_in(s["l7_in_flight"], "adaptive.signals.l7_in_flight", 1, 10'000'000);
    if (a.softirq_cpu == 0 && a.pps == 0 && a.map_fill == 0 && a.l7_latency_ms == 0 && a.l7_in_flight == 0)
        fail("adaptive.signals", "at least one load level (softirq_cpu, pps, map_fill, l7_latency, l7_in_flight)");
}

void Parser::parse_emergency(const Json& v, Config& cfg) const {
    if (!v.is_object() || v.empty())
        fail("emergency", "an object of tier -> factor, e.g. {\"free\": 0.1}");
    for (const auto& [tier, f] : v.items())
        cfg.emergency[tier] = get_factor(f, join("emergency", tier));
}

void Parser::parse_schedule(const Json& v, Config& cfg) const {
    const auto& list = get_array(v, "schedule");
    for (std::size_t i = 0; i < list.size(); ++i) {
        const auto path = at_index("schedule", i);
        const auto& e = list[i];
        expect_object(e, path, {"tier", "rule", "factor", "pps", "start", "end", "reason"});
        policy::Override o{.origin = "schedule"};
        if (e.contains("tier") == e.contains("rule"))
            fail(path, "give one of \"tier\" and \"rule\"");
        o.target = e.contains("tier") ? policy::Override::Target::tier : policy::Override::Target::rule;
        o.name = get_string(e.contains("tier") ? e["tier"] : e["rule"], join(path, e.contains("tier") ? "tier" : "rule"));
        if (e.contains("factor") == e.contains("pps"))
            fail(path, "give one of \"factor\" and \"pps\"");
        if (e.contains("factor"))
            o.factor = get_factor(e["factor"], join(path, "factor"));
        else
            o.pps = get_uint_in(e["pps"], join(path, "pps"), 1, 1'000'000'000'000ULL);
        if (!e.contains("start") || !e.contains("end"))
            fail(path, "needs \"start\" and \"end\" (UTC, e.g. \"2026-11-27T00:00:00Z\")");
        o.start_ms = get_utc_ms(e["start"], join(path, "start"));
        o.until_ms = get_utc_ms(e["end"], join(path, "end"));
        if (o.until_ms <= o.start_ms)
            fail(join(path, "end"), "must be after start");
        if (e.contains("reason"))
            o.reason = get_string(e["reason"], join(path, "reason"));
        cfg.schedule.push_back(std::move(o));
    }
}

void Parser::parse_bans(const Json& v, BanSettings& out) const {
    expect_object(v, "bans", {"l7_default_ttl", "l7_max_ttl", "l7_reports_per_sec", "l7_burst", "violation_log", "history"});
    if (v.contains("l7_default_ttl"))
        out.l7_default_ttl_ns = get_duration(v["l7_default_ttl"], "bans.l7_default_ttl");
    if (v.contains("l7_max_ttl"))
        out.l7_max_ttl_ns = get_duration(v["l7_max_ttl"], "bans.l7_max_ttl");
    if (out.l7_default_ttl_ns == 0 || out.l7_default_ttl_ns > out.l7_max_ttl_ns)
        fail("bans.l7_default_ttl", "must be positive and at most bans.l7_max_ttl");
    if (v.contains("l7_reports_per_sec"))
        out.l7_reports_per_sec =
            static_cast<std::uint32_t>(get_uint_in(v["l7_reports_per_sec"], "bans.l7_reports_per_sec", 1, 100'000));
    if (v.contains("l7_burst"))
        out.l7_burst = static_cast<std::uint32_t>(get_uint_in(v["l7_burst"], "bans.l7_burst", 1, 100'000));
    if (v.contains("history"))
        out.history_max = static_cast<std::uint32_t>(get_uint_in(v["history"], "bans.history", 0, 10'000'000));
    if (v.contains("violation_log")) {
        const auto& l = v["violation_log"];
        expect_object(l, "bans.violation_log", {"format", "path"});
        if (l.contains("format")) {
            out.violation_log_format = get_string(l["format"], "bans.violation_log.format");
            if (out.violation_log_format != "text" && out.violation_log_format != "json")
                fail("bans.violation_log.format", in_quotes(out.violation_log_format) + " is not text or json");
        }
        if (l.contains("path"))
            out.violation_log_path = get_abs_path(l["path"], "bans.violation_log.path");
    }
}

void Parser::parse_admin(const Json& v, AdminSettings& out) const {
    expect_object(v, "admin", {"listen", "token", "max_connections"});
    if (v.contains("listen")) {
        out.listen = get_string(v["listen"], "admin.listen");
        if (!out.listen.empty()) {
            const auto colon = out.listen.rfind(':');
            std::uint64_t port = 0;
            const auto port_text = colon == std::string::npos ? std::string_view{} : std::string_view(out.listen).substr(colon + 1);
            const auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
            if (colon == std::string::npos || colon == 0 || ec != std::errc{} || p != port_text.data() + port_text.size() ||
                port > 65535)
                fail("admin.listen", in_quotes(out.listen) + " is not host:port (e.g. \"127.0.0.1:9477\", \"[::1]:9477\")");
        }
    }
    if (v.contains("token")) {
        out.token = get_string(v["token"], "admin.token");
        if (!out.token.empty() && out.token.size() < 16)
            fail("admin.token", "at least 16 characters");
        for (char c : out.token)
            if (c <= ' ' || c > '~')
                fail("admin.token", "printable ASCII without spaces only");
    }
    if (v.contains("max_connections"))
        out.max_connections = static_cast<std::uint32_t>(get_uint_in(v["max_connections"], "admin.max_connections", 4, 10'000));
    std::string host = out.listen.substr(0, out.listen.rfind(':'));
    if (host.size() > 1 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    const auto addr = net::IpAddress::parse(host);
    if (!out.listen.empty() && host != "localhost" && !addr)
        fail("admin.listen", in_quotes(host) + " is not an IP address (or localhost)");
    const bool loopback = host == "localhost" || (addr && (addr->v4 ? (addr->v4_host_order() >> 24) == 127
                                                                    : *addr == *net::IpAddress::parse("::1")));
    if (!out.listen.empty() && !loopback && out.token.empty())
        fail("admin.token", "required when admin.listen is not on loopback (" + out.listen + ")");
}

void Parser::parse_alerts(const Json& v, AlertSettings& out) const {
    expect_object(v, "alerts", {"rules", "webhooks", "queue", "max_backoff"});
    if (v.contains("rules")) {
        const auto& rules = get_array(v["rules"], "alerts.rules");
        std::set<std::string> names;
        for (std::size_t i = 0; i < rules.size(); ++i) {
            const auto path = at_index("alerts.rules", i);
            const auto& r = rules[i];
            expect_object(r, path, {"name", "type", "above", "clear_below", "for", "window", "map"});
            AlertRule rule;
            if (!r.contains("name"))
                fail(path + ".name", "required");
            rule.name = get_string(r["name"], path + ".name");
            if (rule.name.empty() || !names.insert(rule.name).second)
                fail(path + ".name", "must be a unique, non-empty name");
            if (!r.contains("type"))
                fail(path + ".type", "required");
            const auto type = get_string(r["type"], path + ".type");
            static constexpr std::pair<std::string_view, AlertType> kTypes[] = {
                {"drop_ratio", AlertType::drop_ratio},           {"ban_rate", AlertType::ban_rate},
                {"map_fill", AlertType::map_fill},               {"repeat_offender", AlertType::repeat_offender},
                {"program_detached", AlertType::program_detached}, {"l7_redis_down", AlertType::l7_redis_down},
                {"fleet_redis_down", AlertType::fleet_redis_down}};
            const auto* found = std::find_if(std::begin(kTypes), std::end(kTypes), [&](const auto& t) { return t.first == type; });
            if (found == std::end(kTypes))
                fail(path + ".type", in_quotes(type) +
                                         " is not drop_ratio, ban_rate, map_fill, repeat_offender, program_detached, l7_redis_down or fleet_redis_down");
            rule.type = found->second;
            const bool boolean = rule.type == AlertType::program_detached || rule.type == AlertType::l7_redis_down ||
                                 rule.type == AlertType::fleet_redis_down;
            if (r.contains("above"))
                rule.above = get_number(r["above"], path + ".above");
            else if (!boolean)
                fail(path + ".above", "required for " + type);
            if ((rule.type == AlertType::drop_ratio || rule.type == AlertType::map_fill) && rule.above > 1)
                fail(path + ".above", "a ratio: 0..1 (0.8 = 80%)");
            rule.clear_below = r.contains("clear_below") ? get_number(r["clear_below"], path + ".clear_below") : rule.above;
            if (rule.clear_below > rule.above)
                fail(path + ".clear_below", "must not exceed above");
            rule.for_ns = 0;
            if (r.contains("for")) {
                const auto& f = r["for"];
                rule.for_ns = f.is_string() && f.get<std::string>() == "0s" ? 0 : get_duration(f, path + ".for");
            }
            if (r.contains("window"))
                rule.window_ns = get_duration(r["window"], path + ".window");
            if (rule.type == AlertType::map_fill) {
                rule.map = r.contains("map") ? get_string(r["map"], path + ".map") : "rl_buckets";
                if (rule.map != "rl_buckets" && rule.map != "rl_bans" && rule.map != "rl_class")
                    fail(path + ".map", "rl_buckets, rl_bans or rl_class");
            } else if (r.contains("map")) {
                fail(path + ".map", "only for map_fill");
            }
            out.rules.push_back(std::move(rule));
        }
    }
    if (v.contains("webhooks")) {
        const auto& hooks = get_array(v["webhooks"], "alerts.webhooks");
        for (std::size_t i = 0; i < hooks.size(); ++i) {
            const auto path = at_index("alerts.webhooks", i);
            const auto& h = hooks[i];
            expect_object(h, path, {"url", "timeout"});
            if (!h.contains("url"))
                fail(path + ".url", "required");
            std::string err;
            auto hook = parse_webhook_url(get_string(h["url"], path + ".url"), &err);
            if (!hook)
                fail(path + ".url", err);
            if (h.contains("timeout"))
                hook->timeout_ns = get_duration(h["timeout"], path + ".timeout");
            out.webhooks.push_back(std::move(*hook));
        }
    }
    if (v.contains("queue"))
        out.queue = static_cast<std::uint32_t>(get_uint_in(v["queue"], "alerts.queue", 1, 1'000'000));
    if (v.contains("max_backoff"))
        out.max_backoff_ns = get_duration(v["max_backoff"], "alerts.max_backoff");
}

void Parser::check_limit(const policy::RateLimit& limit, const std::string& path) const {
    try {
        (void)policy::to_gcra_limit(limit, path);
    } catch (const policy::PolicyError& e) {
        std::string reason = e.what();
        if (reason.starts_with(e.field() + ": "))
            reason.erase(0, e.field().size() + 2);
        fail(e.field(), reason);
    }
}

policy::RateLimit Parser::parse_limit(const Json& obj, const std::string& path) const {
    policy::RateLimit l;
    if (obj.contains("pps"))
        l.packets_per_sec = get_uint(obj["pps"], path + ".pps");
    if (obj.contains("burst"))
        l.burst_packets = get_uint(obj["burst"], path + ".burst");
    if (obj.contains("bytes_per_sec"))
        l.bytes_per_sec = get_quantity(obj["bytes_per_sec"], path + ".bytes_per_sec");
    if (obj.contains("burst_bytes"))
        l.burst_bytes = get_quantity(obj["burst_bytes"], path + ".burst_bytes");
    check_limit(l, path);
    return l;
}

void Parser::parse_tiers(const Json& v, policy::Policy& out) const {
    if (!v.is_object())
        fail("tiers", "expected an object of tiers, by name");
    if (v.empty())
        fail("tiers", "at least one tier is required");
    std::map<std::string, std::string, std::less<>> member_of;  // prefix -> tier
    for (const auto& [name, t] : v.items()) {
        const std::string path = join("tiers", name);
        expect_object(t, path,
                      {"pps", "burst", "bytes_per_sec", "burst_bytes", "prefix_v4", "prefix_v6", "autoban", "members",
                       "global_share"});
        policy::Tier tier;
        tier.name = name;
        tier.limit = parse_limit(t, path);
        if (t.contains("prefix_v4"))
            tier.prefix_v4 = static_cast<unsigned>(get_uint_in(t["prefix_v4"], path + ".prefix_v4", 1, 32));
        if (t.contains("prefix_v6"))
            tier.prefix_v6 =
                static_cast<unsigned>(get_uint_in(t["prefix_v6"], path + ".prefix_v6", 1, RL_MAX_V6_PREFIX));
        if (t.contains("global_share")) {
            tier.global_share = get_number(t["global_share"], path + ".global_share");
            if (!(tier.global_share > 0) || tier.global_share > 1)
                fail(path + ".global_share", "a share above 0 and at most 1 (1: the whole global burst)");
        }
        if (t.contains("autoban")) {
            const auto& a = t["autoban"];
            const std::string apath = path + ".autoban";
            expect_object(a, apath, {"drops", "window", "ban", "repeat_factor", "max_ban", "memory"});
            if (!a.contains("drops"))
                fail(apath + ".drops", "required (rate drops within the window that ban a source)");
            tier.autoban.drops = static_cast<std::uint32_t>(
                get_uint_in(a["drops"], apath + ".drops", 1, std::numeric_limits<std::uint32_t>::max()));
            if (a.contains("window"))
                tier.autoban.window_ns = get_duration(a["window"], apath + ".window");
            if (a.contains("ban"))
                tier.autoban.ban_ns = get_duration(a["ban"], apath + ".ban");
            if (a.contains("repeat_factor"))
                tier.autoban.repeat_factor =
                    static_cast<std::uint32_t>(get_uint_in(a["repeat_factor"], apath + ".repeat_factor", 1, 1000));
            if (a.contains("max_ban"))
                tier.autoban.max_ban_ns = get_duration(a["max_ban"], apath + ".max_ban");
            if (a.contains("memory"))
                tier.autoban.memory_ns = get_duration(a["memory"], apath + ".memory");
            if (tier.autoban.max_ban_ns < tier.autoban.ban_ns)
                fail(apath + ".max_ban", "shorter than the first ban (" + apath + ".ban)");
        }
        if (t.contains("members")) {
            const std::string mpath = path + ".members";
            const auto& members = get_array(t["members"], mpath);
            for (std::size_t i = 0; i < members.size(); ++i) {
                const std::string ipath = at_index(mpath, i);
                auto c = get_cidr(members[i], ipath);
                auto [it, inserted] = member_of.emplace(c.to_string(), name);
                if (!inserted)
                    fail(ipath, c.to_string() + " is already a member of tier " + in_quotes(it->second));
                out.members.push_back(policy::TierMember{.prefix = c, .tier = name});
            }
        }
        out.tiers.push_back(std::move(tier));
    }
}

void Parser::parse_rules(const Json& v, policy::Policy& out) const {
    get_array(v, "rules");
    std::set<std::string> names;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto& r = v[i];
        const std::string path = at_index("rules", i);
        expect_object(r, path,
                      {"name", "proto", "ports", "syn_only", "pps", "burst", "bytes_per_sec", "burst_bytes", "tiers"});
        policy::Rule rule;
        if (!r.contains("name"))
            fail(path + ".name", "required");
        rule.name = get_string(r["name"], path + ".name");
        if (rule.name.empty())
            fail(path + ".name", "must not be empty");
        if (!names.insert(rule.name).second)
            fail(path + ".name", "duplicate rule name " + in_quotes(rule.name));

        if (!r.contains("proto"))
            fail(path + ".proto", "required (tcp, udp or other)");
        const auto proto = get_string(r["proto"], path + ".proto");
        if (proto == "tcp")
            rule.protocol = policy::RuleProtocol::tcp;
        else if (proto == "udp")
            rule.protocol = policy::RuleProtocol::udp;
        else if (proto == "other")
            rule.protocol = policy::RuleProtocol::other;
        else
            fail(path + ".proto", in_quotes(proto) + " is not a protocol (tcp, udp or other)");

        if (r.contains("ports")) {
            const std::string ppath = path + ".ports";
            if (rule.protocol == policy::RuleProtocol::other)
                fail(ppath, "not allowed with proto \"other\" (it matches ICMP, other protocols and non-first fragments, which have no ports)");
            const auto& p = r["ports"];
            if (p.is_number()) {
                const auto port = static_cast<std::uint16_t>(get_uint_in(p, ppath, 0, 65535));
                rule.port_first = rule.port_last = port;
            } else if (p.is_string()) {
                const auto& s = p.get_ref<const std::string&>();
                const auto bad = [&]() {
                    fail(ppath, in_quotes(s) + " is not a port (0-65535) or a port range such as \"8000-8099\"");
                };
                const auto dash = s.find('-');
                unsigned range[2] = {0, 0};
                const std::string_view parts[2] = {
                    std::string_view(s).substr(0, dash),
                    dash == std::string::npos ? std::string_view(s) : std::string_view(s).substr(dash + 1)};
                for (int k = 0; k < 2; ++k) {
                    const auto part = parts[k];
                    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), range[k]);
                    if (part.empty() || ec != std::errc{} || ptr != part.data() + part.size() || range[k] > 65535)
                        bad();
                }
                if (range[0] > range[1])
                    fail(ppath, in_quotes(s) + ": first port above last port");
                rule.port_first = static_cast<std::uint16_t>(range[0]);
                rule.port_last = static_cast<std::uint16_t>(range[1]);
            } else {
                fail(ppath, "expected a port number or a string such as \"53\" or \"8000-8099\"");
            }
        }
        if (r.contains("syn_only")) {
            rule.syn_only = get_bool(r["syn_only"], path + ".syn_only");
            if (rule.syn_only && rule.protocol != policy::RuleProtocol::tcp)
                fail(path + ".syn_only", "only applies to tcp rules");
        }
        rule.limit = parse_limit(r, path);
        if (r.contains("tiers")) {
            const auto& t = r["tiers"];
            const std::string tpath = path + ".tiers";
            if (!t.is_object())
                fail(tpath, "expected an object of per-tier limits, by tier name");
            for (const auto& [tier, lim] : t.items()) {
                const std::string opath = join(tpath, tier);
                expect_object(lim, opath, {"pps", "burst", "bytes_per_sec", "burst_bytes"});
                rule.tier_limits[tier] = parse_limit(lim, opath);
            }
        }
        out.rules.push_back(std::move(rule));
    }
}

std::vector<net::Cidr> Parser::parse_cidr_list(const Json& v, const std::string& path) const {
    get_array(v, path);
    std::vector<net::Cidr> out;
    for (std::size_t i = 0; i < v.size(); ++i)
        out.push_back(get_cidr(v[i], at_index(path, i)));
    return out;
}

Config Parser::parse(std::string_view text) {
    const Json root = parse_json(text);
    expect_object(root, "",
                  {"interfaces", "daemon", "maps", "events", "bans", "fleet", "adaptive", "emergency", "schedule",
                   "admin", "alerts", "dry_run", "drop_malformed",
                   "default_tier", "tiers", "rules", "allow", "deny", "global"});
    Config cfg;
    auto& p = cfg.policy;
    if (root.contains("interfaces"))
        parse_interfaces(root["interfaces"], cfg);
    if (root.contains("daemon"))
        parse_daemon(root["daemon"], cfg.daemon);
    // The escalation socket lives next to the control socket unless placed elsewhere.
    if (!(root.contains("daemon") && root["daemon"].contains("escalation_socket"))) {
        const auto slash = cfg.daemon.socket_path.rfind('/');
        cfg.daemon.escalation_socket = cfg.daemon.socket_path.substr(0, slash) + "/escalate.sock";
    }
    if (root.contains("maps"))
        parse_maps(root["maps"], cfg.maps);
    if (root.contains("events"))
        parse_events(root["events"], cfg.events);
    if (root.contains("bans"))
        parse_bans(root["bans"], cfg.bans);
    if (root.contains("fleet"))
        parse_fleet(root["fleet"], cfg.fleet);
    if (root.contains("adaptive"))
        parse_adaptive(root["adaptive"], cfg);
    if (root.contains("emergency"))
        parse_emergency(root["emergency"], cfg);
    if (root.contains("schedule"))
        parse_schedule(root["schedule"], cfg);
    if (root.contains("admin"))
        parse_admin(root["admin"], cfg.admin);
    if (root.contains("alerts"))
        parse_alerts(root["alerts"], cfg.alerts);
    if (root.contains("dry_run"))
        p.dry_run = get_bool(root["dry_run"], "dry_run");
    if (root.contains("drop_malformed"))
        p.drop_malformed = get_bool(root["drop_malformed"], "drop_malformed");
    if (!root.contains("tiers"))
        fail("tiers", "required: at least one tier");
    parse_tiers(root["tiers"], p);
    if (root.contains("default_tier")) {
        p.default_tier = get_string(root["default_tier"], "default_tier");
        if (p.default_tier.empty())
            fail("default_tier", "must not be empty");
    } else {
        p.default_tier = p.tiers.front().name;
    }
    if (root.contains("rules"))
        parse_rules(root["rules"], p);
    if (root.contains("allow"))
        p.allow = parse_cidr_list(root["allow"], "allow");
    if (root.contains("deny"))
        p.deny = parse_cidr_list(root["deny"], "deny");
    if (root.contains("global")) {
        expect_object(root["global"], "global", {"pps", "burst", "bytes_per_sec", "burst_bytes"});
        p.global = parse_limit(root["global"], "global");
    }

    // Adaptive limits, emergency and schedule name tiers and rules of this policy.
    const auto is_tier = [&](const std::string& n) {
        return std::any_of(p.tiers.begin(), p.tiers.end(), [&](const policy::Tier& t) { return t.name == n; });
    };
    for (std::size_t i = 0; i < cfg.adaptive.controller.order.size(); ++i)
        if (!is_tier(cfg.adaptive.controller.order[i]))
            fail(at_index("adaptive.tiers", i), in_quotes(cfg.adaptive.controller.order[i]) + " is not a tier");
    for (const auto& [tier, f] : cfg.emergency)
        if (!is_tier(tier))
            fail(join("emergency", tier), in_quotes(tier) + " is not a tier");
    for (std::size_t i = 0; i < cfg.schedule.size(); ++i) {
        const auto& o = cfg.schedule[i];
        const bool known = o.target == policy::Override::Target::tier
                               ? is_tier(o.name)
                               : std::any_of(p.rules.begin(), p.rules.end(), [&](const policy::Rule& r) { return r.name == o.name; });
        if (!known)
            fail(join(at_index("schedule", i), o.target == policy::Override::Target::tier ? "tier" : "rule"),
                 in_quotes(o.name) + " is not a " + (o.target == policy::Override::Target::tier ? "tier" : "rule"));
    }

    policy::CompiledPolicy compiled;
    try {
        compiled = policy::compile(p);
    } catch (const policy::PolicyError& e) {
        std::string reason = e.what();
        if (reason.starts_with(e.field() + ": "))
            reason.erase(0, e.field().size() + 2);
        fail(e.field(), reason);
    }
    // apply_policy writes the new slot while the old one is still live.
    if (compiled.class_entries.size() > cfg.maps.classes / 2)
        fail("maps.classes", "the policy has " + std::to_string(compiled.class_entries.size()) +
                                 " allow/deny/member prefixes; maps.classes must hold twice that (two policy slots)");
    return cfg;
}

}  // namespace


const char* to_string(AlertType t) {
    switch (t) {
    case AlertType::drop_ratio: return "drop_ratio";
    case AlertType::ban_rate: return "ban_rate";
    case AlertType::map_fill: return "map_fill";
    case AlertType::repeat_offender: return "repeat_offender";
    case AlertType::program_detached: return "program_detached";
    case AlertType::l7_redis_down: return "l7_redis_down";
    case AlertType::fleet_redis_down: return "fleet_redis_down";
    }
    return "?";
}

std::optional<Webhook> parse_webhook_url(std::string_view url, std::string* error) {
    auto bad = [&](const std::string& why) -> std::optional<Webhook> {
        if (error)
            *error = why;
        return std::nullopt;
    };
    if (url.starts_with("https://"))
        return bad("https is not supported: point the webhook at a local relay (http://127.0.0.1:PORT/...)");
    if (!url.starts_with("http://"))
        return bad("expected an http:// URL");
    Webhook h;
    h.url = std::string(url);
    auto rest = url.substr(7);
    const auto slash = rest.find('/');
    auto authority = rest.substr(0, slash);
    h.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    // host, host:port, [v6], [v6]:port
    const auto bracket = authority.find(']');
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos ? authority.find(':') == colon : colon > bracket)) {
        std::uint64_t port = 0;
        const auto p = authority.substr(colon + 1);
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535)
            return bad("bad port in " + std::string(url));
        h.port = static_cast<std::uint16_t>(port);
        authority = authority.substr(0, colon);
    }
    if (authority.empty())
        return bad("no host in " + std::string(url));
    h.host = std::string(authority);
    for (char c : h.path)
        if (c <= ' ' || c == 0x7f)
            return bad("the path must not contain spaces or control characters");
    return h;
}

Config parse_config(std::string_view text, const std::string& file) {
    return Parser(file).parse(text);
}

namespace {

// Leading decimal digits of `text` into `value`; returns the rest, or nullopt
// on no digits or overflow.
std::optional<std::string_view> leading_number(std::string_view text, std::uint64_t& value) {
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || ptr == text.data())
        return std::nullopt;
    return text.substr(static_cast<std::size_t>(ptr - text.data()));
}

std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
    if (b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b)
        return std::nullopt;
    return a * b;
}

}  // namespace

std::optional<std::uint64_t> parse_duration_ns(std::string_view text) {
    // from_chars accepts no sign and no spaces, so "-1s" and " 1s" fail here.
    std::uint64_t n = 0;
    const auto unit = leading_number(text, n);
    if (!unit)
        return std::nullopt;
    static constexpr std::pair<std::string_view, std::uint64_t> kUnits[] = {
        {"ms", 1'000'000ULL},          {"s", 1'000'000'000ULL},         {"m", 60'000'000'000ULL},
        {"h", 3'600'000'000'000ULL}, {"d", 86'400'000'000'000ULL}};
    for (const auto& [name, mult] : kUnits)
        if (*unit == name)
            return checked_mul(n, mult);
    return std::nullopt;
}

std::optional<std::uint64_t> parse_quantity(std::string_view text) {
    std::uint64_t n = 0;
    auto rest = leading_number(text, n);
    if (!rest)
        return std::nullopt;
    std::uint64_t mult = 1;
    if (!rest->empty()) {
        switch (rest->front()) {
        case 'k':
        case 'K': mult = 1'000ULL; break;
        case 'M': mult = 1'000'000ULL; break;
        case 'G': mult = 1'000'000'000ULL; break;
        case 'T': mult = 1'000'000'000'000ULL; break;
        default: break;
        }
        if (mult != 1)
            rest->remove_prefix(1);
    }
    if (*rest == "B" || *rest == "b")
        rest->remove_prefix(1);
    if (!rest->empty())
        return std::nullopt;
    return checked_mul(n, mult);
}

}  // namespace rlgate::config
