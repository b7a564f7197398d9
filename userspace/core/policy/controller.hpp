// SPDX-License-Identifier: BSD-2-Clause
// The adaptive controller: from load samples (each signal divided by its
// configured "high" level, so 1.0 = overloaded) to a factor per tier. Above
// 1.0 for `dwell` since the last change, it takes one step down: the lowest
// tier still above `min_factor` (in `order`, lowest first) is multiplied by
// `step`; once that tier reaches `min_factor` the next tier follows. Below
// `recover_below` for `dwell`, it undoes the last step. Between the two it
// holds (hysteresis); every change waits `dwell` after the previous one (no
// oscillation faster than that). Tiers not in `order` (premium, internal)
// are never scaled. Pure: samples carry their time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rlgate::policy {

struct ControllerSettings {
    std::vector<std::string> order;  // tiers the controller may scale, lowest priority first
    double step = 0.5;               // factor applied per level (0 < step < 1)
    double min_factor = 0.1;         // a tier is never scaled below this
    double recover_below = 0.7;      // load under which a level is undone
    std::int64_t dwell_ms = 5000;    // minimum time between two changes, and the time a condition must hold
    bool operator==(const ControllerSettings&) const = default;
};

struct LoadSample {
    std::int64_t at_ms = 0;
    double load = 0;  // max over the signals of value / high
    std::string cause;  // the signal that set `load`, for logs
};

class Controller {
public:
    explicit Controller(ControllerSettings s);

    struct Change {
        int level = 0;  // after the change
        std::string tier;
        double factor = 1;  // of `tier` after the change
        bool tightened = false;
    };
    // Feeds one sample; returns the change it caused, if any. Tiers in `held` (an operator's
    // override or the emergency profile decides their limits now) are passed over when
    // tightening: a step on them would change nothing.
    std::optional<Change> observe(const LoadSample& s, const std::set<std::string>& held = {});

    [[nodiscard]] int level() const { return static_cast<int>(steps_.size()); }
    [[nodiscard]] int max_level() const;
    // Factor per tier of `order` (1 when not scaled).
    [[nodiscard]] const std::map<std::string, double>& factors() const { return factors_; }
    [[nodiscard]] const ControllerSettings& settings() const { return s_; }

private:
    ControllerSettings s_;
    std::map<std::string, double> factors_;
    std::vector<std::string> steps_;  // tier scaled at each level, in order
    std::optional<std::int64_t> last_change_ms_;
    std::optional<std::int64_t> over_since_ms_, under_since_ms_;
};

}  // namespace rlgate::policy
