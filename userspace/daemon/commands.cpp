// SPDX-License-Identifier: BSD-2-Clause
// Control-socket commands of rlgated. Field names in the results are a
// stable interface (docs/rlctl.md): add fields, never rename them.
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <spdlog/spdlog.h>

#include "core/stats/names.hpp"
#include "core/stats/top_talkers.hpp"
#include "daemon/daemon.hpp"
#include "daemon/time_format.hpp"

#ifndef RLGATE_VERSION
#define RLGATE_VERSION "unknown"
#endif

namespace rlgate::daemon {

namespace asio = boost::asio;
using control::ProtocolError;
using nlohmann::json;
namespace code = control::code;

namespace {


net::Cidr parse_cidr_arg(const json& args) {
    const auto text = control::arg_string(args, "cidr");
    std::string err;
    auto c = net::Cidr::parse(text, &err);
    if (!c)
        throw ProtocolError(code::invalid_argument, "cidr: " + err);
    return *c;
}

json limit_json(const policy::RateLimit& l) {
    json j = json::object();
    if (l.packets_per_sec) {
        j["pps"] = l.packets_per_sec;
        j["burst"] = l.burst_packets;
    }
    if (l.bytes_per_sec) {
        j["bytes_per_sec"] = l.bytes_per_sec;
        j["burst_bytes"] = l.burst_bytes;
    }
    return j;
}

const char* state_name(std::uint8_t s) {
    switch (s) {
    case RL_STATE_LIMITED: return "limited";
    case RL_STATE_ALLOWED: return "allowed";
    case RL_STATE_DENIED: return "denied";
    case RL_STATE_BANNED: return "banned";
    case RL_STATE_AGGREGATED: return "aggregated";
    default: return "unknown";
    }
}

const char* protocol_name(policy::RuleProtocol p) {
    switch (p) {
    case policy::RuleProtocol::tcp: return "tcp";
    case policy::RuleProtocol::udp: return "udp";
    case policy::RuleProtocol::other: return "other";
    }
    return "?";
}

std::vector<stats::BucketSample> sample_buckets(const Dataplane& dp) {
    std::vector<stats::BucketSample> out;
    for (const auto& e : dp.snapshot_buckets())
        out.push_back({e.key, e.value.passed, e.value.dropped, e.value.state, e.value.tier});
    return out;
}

}  // namespace

void Daemon::handle(const control::Request& req, ControlServer::Reply reply, std::function<void()> subscribe) {
    const std::string& c = req.command;
    if (c == "top") {
        cmd_top(req, std::move(reply));
        return;
    }
    if (c == "events.subscribe") {
        subscribe();
        reply(control::make_result(req.id, {{"subscribed", true}}));
        return;
    }
    json result;
    if (c == "version")
        result = {{"version", RLGATE_VERSION}, {"protocol", control::kProtocolVersion}, {"abi", RL_ABI_VERSION}};
    else if (c == "status")
        result = cmd_status();
    else if (c == "stats")
        result = cmd_stats();
    else if (c == "policy.show")
        result = cmd_policy_show();
    else if (c == "policy.apply")
        result = cmd_policy_apply(req.args);
    else if (c == "reload")
        result = cmd_reload();
    else if (c.starts_with("allow.") || c.starts_with("deny."))
        result = cmd_list_edit(c, req.args);
    else if (c == "tier.list")
        result = cmd_tier_list();
    else if (c == "tier.set")
        result = cmd_tier_set(req.args);
    else if (c == "attach")
        result = cmd_attach(req.args);
    else if (c == "detach")
        result = cmd_detach(req.args);
    else if (c.starts_with("ban."))
        result = cmd_ban(c, req.args);
    else if (c == "fleet.status")
        result = cmd_fleet_status();
    else if (c.starts_with("override."))
        result = cmd_override(c, req.args);
    else if (c == "emergency")
        result = cmd_emergency(req.args);
    else if (c == "alerts")
        result = cmd_alerts();
    else if (c == "insights")
        result = cmd_insights();
    else if (c == "source")
        result = cmd_source(req.args);
    else
        throw ProtocolError(code::unknown_command, "unknown command '" + c + "' (rlctl and rlgated versions differ?)");
    reply(control::make_result(req.id, std::move(result)));
}

json Daemon::outcome_json(const ReloadOutcome& o) const {
    json j{{"ok", o.ok}, {"trigger", o.trigger}, {"time", iso8601(o.at)}, {"warnings", o.warnings}};
    if (o.ok)
        j["generation"] = o.generation;
    else
        j["error"] = o.error;
    return j;
}

json Daemon::cmd_status() const {
    json ifaces = json::array();
    for (const auto& [name, mode] : dataplane_->attachments())
        ifaces.push_back({{"name", name}, {"ifindex", if_nametoindex(name.c_str())}, {"mode", to_string(mode)},
                          {"link_alive", dataplane_->link_alive(name)}});
    json maps = json::array();
    for (const auto& m : dataplane_->map_fill())
        maps.push_back({{"name", m.name},
                        {"entries", m.entries},
                        {"max_entries", m.max_entries},
                        {"fill", m.max_entries ? static_cast<double>(m.entries) / static_cast<double>(m.max_entries) : 0.0}});
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
    return {{"version", RLGATE_VERSION},
            {"pid", ::getpid()},
            {"started_at", iso8601(started_wall_)},
            {"uptime_s", uptime.count()},
            {"config", options_.config_path},
            {"policy_source", policy_source_},
            {"policy_generation", dataplane_->policy_generation()},
            {"dry_run", effective_.dry_run},
            {"adopted", dataplane_->adopted()},
            {"pin_dir", config_.daemon.pin_dir},
            {"socket", config_.daemon.socket_path},
            {"admin", admin_ ? json("http://" + admin_->endpoint() + "/") : json(nullptr)},
            {"interfaces", ifaces},
            {"maps", maps},
            {"limits", scaling_json()},
            {"last_reload", outcome_json(last_reload_)}};
}

json Daemon::cmd_stats() const {
    // Totals are read now; rates come from the last two one-second samples.
    const Counters now = dataplane_->read_counters();
    double dt = 0;
    const Counters* before = nullptr;
    const Counters* after = nullptr;
    if (latest_ && previous_) {
        dt = std::chrono::duration<double>(latest_->at - previous_->at).count();
        before = &previous_->counters;
        after = &latest_->counters;
    }
    auto rate = [&](const CounterKey& k, std::uint64_t) -> double {
        if (!before || !after || dt <= 0)
            return 0.0;
        auto packets_in = [&](const Counters& c) {
            auto it = c.entries.find(k);
            return it == c.entries.end() ? std::uint64_t{0} : it->second.packets;
        };
        const auto a = packets_in(*after), b = packets_in(*before);
        return a >= b ? static_cast<double>(a - b) / dt : 0.0;
    };
    struct Sum {
        std::uint64_t packets = 0, bytes = 0;
        double pps = 0;
    };
    Sum passed, dropped;
    std::map<std::pair<std::uint32_t, std::uint32_t>, Sum> by_reason;
    json by_class = json::array();
    for (const auto& [k, v] : now.entries) {
        const double pps = rate(k, v.packets);
        auto& total = k.verdict == RL_VERDICT_DROP ? dropped : passed;
        total.packets += v.packets;
        total.bytes += v.bytes;
        total.pps += pps;
        auto& r = by_reason[{k.reason, k.verdict}];
        r.packets += v.packets;
        r.bytes += v.bytes;
        r.pps += pps;
        const bool classified = k.tier < tier_names_.size();
        by_class.push_back({{"tier", classified ? json(tier_names_[k.tier]) : json(nullptr)},
                            {"rule", classified && k.rule < rule_names_.size() ? json(rule_names_[k.rule]) : json(nullptr)},
                            {"reason", stats::reason_name(k.reason)},
                            {"verdict", stats::verdict_name(k.verdict)},
                            {"packets", v.packets},
                            {"bytes", v.bytes},
                            {"pps", pps}});
    }
    json reasons = json::array();
    for (const auto& [k, s] : by_reason)
        reasons.push_back({{"reason", stats::reason_name(k.first)},
                           {"verdict", stats::verdict_name(k.second)},
                           {"packets", s.packets},
                           {"bytes", s.bytes},
                           {"pps", s.pps}});
    json health = json::object();
    for (std::uint32_t h = 0; h < RL_HEALTH_MAX; ++h)
        health[std::string(stats::health_name(h))] = now.health[h];
    auto sum_json = [](const Sum& s) { return json{{"packets", s.packets}, {"bytes", s.bytes}, {"pps", s.pps}}; };
    json interfaces = json::array();
    for (const auto& [name, mode] : dataplane_->attachments()) {
        const auto ifindex = if_nametoindex(name.c_str());
        if (!ifindex)
            continue;
        const auto c = dataplane_->read_interface_counters(static_cast<int>(ifindex));
        json rows = json::array();
        for (std::uint32_t r = 0; r < RL_REASON_MAX; ++r)
            for (std::uint32_t v = 0; v < RL_VERDICTS; ++v)
                if (c[r][v].packets)
                    rows.push_back({{"reason", stats::reason_name(r)}, {"verdict", stats::verdict_name(v)},
                                    {"packets", c[r][v].packets}, {"bytes", c[r][v].bytes}});
        interfaces.push_back({{"name", name}, {"by_reason", rows}});
    }
    json l7 = json::array();
    for (const auto& [k, n] : l7_decisions_)
        l7.push_back({{"tier", std::get<0>(k)}, {"endpoint", std::get<1>(k)}, {"verdict", std::get<2>(k)}, {"count", n}});
    return {{"interval_s", dt},
            {"interfaces", interfaces},
            {"l7_decisions", l7},
            {"dry_run", effective_.dry_run},
            {"passed", sum_json(passed)},
            {"dropped", sum_json(dropped)},
            {"by_reason", reasons},
            {"by_class", by_class},
            {"health", health}};
}

void Daemon::cmd_top(const control::Request& req, ControlServer::Reply reply) {
    const auto n = control::arg_uint(req.args, "n", 10);
    const auto interval_ms = control::arg_uint(req.args, "interval_ms", 1000);
    if (n == 0 || n > 10000)
        throw ProtocolError(code::invalid_argument, "n must be 1..10000");
    if (interval_ms < 100 || interval_ms > 10000)
        throw ProtocolError(code::invalid_argument, "interval_ms must be 100..10000");
    auto before = std::make_shared<std::vector<stats::BucketSample>>(sample_buckets(*dataplane_));
    const auto t0 = std::chrono::steady_clock::now();
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(interval_ms));
    timer->async_wait([this, timer, before, t0, n, id = req.id, reply](boost::system::error_code ec) {
        if (ec)
            return;
        try {
            const auto after = sample_buckets(*dataplane_);
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            json talkers = json::array();
            for (const auto& t : stats::top_talkers(*before, after, secs, n))
                talkers.push_back(
                    {{"source", t.source.to_string()},
                     {"tier", t.state == RL_STATE_LIMITED || t.state == RL_STATE_AGGREGATED
                                  ? (t.tier < tier_names_.size() ? json(tier_names_[t.tier]) : json(nullptr))
                                  : json(nullptr)},
                     {"rule", t.rule < rule_names_.size() ? json(rule_names_[t.rule]) : json(nullptr)},
                     {"state", state_name(t.state)},
                     {"passed_pps", t.passed_pps},
                     {"dropped_pps", t.dropped_pps}});
            reply(control::make_result(id, {{"interval_s", secs}, {"talkers", talkers}}));
        } catch (const std::exception& e) {
            reply(control::make_error(id, code::failed, e.what()));
        }
    });
}

// What the dataplane keeps about one source: its entry per L4 rule (the
// bucket map is a keyed-hash array, so bpftool cannot look a source up).
json Daemon::cmd_source(const json& args) const {
    const std::string text = control::arg_string(args, "address");
    const auto ip = net::IpAddress::parse(text);
    if (!ip)
        throw ProtocolError(code::invalid_argument, "'" + text + "' is not an IPv4 or IPv6 address");
    const auto now_ns = dataplane_->clock().rl_now_ns;
    const auto ago_s = [&](std::uint64_t rl_ns) {
        return rl_ns && rl_ns <= now_ns ? json(static_cast<double>(now_ns - rl_ns) / 1e9) : json(nullptr);
    };
    const unsigned cls_prefix = ip->v4 ? 128 : dataplane_->v6_class_prefix();
    const auto cidr_of = [&](unsigned prefix128) {
        return net::Cidr{net::mask_address(*ip, prefix128), ip->v4 ? prefix128 - 96 : prefix128}.to_string();
    };
    json entries = json::array();
    for (std::uint32_t rule = 0; rule < RL_MAX_RULES; ++rule) {
        const auto b = dataplane_->lookup_bucket(bucket_key(*ip, cls_prefix, static_cast<std::uint8_t>(rule)));
        if (!b)
            continue;
        const bool classified = b->state == RL_STATE_LIMITED || b->state == RL_STATE_AGGREGATED;
        json e{{"rule", rule < rule_names_.size() ? json(rule_names_[rule]) : json(nullptr)},
               {"entry", cidr_of(cls_prefix)},
               {"state", state_name(b->state)},
               {"tier", classified && b->tier < tier_names_.size() ? json(tier_names_[b->tier]) : json(nullptr)},
               {"passed", b->passed},
               {"dropped", b->dropped},
               {"last_seen_s", ago_s(b->last_ns)},
               {"full_in_s", json(nullptr)}};
        const rl_bucket* bucket = &*b;
        std::optional<rl_bucket> shared;
        if (b->state == RL_STATE_AGGREGATED && b->bucket_prefix) {
            shared = dataplane_->lookup_bucket(bucket_key(*ip, b->bucket_prefix, static_cast<std::uint8_t>(rule)));
            e["shared_bucket"] = cidr_of(b->bucket_prefix);
            if (shared) {
                e["shared_passed"] = shared->passed;
                e["shared_dropped"] = shared->dropped;
                bucket = &*shared;
            }
        }
        // GCRA: the theoretical arrival time is when the whole burst is
        // back; ahead of now by burst x interval means the source is refused.
        const std::uint64_t tat_ns = bucket->pkt_tat_q >> RL_Q_SHIFT;
        if (classified && tat_ns > now_ns)
            e["full_in_s"] = static_cast<double>(tat_ns - now_ns) / 1e9;
        entries.push_back(std::move(e));
    }
    return {{"address", ip->to_string()}, {"entries", entries}};
}

json Daemon::cmd_policy_show() const {
    auto origin_of = [](const std::vector<net::Cidr>& base, const net::Cidr& c) {
        return std::find(base.begin(), base.end(), c) != base.end() ? "config" : "runtime";
    };
    json tiers = json::array();
    for (std::size_t i = 0; i < effective_.tiers.size(); ++i) {
        const auto& t = effective_.tiers[i];
        json tj{{"id", i}, {"name", t.name}, {"limit", limit_json(t.limit)}, {"prefix_v4", t.prefix_v4},
                {"prefix_v6", t.prefix_v6}, {"default", t.name == (effective_.default_tier.empty() ? effective_.tiers[0].name : effective_.default_tier)}};
        if (t.autoban.drops)
            tj["autoban"] = {{"drops", t.autoban.drops},
                             {"window_s", static_cast<double>(t.autoban.window_ns) / 1e9},
                             {"ban_s", static_cast<double>(t.autoban.ban_ns) / 1e9}};
        tiers.push_back(tj);
    }
    json rules = json::array();
    for (const auto& r : effective_.rules) {
        json rj{{"name", r.name}, {"proto", protocol_name(r.protocol)}, {"limit", limit_json(r.limit)}};
        if (r.protocol != policy::RuleProtocol::other)
            rj["ports"] = {r.port_first, r.port_last};
        if (r.syn_only)
            rj["syn_only"] = true;
        for (const auto& [tier, l] : r.tier_limits)
            rj["tiers"][tier] = limit_json(l);
        rules.push_back(rj);
    }
    json allow = json::array(), deny = json::array(), members = json::array();
    for (const auto& c : effective_.allow)
        allow.push_back({{"cidr", c.to_string()}, {"origin", origin_of(base_policy_.allow, c)}});
    for (const auto& c : effective_.deny)
        deny.push_back({{"cidr", c.to_string()}, {"origin", origin_of(base_policy_.deny, c)}});
    for (const auto& m : effective_.members) {
        const bool runtime = std::any_of(overlay_.members.begin(), overlay_.members.end(),
                                         [&](const policy::TierMember& o) { return o.prefix == m.prefix; });
        members.push_back({{"cidr", m.prefix.to_string()}, {"tier", m.tier}, {"origin", runtime ? "runtime" : "config"}});
    }
    return {{"generation", dataplane_->policy_generation()},
            {"source", policy_source_},
            {"dry_run", effective_.dry_run},
            {"drop_malformed", effective_.drop_malformed},
            {"global", limit_json(effective_.global)},
            {"tiers", tiers},
            {"rules", rules},
            {"allow", allow},
            {"deny", deny},
            {"members", members}};
}

json Daemon::cmd_policy_apply(const json& args) {
    const auto text = control::arg_string(args, "text");
    const auto file = control::arg_optional_string(args, "file").value_or("(rlctl policy apply)");
    config::Config parsed;
    try {
        parsed = config::parse_config(text, file);
    } catch (const config::ConfigError& e) {
        throw ProtocolError(code::invalid_config, e.what(),
                            {{"file", e.file()}, {"field", e.field()}, {"reason", e.reason()}});
    }
    const auto old = base_policy_;
    base_policy_ = parsed.policy;
    std::vector<std::string> warnings;
    std::uint32_t gen = 0;
    try {
        gen = apply_effective_policy(warnings);
    } catch (const policy::PolicyError& e) {
        base_policy_ = old;
        throw ProtocolError(code::invalid_config, e.what(), {{"file", file}, {"field", e.field()}, {"reason", e.what()}});
    } catch (...) {
        base_policy_ = old;
        throw;
    }
    policy_source_ = file + " (rlctl policy apply; the next reload returns to " + options_.config_path + ")";
    spdlog::info("policy from {} applied by rlctl: generation {}", file, gen);
    return {{"generation", gen}, {"warnings", warnings}};
}

json Daemon::cmd_reload() {
    const auto out = reload_from_file("rlctl reload");
    if (!out.ok) {
        std::string msg = "config rejected, the running policy stays in force";
        if (out.error.contains("field"))
            msg = out.error.value("file", "") + ": " + out.error.value("field", "") + ": " + out.error.value("reason", "");
        else if (out.error.contains("message"))
            msg = out.error.value("message", msg);
        throw ProtocolError(code::invalid_config, msg, out.error);
    }
    return outcome_json(out);
}

json Daemon::cmd_list_edit(const std::string& cmd, const json& args) {
    const bool allow = cmd.starts_with("allow.");
    const auto kind = allow ? config::ListKind::allow : config::ListKind::deny;
    const std::string verb = cmd.substr(cmd.find('.') + 1);
    if (verb == "list") {
        json out = json::array();
        const auto& base = allow ? base_policy_.allow : base_policy_.deny;
        for (const auto& c : allow ? effective_.allow : effective_.deny)
            out.push_back({{"cidr", c.to_string()},
                           {"origin", std::find(base.begin(), base.end(), c) != base.end() ? "config" : "runtime"}});
        return {{"entries", out}};
    }
    const auto cidr = parse_cidr_arg(args);
    bool changed = false;
    try {
        if (verb == "add")
            change_overlay([&](config::RuntimeOverlay& o) { changed = config::add_entry(o, kind, cidr, base_policy_); });
        else if (verb == "del")
            change_overlay([&](config::RuntimeOverlay& o) { changed = config::remove_entry(o, kind, cidr, base_policy_); });
        else
            throw ProtocolError(code::unknown_command, "unknown command '" + cmd + "'");
    } catch (const policy::PolicyError& e) {
        throw ProtocolError(code::invalid_argument, e.what());
    }
    if (verb == "del" && !changed)
        throw ProtocolError(code::not_found, cidr.to_string() + " is not on the " + (allow ? "allowlist" : "denylist"));
    if (changed)
        spdlog::info("{} {} {} (rlctl)", allow ? "allowlist" : "denylist", verb == "add" ? "+" : "-", cidr.to_string());
    return {{"changed", changed}, {"generation", dataplane_->policy_generation()}};
}

json Daemon::cmd_tier_list() const {
    std::map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> usage;  // tier -> passed, dropped
    if (latest_)
        for (const auto& [k, v] : latest_->counters.entries)
            (k.verdict == RL_VERDICT_DROP ? usage[k.tier].second : usage[k.tier].first) += v.packets;
    json out = json::array();
    for (std::size_t i = 0; i < effective_.tiers.size(); ++i) {
        const auto& t = effective_.tiers[i];
        const auto members = std::count_if(effective_.members.begin(), effective_.members.end(),
                                           [&](const policy::TierMember& m) { return m.tier == t.name; });
        const auto u = usage[static_cast<std::uint32_t>(i)];
        out.push_back({{"id", i},
                       {"name", t.name},
                       {"limit", limit_json(t.limit)},
                       {"prefix_v4", t.prefix_v4},
                       {"prefix_v6", t.prefix_v6},
                       {"members", members},
                       {"passed_packets", u.first},
                       {"dropped_packets", u.second}});
    }
    return {{"tiers", out}};
}

json Daemon::cmd_tier_set(const json& args) {
    const auto cidr = parse_cidr_arg(args);
    const auto tier = control::arg_string(args, "tier");
    if (std::none_of(effective_.tiers.begin(), effective_.tiers.end(), [&](const policy::Tier& t) { return t.name == tier; }))
        throw ProtocolError(code::not_found, "no tier named '" + tier + "'");
    try {
        change_overlay([&](config::RuntimeOverlay& o) { config::set_tier(o, cidr, tier); });
    } catch (const policy::PolicyError& e) {
        throw ProtocolError(code::invalid_argument, e.what());
    }
    spdlog::info("tier of {} set to {} (rlctl)", cidr.to_string(), tier);
    return {{"generation", dataplane_->policy_generation()}};
}

json Daemon::cmd_attach(const json& args) {
    const auto ifname = control::arg_string(args, "interface");
    const auto mode_text = control::arg_optional_string(args, "mode").value_or("native");
    const auto mode = config::parse_attach_mode(mode_text);
    if (!mode)
        throw ProtocolError(code::invalid_argument, "mode must be native, generic or auto");
    if (dataplane_->attachments().contains(ifname))
        throw ProtocolError(code::invalid_argument, ifname + " is already attached");
    const auto used = dataplane_->attach(ifname, to_dataplane_mode(*mode));
    const auto old = overlay_;
    config::note_attached(overlay_, {ifname, *mode}, config_.interfaces);
    try {
        save_overlay();
    } catch (...) {
        overlay_ = old;
        dataplane_->detach(ifname);
        throw;
    }
    return {{"interface", ifname}, {"mode", to_string(used)}};
}

json Daemon::cmd_detach(const json& args) {
    if (control::arg_bool(args, "all", false)) {
        dataplane_->remove_pinned_state();
        spdlog::warn("rlctl detach: every interface detached and the pinned state under {} removed; stopping",
                     config_.daemon.pin_dir);
        // Stop after the reply has gone out.
        auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(200));
        timer->async_wait([this, timer](boost::system::error_code) { io_.stop(); });
        return {{"detached", "all"}, {"stopping", true}};
    }
    const auto ifname = control::arg_string(args, "interface");
    if (!dataplane_->attachments().contains(ifname))
        throw ProtocolError(code::not_found, ifname + " is not attached");
    dataplane_->detach(ifname);
    config::note_detached(overlay_, ifname, config_.interfaces);
    save_overlay();
    return {{"interface", ifname}, {"detached", true}};
}

json Daemon::event_json(const rl_event& ev) const {
    net::IpAddress a;
    std::memcpy(a.bytes.data(), ev.addr, 16);
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    a.v4 = std::memcmp(ev.addr, mapped, 12) == 0;
    net::Cidr src{a, a.v4 ? (ev.prefixlen >= 96 ? ev.prefixlen - 96U : 0U) : ev.prefixlen};
    char ifname[IF_NAMESIZE] = {};
    const bool tiered = ev.tier < tier_names_.size();
    json j{{"event", ev.type == RL_EVENT_AUTOBAN ? "autoban" : "drop"},
           {"time", iso8601(std::chrono::system_clock::now())},
           {"source", src.to_string()},
           {"interface", if_indextoname(ev.ifindex, ifname) ? ifname : std::to_string(ev.ifindex)},
           {"tier", tiered ? json(tier_names_[ev.tier]) : json(nullptr)},
           {"rule", tiered && ev.rule < rule_names_.size() ? json(rule_names_[ev.rule]) : json(nullptr)},
           {"reason", stats::reason_name(ev.reason)}};
    if (ev.type == RL_EVENT_AUTOBAN) {
        j["drops"] = ev.drops;
        j["ban_s"] = static_cast<double>(ev.ban_ns) / 1e9;
    }
    return j;
}

}  // namespace rlgate::daemon
