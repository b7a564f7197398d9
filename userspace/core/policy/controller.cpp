// SPDX-License-Identifier: BSD-2-Clause
#include "core/policy/controller.hpp"

#include <cmath>

namespace rlgate::policy {

Controller::Controller(ControllerSettings s) : s_(std::move(s)) {
    for (const auto& t : s_.order)
        factors_[t] = 1.0;
}

int Controller::max_level() const {
    // Steps per tier from 1 down to min_factor.
    const int per_tier = s_.step > 0 && s_.step < 1 && s_.min_factor > 0 && s_.min_factor < 1
                             ? static_cast<int>(std::ceil(std::log(s_.min_factor) / std::log(s_.step) - 1e-9))
                             : 0;
    return per_tier * static_cast<int>(s_.order.size());
}

std::optional<Controller::Change> Controller::observe(const LoadSample& sample, const std::set<std::string>& held) {
    const bool over = sample.load > 1.0;
    const bool under = sample.load < s_.recover_below;
    if (over) {
        under_since_ms_.reset();
        if (!over_since_ms_)
            over_since_ms_ = sample.at_ms;
    } else if (under) {
        over_since_ms_.reset();
        if (!under_since_ms_)
            under_since_ms_ = sample.at_ms;
    } else {  // between the two levels: hold
        over_since_ms_.reset();
        under_since_ms_.reset();
    }
    const bool settled = !last_change_ms_ || sample.at_ms - *last_change_ms_ >= s_.dwell_ms;
    if (!settled)
        return std::nullopt;
    // Overload must have lasted `dwell` (a spike does nothing), and a change waits `dwell` after the last one.
    if (over && sample.at_ms - *over_since_ms_ >= s_.dwell_ms) {
        for (const auto& tier : s_.order) {
            auto& f = factors_[tier];
            if (f <= s_.min_factor * (1 + 1e-9) || held.contains(tier))
                continue;
            f = std::max(s_.min_factor, f * s_.step);
            steps_.push_back(tier);
            last_change_ms_ = sample.at_ms;
            return Change{.level = level(), .tier = tier, .factor = f, .tightened = true};
        }
        return std::nullopt;  // everything scalable is at its minimum
    }
    if (under && !steps_.empty() && sample.at_ms - *under_since_ms_ >= s_.dwell_ms) {
        const auto tier = steps_.back();
        steps_.pop_back();
        // The factor this tier had before its last step: recomputed from its remaining steps.
        int left = 0;
        for (const auto& t : steps_)
            left += t == tier;
        double f = 1.0;
        for (int i = 0; i < left; ++i)
            f = std::max(s_.min_factor, f * s_.step);
        factors_[tier] = f;
        last_change_ms_ = sample.at_ms;
        under_since_ms_ = sample.at_ms;  // the next step back waits a full dwell of calm too
        return Change{.level = level(), .tier = tier, .factor = f, .tightened = false};
    }
    return std::nullopt;
}

}  // namespace rlgate::policy
