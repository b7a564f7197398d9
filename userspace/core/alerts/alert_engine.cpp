// SPDX-License-Identifier: BSD-2-Clause
#include "core/alerts/alert_engine.hpp"

#include <algorithm>

namespace rlgate::alerts {

const char* to_string(State s) {
    switch (s) {
    case State::inactive: return "inactive";
    case State::pending: return "pending";
    case State::firing: return "firing";
    case State::resolving: return "resolving";
    }
    return "?";
}

std::optional<Notification> AlertEngine::observe(const std::string& name, std::optional<double> value,
                                                 const std::string& subject, std::int64_t now_ms) {
    const auto rule = std::find_if(rules_.begin(), rules_.end(), [&](const config::AlertRule& r) { return r.name == name; });
    if (rule == rules_.end() || !value)
        return std::nullopt;
    auto& t = tracks_[name];
    t.value = *value;
    const auto for_ms = static_cast<std::int64_t>(rule->for_ns / 1'000'000);
    const bool high = *value > rule->above;
    const bool low = *value < rule->clear_below || (rule->clear_below == rule->above && !high);
    auto note = [&](const char* status, std::int64_t since) {
        return Notification{rule->name, config::to_string(rule->type), status, *value, rule->above, t.subject, since, now_ms};
    };
    switch (t.state) {
    case State::inactive:
        if (!high)
            return std::nullopt;
        t.state = State::pending;
        t.since_ms = now_ms;
        t.subject = subject;
        [[fallthrough]];
    case State::pending:
        if (!high) {
            t.state = State::inactive;
            return std::nullopt;
        }
        t.subject = subject;
        if (now_ms - t.since_ms < for_ms)
            return std::nullopt;
        t.state = State::firing;
        t.fired_ms = now_ms;
        return note("firing", t.since_ms);
    case State::firing:
        if (!low)
            return std::nullopt;
        t.state = State::resolving;
        t.since_ms = now_ms;
        [[fallthrough]];
    case State::resolving:
        if (!low) {
            t.state = State::firing;  // back up before it cleared: the same episode
            return std::nullopt;
        }
        if (now_ms - t.since_ms < for_ms)
            return std::nullopt;
        t.state = State::inactive;
        return note("resolved", t.fired_ms);
    }
    return std::nullopt;
}

std::vector<AlertStatus> AlertEngine::status() const {
    std::vector<AlertStatus> out;
    for (const auto& r : rules_) {
        AlertStatus s{r.name, config::to_string(r.type), {}, State::inactive, 0, 0};
        if (auto it = tracks_.find(r.name); it != tracks_.end()) {
            s.state = it->second.state;
            s.value = it->second.value;
            s.subject = it->second.subject;
            s.since_ms = it->second.state == State::firing || it->second.state == State::resolving ? it->second.fired_ms
                                                                                                   : it->second.since_ms;
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<Notification> AlertEngine::replace_rules(std::vector<config::AlertRule> rules, std::int64_t now_ms) {
    std::map<std::string, Track> kept;
    std::vector<Notification> resolved;
    for (const auto& old_rule : rules_) {
        const auto it = tracks_.find(old_rule.name);
        if (it == tracks_.end())
            continue;
        const auto same = std::find(rules.begin(), rules.end(), old_rule);
        if (same != rules.end())
            kept.emplace(old_rule.name, it->second);
        else if (it->second.state == State::firing || it->second.state == State::resolving)
            resolved.push_back(Notification{old_rule.name, config::to_string(old_rule.type), "resolved", it->second.value,
                                            old_rule.above, it->second.subject, it->second.fired_ms, now_ms});
    }
    rules_ = std::move(rules);
    tracks_ = std::move(kept);
    return resolved;
}

}  // namespace rlgate::alerts
