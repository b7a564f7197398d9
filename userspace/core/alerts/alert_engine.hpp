// SPDX-License-Identifier: BSD-2-Clause
// Alert rules evaluated on measured values with a for-duration and
// hysteresis: an alert fires after its value stayed above `above` for `for`,
// and resolves after it stayed below `clear_below` for `for`. One
// notification per transition, so one "firing" and one "resolved" per
// episode. Pure: values and times come from the caller.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace rlgate::alerts {

enum class State { inactive, pending, firing, resolving };
const char* to_string(State s);

struct Notification {
    std::string alert;    // rule name
    std::string type;     // rule type
    std::string status;   // firing | resolved
    double value = 0;
    double threshold = 0;
    std::string subject;  // what it is about: a source, an interface, a map; may be empty
    std::int64_t since_ms = 0;  // when the episode began (firing) or the alert fired (resolved)
    std::int64_t at_ms = 0;
};

struct AlertStatus {
    std::string name, type, subject;
    State state = State::inactive;
    double value = 0;
    std::int64_t since_ms = 0;
};

class AlertEngine {
public:
    explicit AlertEngine(std::vector<config::AlertRule> rules) : rules_(std::move(rules)) {}

    // One measurement of rule `name` (its worst subject) at `now_ms`.
    // nullopt: no data, the state stays as it is.
    std::optional<Notification> observe(const std::string& name, std::optional<double> value, const std::string& subject,
                                        std::int64_t now_ms);
    [[nodiscard]] std::vector<AlertStatus> status() const;
    [[nodiscard]] const std::vector<config::AlertRule>& rules() const { return rules_; }
    // Keeps the state of unchanged rules; firing ones that changed or went away
    // resolve (returned), so receivers never keep an incident open forever.
    std::vector<Notification> replace_rules(std::vector<config::AlertRule> rules, std::int64_t now_ms);

private:
    struct Track {
        State state = State::inactive;
        std::int64_t since_ms = 0;     // start of the pending/resolving phase or of the episode
        std::int64_t fired_ms = 0;
        double value = 0;
        std::string subject;
    };
    std::vector<config::AlertRule> rules_;
    std::map<std::string, Track> tracks_;
};

}  // namespace rlgate::alerts
