// SPDX-License-Identifier: BSD-2-Clause
// What rlgated shows and tells: the admin HTTP API and /metrics, alerts
// with their webhooks, tuning insights, and what rlgate-l7 reports.
#include <net/if.h>
#include <unistd.h>

#include <charconv>

#include <spdlog/spdlog.h>

#include "core/metrics/exposition.hpp"
#include "core/stats/insights.hpp"
#include "core/stats/names.hpp"
#include "daemon/daemon.hpp"
#include "daemon/dashboard.hpp"
#include "daemon/time_format.hpp"

#ifndef RLGATE_VERSION
#define RLGATE_VERSION "unknown"
#endif

namespace rlgate::daemon {

using control::ProtocolError;
using metrics::Exposition;
using nlohmann::json;
namespace code = control::code;

namespace {

constexpr std::size_t kRecentAlerts = 200;

std::string hostname() {
    char buf[256] = {};
    return ::gethostname(buf, sizeof buf - 1) == 0 ? std::string(buf) : std::string("unknown");
}

unsigned http_status_of(const std::string& error_code) {
    if (error_code == code::not_found || error_code == code::unknown_command)
        return 404;
    if (error_code == code::invalid_config)
        return 422;
    if (error_code == code::failed)
        return 500;
    if (error_code == code::rate_limited)
        return 429;
    return 400;
}

}  // namespace

void Daemon::open_admin() {
    if (config_.admin.listen.empty())
        return;
    admin_ = std::make_unique<AdminServer>(io_, config_.admin, [this](const HttpRequest& req, AdminServer::Reply reply) {
        handle_http(req, std::move(reply));
    });
}

void Daemon::handle_http(const HttpRequest& req, AdminServer::Reply reply) {
    if (req.path == "/metrics") {
        if (req.method != "GET")
            return reply({405, "application/json", R"({"error":"method_not_allowed"})", {{"Allow", "GET"}}});
        return reply({200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(), {}});
    }
    if (req.path == "/" || req.path == "/dashboard") {
        if (req.method != "GET")
            return reply({405, "application/json", R"({"error":"method_not_allowed"})", {{"Allow", "GET"}}});
        return reply({200, "text/html; charset=utf-8", std::string(kDashboardHtml), {}});
    }
    // The JSON API: the control socket's commands over HTTP, with the same results.
    static const std::map<std::string, std::pair<std::string, std::string>> kRoutes = {
        {"/api/v1/status", {"GET", "status"}},       {"/api/v1/stats", {"GET", "stats"}},
        {"/api/v1/top", {"GET", "top"}},             {"/api/v1/policy", {"GET", "policy.show"}},
        {"/api/v1/tiers", {"GET", "tier.list"}},     {"/api/v1/bans", {"GET", "ban.list"}},
        {"/api/v1/history", {"GET", "ban.history"}}, {"/api/v1/alerts", {"GET", "alerts"}},
        {"/api/v1/insights", {"GET", "insights"}},   {"/api/v1/ban", {"POST", "ban.add"}},
        {"/api/v1/limits", {"GET", "override.list"}},
        {"/api/v1/unban", {"POST", "ban.del"}},      {"/api/v1/version", {"GET", "version"}},
    };
    const auto route = kRoutes.find(req.path);
    if (route == kRoutes.end())
        return reply({404, "application/json", R"({"error":"not_found","message":"no such endpoint"})", {}});
    if (req.method != route->second.first)
        return reply({405, "application/json", R"({"error":"method_not_allowed"})", {{"Allow", route->second.first}}});
    control::Request creq;
    creq.command = route->second.second;
    if (req.method == "POST") {
        creq.args = json::parse(req.body, nullptr, false);
        if (!creq.args.is_object())
            return reply({400, "application/json", R"({"error":"bad_json","message":"the body must be a JSON object"})", {}});
    } else {
        for (const auto& [k, v] : req.query) {  // numbers stay numbers: "n=5" -> 5
            std::uint64_t n = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            creq.args[k] = ec == std::errc{} && end == v.data() + v.size() && !v.empty() ? json(n) : json(v);
        }
    }
    auto to_http = [reply](json envelope) {
        if (envelope.value("ok", false))
            return reply({200, "application/json", envelope["result"].dump(), {}});
        const auto& err = envelope["error"];
        reply({http_status_of(err.value("code", "failed")), "application/json",
               json{{"error", err.value("code", "failed")}, {"message", err.value("message", "")}}.dump(), {}});
    };
    try {
        handle(creq, to_http, [] {});
    } catch (const ProtocolError& e) {
        to_http(control::make_error(nullptr, e.code(), e.what()));
    } catch (const std::exception& e) {
        to_http(control::make_error(nullptr, code::failed, e.what()));
    }
}

std::string Daemon::metrics_text() const {
    Exposition m;
    const auto counters = dataplane_->read_counters();
    for (const char* unit : {"packets", "bytes"}) {
        const std::string name = std::string("rlgate_") + unit + "_total";
        m.family(name, "counter", std::string(unit) + " seen by the XDP program, by tier, L4 rule, reason and verdict.");
        for (const auto& [k, v] : counters.entries) {
            const bool classified = k.tier < tier_names_.size();
            m.sample(name,
                     {{"tier", classified ? tier_names_[k.tier] : "none"},
                      {"rule", classified && k.rule < rule_names_.size() ? rule_names_[k.rule] : "none"},
                      {"reason", std::string(stats::reason_name(k.reason))},
                      {"verdict", std::string(stats::verdict_name(k.verdict))}},
                     unit[0] == 'p' ? v.packets : v.bytes);
        }
    }
    const auto attachments = dataplane_->attachments();
    std::vector<std::pair<std::string, Dataplane::InterfaceCounters>> per_if;
    for (const auto& [name, mode] : attachments)
        if (const auto ifindex = if_nametoindex(name.c_str()))
            per_if.emplace_back(name, dataplane_->read_interface_counters(static_cast<int>(ifindex)));
    for (const char* unit : {"packets", "bytes"}) {
        const std::string name = std::string("rlgate_interface_") + unit + "_total";
        m.family(name, "counter", std::string(unit) + " seen on each attached interface, by reason and verdict.");
        for (const auto& [ifname, c] : per_if)
            for (std::uint32_t r = 0; r < RL_REASON_MAX; ++r)
                for (std::uint32_t v = 0; v < RL_VERDICTS; ++v)
                    if (c[r][v].packets)
                        m.sample(name,
                                 {{"interface", ifname},
                                  {"reason", std::string(stats::reason_name(r))},
                                  {"verdict", std::string(stats::verdict_name(v))}},
                                 unit[0] == 'p' ? c[r][v].packets : c[r][v].bytes);
    }
    m.family("rlgate_dataplane_events_total", "counter", "Health events of the XDP program (bucket inserts, CAS retries, auto-bans ...).");
    for (std::uint32_t h = 0; h < RL_HEALTH_MAX; ++h)
        m.sample("rlgate_dataplane_events_total", {{"event", std::string(stats::health_name(h))}}, counters.health[h]);
    m.family("rlgate_interface_attached", "gauge", "1 for each interface the program is attached to, with the XDP mode.");
    for (const auto& [name, mode] : attachments)
        m.sample("rlgate_interface_attached", {{"interface", name}, {"mode", to_string(mode)}},
                 std::uint64_t{dataplane_->link_alive(name) ? 1U : 0U});  // 0: detached behind our back
    m.family("rlgate_map_entries", "gauge", "Entries in the dataplane's maps (refreshed every 10 s).");
    for (const auto& f : fill_cache_)
        m.sample("rlgate_map_entries", {{"map", f.name}}, static_cast<std::uint64_t>(f.entries));
    m.family("rlgate_map_capacity_entries", "gauge", "Capacity of the dataplane's maps.");
    for (const auto& f : fill_cache_)
        m.sample("rlgate_map_capacity_entries", {{"map", f.name}}, static_cast<std::uint64_t>(f.max_entries));
    m.family("rlgate_bans", "gauge", "Bans in force, by origin.");
    std::map<std::string, std::uint64_t> by_origin{{"manual", 0}, {"kernel", 0}, {"l7", 0}, {"peer", 0}};
    for (const auto& [p, r] : ban_book_.records())
        ++by_origin[r.origin];
    for (const auto& [origin, n] : by_origin)
        m.sample("rlgate_bans", {{"origin", origin}}, n);
    m.family("rlgate_violations_total", "counter", "Violations recorded since the daemon started, by origin.");
    for (const char* origin : {"kernel", "l7"}) {
        const auto it = violations_total_.find(origin);
        m.sample("rlgate_violations_total", {{"origin", origin}}, it == violations_total_.end() ? std::uint64_t{0} : it->second);
    }
    m.family("rlgate_policy_generation", "gauge", "Generation of the policy in force.");
    m.sample("rlgate_policy_generation", {}, static_cast<std::uint64_t>(dataplane_->policy_generation()));
    m.family("rlgate_dry_run", "gauge", "1 when drops are only counted (dry-run).");
    m.sample("rlgate_dry_run", {}, std::uint64_t{effective_.dry_run ? 1U : 0U});
    m.family("rlgate_config_reloads_total", "counter", "Config reloads since the daemon started, by result.");
    m.sample("rlgate_config_reloads_total", {{"result", "ok"}}, reloads_ok_);
    m.sample("rlgate_config_reloads_total", {{"result", "rejected"}}, reloads_rejected_);
    m.family("rlgate_alerts_firing", "gauge", "1 while an alert fires.");
    if (alert_engine_)
        for (const auto& a : alert_engine_->status())
            m.sample("rlgate_alerts_firing", {{"alert", a.name}},
                     std::uint64_t{a.state == alerts::State::firing || a.state == alerts::State::resolving ? 1U : 0U});
    m.family("rlgate_alert_notifications_total", "counter", "Webhook deliveries, by webhook and result.");
    for (const auto& w : webhooks_) {
        m.sample("rlgate_alert_notifications_total", {{"webhook", w->hook().url}, {"result", "delivered"}}, w->queue().delivered_count());
        m.sample("rlgate_alert_notifications_total", {{"webhook", w->hook().url}, {"result", "failed_attempt"}}, w->queue().failures());
        m.sample("rlgate_alert_notifications_total", {{"webhook", w->hook().url}, {"result", "dropped"}}, w->queue().dropped());
    }
    m.family("rlgate_l7_decisions_total", "counter", "Decisions reported by rlgate-l7, by tier, endpoint class and verdict.");
    for (const auto& [k, n] : l7_decisions_)
        m.sample("rlgate_l7_decisions_total",
                 {{"tier", std::get<0>(k)}, {"endpoint", std::get<1>(k)}, {"verdict", std::get<2>(k)}}, n);
    m.family("rlgate_tier_limit_factor", "gauge",
             "Each tier's packet rate now over its configured rate (overrides, emergency, adaptive controller).");
    for (const auto& t : effective_.tiers)
        for (const auto& b : base_policy_.tiers)
            if (b.name == t.name && b.limit.packets_per_sec)
                m.sample("rlgate_tier_limit_factor", {{"tier", t.name}},
                         static_cast<double>(t.limit.packets_per_sec) / static_cast<double>(b.limit.packets_per_sec));
    m.family("rlgate_emergency", "gauge", "1 while emergency mode is on (rlctl emergency on).");
    m.sample("rlgate_emergency", {}, std::uint64_t{overlay_.emergency ? 1U : 0U});
    if (controller_) {
        m.family("rlgate_adaptive_level", "gauge", "Steps the adaptive controller has taken down (0: configured limits).");
        m.sample("rlgate_adaptive_level", {}, static_cast<std::uint64_t>(controller_->level()));
        m.family("rlgate_load_ratio", "gauge", "Each load signal over its configured high level (1: overloaded).");
        for (const auto& [signal, ratio] : load_signals_)
            m.sample("rlgate_load_ratio", {{"signal", signal}}, ratio);
    }
    if (fleet_) {
        const auto& c = fleet_->counts();
        m.family("rlgate_fleet_redis_up", "gauge", "Fleet mode: 1 when the fleet's Redis answers and the subscription holds.");
        m.sample("rlgate_fleet_redis_up", {}, std::uint64_t{fleet_->up() ? 1U : 0U});
        m.family("rlgate_fleet_peers", "gauge", "Fleet mode: other hosts with a heartbeat in the last day.");
        m.sample("rlgate_fleet_peers", {}, static_cast<std::uint64_t>(fleet_->peers_seen()));
        m.family("rlgate_fleet_bans_total", "counter",
                 "Fleet mode: bans and unbans published by this host, kept local (over budget), and applied from peers.");
        m.sample("rlgate_fleet_bans_total", {{"event", "published"}}, c.published);
        m.sample("rlgate_fleet_bans_total", {{"event", "kept_local"}}, c.publish_dropped);
        m.sample("rlgate_fleet_bans_total", {{"event", "applied"}}, c.applied);
        m.sample("rlgate_fleet_bans_total", {{"event", "invalid"}}, c.invalid);
    }
    m.family("rlgate_build_info", "gauge", "Version of rlgated.");
    m.sample("rlgate_build_info", {{"version", RLGATE_VERSION}}, std::uint64_t{1});
    m.family("rlgate_start_time_seconds", "gauge", "Start of the daemon, Unix time.");
    m.sample("rlgate_start_time_seconds", {},
             static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(started_wall_.time_since_epoch()).count()));
    return m.text();
}

void Daemon::start_alerts() {
    alert_engine_ = std::make_unique<alerts::AlertEngine>(config_.alerts.rules);
    for (const auto& hook : config_.alerts.webhooks)
        webhooks_.push_back(std::make_shared<WebhookSender>(io_, hook, config_.alerts.queue, config_.alerts.max_backoff_ns));
}

void Daemon::evaluate_alerts() {
    if (!alert_engine_ || alert_engine_->rules().empty())
        return;
    const auto now = now_ms();
    const auto mono = std::chrono::steady_clock::now();
    for (const auto& rule : alert_engine_->rules()) {
        std::optional<double> value;
        std::string subject;
        const auto window = std::chrono::nanoseconds(rule.window_ns);
        switch (rule.type) {
        case config::AlertType::drop_ratio: {
            if (totals_.size() < 2)
                break;
            const auto last = totals_.back();
            auto first = totals_.front();
            for (const auto& t : totals_)
                if (last.at - t.at <= window) {
                    first = t;
                    break;
                }
            const auto seen = (last.passed - first.passed) + (last.dropped - first.dropped);
            value = seen ? static_cast<double>(last.dropped - first.dropped) / static_cast<double>(seen) : 0.0;
            break;
        }
        case config::AlertType::ban_rate: {
            const auto since = now - static_cast<std::int64_t>(rule.window_ns / 1'000'000);
            std::uint64_t n = 0;
            for (auto it = ban_book_.history().rbegin(); it != ban_book_.history().rend() && it->time_ms >= since; ++it)
                ++n;
            value = static_cast<double>(n) * 60e9 / static_cast<double>(rule.window_ns);  // per minute
            break;
        }
        case config::AlertType::map_fill:
            for (const auto& f : fill_cache_)
                if (f.name == rule.map && f.max_entries) {
                    value = static_cast<double>(f.entries) / static_cast<double>(f.max_entries);
                    subject = f.name;
                }
            break;
        case config::AlertType::repeat_offender: {
            const auto since = now - static_cast<std::int64_t>(rule.window_ns / 1'000'000);
            std::map<net::Cidr, std::uint64_t> per_source;
            for (auto it = ban_book_.history().rbegin(); it != ban_book_.history().rend() && it->time_ms >= since; ++it)
                ++per_source[it->source];
            value = 0.0;
            for (const auto& [src, n] : per_source)
                if (static_cast<double>(n) > *value) {
                    value = static_cast<double>(n);
                    subject = src.to_string();
                }
            break;
        }
        case config::AlertType::program_detached: {
            const auto desired = config::effective_interfaces(config_.interfaces, overlay_);
            const auto live = dataplane_->attachments();
            value = 0.0;
            for (const auto& d : desired)
                if (!live.contains(d.name) || !dataplane_->link_alive(d.name)) {
                    value = 1.0;
                    subject = d.name;
                }
            break;
        }
        case config::AlertType::l7_redis_down:
            // Only rlgate-l7 knows; a report older than a minute is no data.
            if (l7_redis_up_ && mono - l7_report_at_ < std::chrono::minutes(1))
                value = *l7_redis_up_ ? 0.0 : 1.0;
            break;
        case config::AlertType::fleet_redis_down:
            value = fleet_ && !fleet_->up() ? 1.0 : 0.0;
            break;
        }
        if (auto n = alert_engine_->observe(rule.name, value, subject, now))
            notify(*n);
    }
}

void Daemon::notify(const alerts::Notification& n) {
    const json payload{{"alert", n.alert},      {"type", n.type},          {"status", n.status},
                       {"value", n.value},      {"threshold", n.threshold}, {"subject", n.subject},
                       {"since", iso8601_ms(n.since_ms)}, {"at", iso8601_ms(n.at_ms)}, {"host", hostname()}};
    if (n.status == "firing")
        spdlog::warn("alert {} firing: {} {} above {} ({})", n.alert, n.type, n.value, n.threshold, n.subject);
    else
        spdlog::info("alert {} resolved ({} = {})", n.alert, n.type, n.value);
    recent_alerts_.push_back(n);
    while (recent_alerts_.size() > kRecentAlerts)
        recent_alerts_.pop_front();
    for (const auto& w : webhooks_)
        w->push(payload.dump());
    if (control_)
        control_->broadcast({{"event", "alert"}, {"time", iso8601_ms(n.at_ms)}, {"alert", n.alert}, {"status", n.status},
                             {"value", n.value}, {"subject", n.subject}});
}

json Daemon::cmd_alerts() const {
    json current = json::array();
    if (alert_engine_)
        for (const auto& a : alert_engine_->status())
            current.push_back({{"name", a.name},
                               {"type", a.type},
                               {"state", alerts::to_string(a.state)},
                               {"value", a.value},
                               {"subject", a.subject},
                               {"since", a.since_ms ? json(iso8601_ms(a.since_ms)) : json(nullptr)}});
    json recent = json::array();
    for (auto it = recent_alerts_.rbegin(); it != recent_alerts_.rend(); ++it)
        recent.push_back({{"alert", it->alert}, {"status", it->status}, {"value", it->value}, {"subject", it->subject},
                          {"at", iso8601_ms(it->at_ms)}});
    json hooks = json::array();
    for (const auto& w : webhooks_)
        hooks.push_back({{"url", w->hook().url},
                         {"waiting", w->queue().size()},
                         {"delivered", w->queue().delivered_count()},
                         {"failed_attempts", w->queue().failures()},
                         {"dropped", w->queue().dropped()}});
    return {{"alerts", current}, {"recent", recent}, {"webhooks", hooks}};
}

json Daemon::cmd_insights() const {
    const auto counters = dataplane_->read_counters();
    std::map<std::pair<std::uint32_t, std::uint32_t>, stats::ClassUsage> by_class;
    for (const auto& [k, v] : counters.entries) {
        if (k.tier >= tier_names_.size())
            continue;
        auto& u = by_class[{k.tier, k.rule}];
        u.tier = tier_names_[k.tier];
        u.rule = k.rule < rule_names_.size() ? rule_names_[k.rule] : "none";
        if (k.reason == RL_REASON_RATE)
            u.limited += v.packets;
        else if (k.reason == RL_REASON_WITHIN_LIMIT)
            u.passed += v.packets;
    }
    std::vector<stats::ClassUsage> usage;
    for (auto& [k, u] : by_class)
        usage.push_back(u);
    json advice = json::array();
    for (const auto& i : stats::tuning_insights(usage))
        advice.push_back({{"kind", i.kind}, {"tier", i.tier}, {"rule", i.rule}, {"passed", i.passed},
                          {"limited", i.limited}, {"limited_share", i.limited_share}, {"advice", i.advice}});
    std::map<net::Cidr, std::uint64_t> offences;
    for (const auto& v : ban_book_.history())
        ++offences[v.source];
    std::vector<std::pair<std::uint64_t, net::Cidr>> ranked;
    for (const auto& [src, n] : offences)
        ranked.emplace_back(n, src);
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    json clients = json::array();
    for (std::size_t i = 0; i < ranked.size() && i < 10; ++i)
        clients.push_back({{"source", ranked[i].second.to_string()}, {"violations", ranked[i].first}});
    json unused = json::array();
    for (const auto& t : effective_.tiers) {
        const bool seen = std::any_of(usage.begin(), usage.end(), [&](const auto& u) { return u.tier == t.name; });
        if (!seen)
            unused.push_back(t.name);
    }
    return {{"limits", advice}, {"top_offenders", clients}, {"idle_tiers", unused}};
}

void Daemon::handle_l7_report(const json& args, const std::string& peer) {
    note_l7_load(args, peer);
    if (auto it = args.find("decisions"); it != args.end()) {
        if (!it->is_array() || it->size() > 10'000)
            throw ProtocolError(code::invalid_argument, "decisions: an array of at most 10,000 entries");
        for (const auto& d : *it) {
            if (!d.is_object())
                throw ProtocolError(code::invalid_argument, "decisions: objects {tier, endpoint, verdict, count}");
            auto field = [&](const char* k) {
                const auto s = control::arg_string(d, k);
                if (s.size() > 64)
                    throw ProtocolError(code::invalid_argument, std::string(k) + " longer than 64 bytes");
                return s;
            };
            const auto key = std::make_tuple(field("tier"), field("endpoint"), field("verdict"));
            if (!l7_decisions_.contains(key) && l7_decisions_.size() >= 4096)
                throw ProtocolError(code::invalid_argument, "too many distinct L7 label sets (4096)");
            l7_decisions_[key] += control::arg_uint(d, "count", 0);
        }
    }
    if (const auto redis = control::arg_optional_string(args, "redis")) {
        if (*redis != "up" && *redis != "down" && *redis != "unused")
            throw ProtocolError(code::invalid_argument, "redis: up, down or unused");
        l7_redis_up_ = *redis == "unused" ? std::nullopt : std::optional<bool>(*redis == "up");
        l7_report_at_ = std::chrono::steady_clock::now();
    }
}

}  // namespace rlgate::daemon
