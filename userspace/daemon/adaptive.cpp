// SPDX-License-Identifier: BSD-2-Clause
// Limits that change while rlgated runs (core/policy/scaling, controller):
// the load signals sampled every second, the controller's steps, operator
// overrides and emergency mode, and re-applying the policy when any of them
// changes what the maps must hold.
#include <net/if.h>

#include <fstream>
#include <set>
#include <sstream>
#include <spdlog/spdlog.h>

#include "daemon/daemon.hpp"
#include "daemon/time_format.hpp"

namespace rlgate::daemon {

using control::ProtocolError;
using nlohmann::json;
namespace code = control::code;

namespace {

// Seconds of softirq and of all time, per CPU, from /proc/stat.
std::vector<std::pair<std::uint64_t, std::uint64_t>> read_cpu_times() {
    std::ifstream in("/proc/stat");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("cpu") || line.size() < 4 || line[3] == ' ')
            continue;  // "cpu " is the sum; "cpuN" each CPU
        std::istringstream fields(line.substr(line.find(' ')));
        std::uint64_t v = 0, total = 0, softirq = 0;
        for (int i = 0; fields >> v; ++i) {
            if (i < 8)  // user nice system idle iowait irq softirq steal (guest is in user)
                total += v;
            if (i == 6)
                softirq = v;
        }
        out.emplace_back(softirq, total);
    }
    return out;
}

}  // namespace

policy::Scaling Daemon::current_scaling(std::vector<std::string>* warnings) const {
    policy::Scaling s;
    // The schedule first, the operator's overrides after: the last one of a target wins.
    for (const auto* list : {&config_.schedule, &overlay_.overrides})
        for (const auto& o : *list) {
            const bool known =
                o.target == policy::Override::Target::tier
                    ? std::any_of(base_policy_.tiers.begin(), base_policy_.tiers.end(),
                                  [&](const policy::Tier& t) { return t.name == o.name; })
                    : std::any_of(base_policy_.rules.begin(), base_policy_.rules.end(),
                                  [&](const policy::Rule& r) { return r.name == o.name; });
            if (known)
                s.overrides.push_back(o);
            else if (warnings)
                warnings->push_back("override of " + o.name + " ignored: no such " +
                                    (o.target == policy::Override::Target::tier ? "tier" : "rule") + " in the policy");
        }
    if (controller_)
        s.adaptive = controller_->factors();
    s.emergency = overlay_.emergency;
    s.emergency_factors = config_.emergency;
    return s;
}

void Daemon::start_adaptive() {
    if (config_.adaptive.enabled)
        controller_ = std::make_unique<policy::Controller>(config_.adaptive.controller);
    else
        controller_.reset();
}

// Once a second: the load, the controller's answer, overrides that start or end.
void Daemon::adapt() {
    const auto now = now_ms();
    if (controller_) {
        const auto& a = config_.adaptive;
        // The controller's time is monotonic: a step of the wall clock neither freezes nor hurries it.
        const auto mono_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
        policy::LoadSample sample{.at_ms = mono_ms, .load = 0, .cause = "none"};
        auto consider = [&](double value, double high, const char* name) {
            if (high <= 0)
                return;
            load_signals_[name] = value / high;
            if (value / high > sample.load) {
                sample.load = value / high;
                sample.cause = name;
            }
        };
        const auto cpu = read_cpu_times();
        double softirq = 0;
        if (cpu.size() == cpu_times_.size())
            for (std::size_t i = 0; i < cpu.size(); ++i) {
                const auto ds = cpu[i].first - std::min(cpu[i].first, cpu_times_[i].first);
                const auto dt = cpu[i].second - std::min(cpu[i].second, cpu_times_[i].second);
                if (dt > 0)
                    softirq = std::max(softirq, static_cast<double>(ds) / static_cast<double>(dt));
            }
        cpu_times_ = cpu;
        consider(softirq, a.softirq_cpu, "softirq_cpu");
        if (a.pps) {  // packets/s of the busiest attached interface
            double busiest = 0;
            std::map<std::string, InterfaceSample> next;
            const auto at = std::chrono::steady_clock::now();
            for (const auto& [name, mode] : dataplane_->attachments()) {
                const auto ifindex = if_nametoindex(name.c_str());
                if (!ifindex)
                    continue;
                std::uint64_t packets = 0;
                for (const auto& by_verdict : dataplane_->read_interface_counters(static_cast<int>(ifindex)))
                    for (const auto& c : by_verdict)
                        packets += c.packets;
                next[name] = {at, packets};
                if (const auto it = interface_packets_.find(name); it != interface_packets_.end()) {
                    const double dt = std::chrono::duration<double>(at - it->second.at).count();
                    if (dt > 0)
                        busiest = std::max(busiest, static_cast<double>(packets - std::min(packets, it->second.packets)) / dt);
                }
            }
            interface_packets_ = std::move(next);
            consider(busiest, static_cast<double>(a.pps), "pps");
        }
        for (const auto& m : fill_cache_)
            if (m.name == "rl_buckets" && m.max_entries)
                consider(static_cast<double>(m.entries) / static_cast<double>(m.max_entries), a.map_fill, "map_fill");
        // Each rlgate-l7's latest report (stale after 30 s: 3 default report intervals); the worst counts.
        std::uint64_t latency = 0, in_flight = 0;
        std::erase_if(l7_load_, [](const auto& e) { return std::chrono::steady_clock::now() - e.second.at > std::chrono::seconds(30); });
        for (const auto& [peer, l] : l7_load_) {
            latency = std::max(latency, l.latency_ms);
            in_flight = std::max(in_flight, l.in_flight);
        }
        if (!l7_load_.empty()) {
            consider(static_cast<double>(latency), static_cast<double>(a.l7_latency_ms), "l7_latency");
            consider(static_cast<double>(in_flight), static_cast<double>(a.l7_in_flight), "l7_in_flight");
        }
        last_load_ = sample;
        std::set<std::string> held;  // tiers whose limits an override or the emergency profile sets now
        for (const auto& o : policy::active_overrides(current_scaling(nullptr).overrides, now))
            if (o.target == policy::Override::Target::tier)
                held.insert(o.name);
        if (overlay_.emergency)
            for (const auto& [tier, f] : config_.emergency)
                held.insert(tier);
        if (const auto change = controller_->observe(sample, held)) {
            spdlog::warn("adaptive: load {:.2f} ({}): tier {} {} to {:.3g}x its limit (level {} of {})", sample.load,
                         sample.cause, change->tier, change->tightened ? "scaled down" : "scaled back up", change->factor,
                         change->level, controller_->max_level());
            adaptive_changes_.push_back({.at_ms = now, .level = change->level, .tier = change->tier,
                                         .factor = change->factor, .load = sample.load, .cause = sample.cause});
            while (adaptive_changes_.size() > 100)
                adaptive_changes_.pop_front();
            reapply_scaling("adaptive");
            return;
        }
    }
    // Overrides that started or ended since the policy was applied (schedule, --for).
    const auto before = overlay_.overrides.size();
    std::erase_if(overlay_.overrides, [&](const policy::Override& o) { return o.until_ms && o.until_ms <= now; });
    if (overlay_.overrides.size() != before) {
        spdlog::info("{} override{} expired", before - overlay_.overrides.size(),
                     before - overlay_.overrides.size() == 1 ? "" : "s");
        save_overlay();
    }
    if (policy::active_overrides(current_scaling(nullptr).overrides, now) != applied_overrides_)
        reapply_scaling("override schedule");
}

void Daemon::reapply_scaling(const std::string& why) {
    std::vector<std::string> warnings;
    try {
        const auto gen = apply_effective_policy(warnings);
        spdlog::info("policy generation {} in force ({})", gen, why);
    } catch (const std::exception& e) {
        spdlog::error("limits not changed ({}): {}", why, e.what());
    }
}

json Daemon::scaling_json() const {
    const auto now = now_ms();
    json tiers = json::array();
    for (const auto& t : effective_.tiers) {
        const auto base = std::find_if(base_policy_.tiers.begin(), base_policy_.tiers.end(),
                                       [&](const policy::Tier& b) { return b.name == t.name; });
        const double factor = base != base_policy_.tiers.end() && base->limit.packets_per_sec
                                  ? static_cast<double>(t.limit.packets_per_sec) / static_cast<double>(base->limit.packets_per_sec)
                                  : 1.0;
        tiers.push_back({{"tier", t.name}, {"pps", t.limit.packets_per_sec}, {"factor", factor}});
    }
    json overrides = json::array();
    for (const auto* list : {&config_.schedule, &overlay_.overrides})
        for (const auto& o : *list) {
            const bool active = o.start_ms <= now && (o.until_ms == 0 || now < o.until_ms);
            json e{{"target", o.target == policy::Override::Target::tier ? "tier" : "rule"},
                   {"name", o.name},
                   {"origin", o.origin},
                   {"reason", o.reason},
                   {"active", active},
                   {"start", o.start_ms ? json(iso8601_ms(o.start_ms)) : json(nullptr)},
                   {"until", o.until_ms ? json(iso8601_ms(o.until_ms)) : json(nullptr)},
                   {"remaining_s", o.until_ms ? json(static_cast<double>(std::max<std::int64_t>(0, o.until_ms - now)) / 1e3)
                                              : json(nullptr)}};
            e["factor"] = o.factor ? json(*o.factor) : json(nullptr);
            e["pps"] = o.pps ? json(*o.pps) : json(nullptr);
            overrides.push_back(std::move(e));
        }
    json adaptive = {{"enabled", controller_ != nullptr}};
    if (controller_) {
        json changes = json::array();
        for (const auto& c : adaptive_changes_)
            changes.push_back({{"at", iso8601_ms(c.at_ms)}, {"level", c.level}, {"tier", c.tier}, {"factor", c.factor},
                               {"load", c.load}, {"cause", c.cause}});
        adaptive.update({{"level", controller_->level()},
                         {"max_level", controller_->max_level()},
                         {"load", last_load_.load},
                         {"cause", last_load_.cause},
                         {"signals", load_signals_},
                         {"factors", controller_->factors()},
                         {"changes", changes}});
    }
    return {{"tiers", tiers},
            {"overrides", overrides},
            {"emergency", overlay_.emergency},
            {"emergency_profile", config_.emergency},
            {"adaptive", adaptive}};
}

json Daemon::cmd_override(const std::string& cmd, const json& args) {
    if (cmd == "override.list")
        return scaling_json();
    if (cmd == "override.clear") {
        const bool all = args.contains("all") && args["all"].is_boolean() && args["all"].get<bool>();
        const auto name = control::arg_optional_string(args, "name");
        if (all == name.has_value())
            throw ProtocolError(code::invalid_argument, "give a tier or rule name, or all: true");
        const auto before = overlay_.overrides.size();
        change_overlay([&](config::RuntimeOverlay& o) {
            std::erase_if(o.overrides, [&](const policy::Override& v) { return all || v.name == *name; });
        });
        const auto removed = before - overlay_.overrides.size();
        if (!all && removed == 0) {
            const bool scheduled = std::any_of(config_.schedule.begin(), config_.schedule.end(),
                                               [&](const policy::Override& o) { return o.name == *name; });
            throw ProtocolError(code::not_found, "no override of " + *name + " set with rlctl" +
                                                     (scheduled ? " (the config's schedule has one: edit the file)" : ""));
        }
        spdlog::info("{} override{} cleared by rlctl", removed, removed == 1 ? "" : "s");
        return {{"cleared", removed}, {"generation", dataplane_->policy_generation()}};
    }
    if (cmd == "override.set") {
        const auto name = control::arg_string(args, "name");
        const auto target = control::arg_optional_string(args, "target");
        const bool is_tier = std::any_of(base_policy_.tiers.begin(), base_policy_.tiers.end(),
                                         [&](const policy::Tier& t) { return t.name == name; });
        const bool is_rule = std::any_of(base_policy_.rules.begin(), base_policy_.rules.end(),
                                         [&](const policy::Rule& r) { return r.name == name; });
        policy::Override o{.name = name, .origin = "rlctl"};
        if (target && *target != "tier" && *target != "rule")
            throw ProtocolError(code::invalid_argument, "target: tier or rule");
        if (target ? *target == "rule" : !is_tier && is_rule)
            o.target = policy::Override::Target::rule;
        if (o.target == policy::Override::Target::tier ? !is_tier : !is_rule)
            throw ProtocolError(code::not_found, "no " + std::string(o.target == policy::Override::Target::tier ? "tier" : "rule") +
                                                     " named " + name + " in the policy");
        const bool has_factor = args.contains("factor"), has_pps = args.contains("pps");
        if (has_factor == has_pps)
            throw ProtocolError(code::invalid_argument, "give one of factor and pps");
        if (has_factor) {
            if (!args["factor"].is_number() || !(args["factor"].get<double>() > 0) || args["factor"].get<double>() > 1000)
                throw ProtocolError(code::invalid_argument, "factor: a number above 0 and at most 1000");
            o.factor = args["factor"].get<double>();
        } else {
            const auto pps = control::arg_uint(args, "pps", 0);
            if (pps == 0 || pps > 1'000'000'000'000ULL)
                throw ProtocolError(code::invalid_argument, "pps: 1 to 10^12");
            o.pps = pps;
        }
        const auto for_s = control::arg_uint(args, "for_s", 0);
        if (for_s > 366ULL * 86'400)
            throw ProtocolError(code::invalid_argument, "for_s: at most a year; omit it for an override until cleared");
        const auto now = now_ms();
        o.until_ms = for_s ? now + static_cast<std::int64_t>(for_s) * 1000 : 0;
        o.reason = control::arg_optional_string(args, "reason").value_or("");
        if (o.reason.size() > 256)
            throw ProtocolError(code::invalid_argument, "reason: at most 256 bytes");
        change_overlay([&](config::RuntimeOverlay& ov) {
            std::erase_if(ov.overrides, [&](const policy::Override& v) { return v.name == o.name && v.target == o.target; });
            ov.overrides.push_back(o);
        });
        spdlog::warn("override of {} {} set by rlctl: {}{}{}", o.target == policy::Override::Target::tier ? "tier" : "rule",
                     name, o.factor ? "factor " + std::to_string(*o.factor) : std::to_string(*o.pps) + " pps",
                     for_s ? " for " + std::to_string(for_s) + " s" : std::string(" until cleared"),
                     o.reason.empty() ? std::string() : " (" + o.reason + ")");
        return {{"generation", dataplane_->policy_generation()}, {"until", o.until_ms ? json(iso8601_ms(o.until_ms)) : json(nullptr)}};
    }
    throw ProtocolError(code::unknown_command, "unknown command '" + cmd + "'");
}

json Daemon::cmd_emergency(const json& args) {
    if (!args.contains("on") || !args["on"].is_boolean())
        throw ProtocolError(code::invalid_argument, "on: true or false");
    const bool on = args["on"].get<bool>();
    if (on && config_.emergency.empty())
        throw ProtocolError(code::failed, "no emergency profile in the config (\"emergency\": {\"TIER\": FACTOR, ...})");
    if (on != overlay_.emergency) {
        change_overlay([&](config::RuntimeOverlay& o) { o.emergency = on; });
        spdlog::warn("emergency mode {} by rlctl", on ? "ON" : "off");
    }
    return {{"emergency", overlay_.emergency}, {"profile", config_.emergency},
            {"generation", dataplane_->policy_generation()}};
}

void Daemon::note_l7_load(const json& args, const std::string& peer) {
    const auto latency = args.find("upstream_latency_ms");
    const auto in_flight = args.find("in_flight");
    if (latency == args.end() && in_flight == args.end())
        return;
    L7Load l{.at = std::chrono::steady_clock::now()};
    if (latency != args.end())
        l.latency_ms = control::arg_uint(args, "upstream_latency_ms", 0);
    if (in_flight != args.end())
        l.in_flight = control::arg_uint(args, "in_flight", 0);
    if (l7_load_.size() < 64 || l7_load_.contains(peer))
        l7_load_[peer] = l;
}

}  // namespace rlgate::daemon
