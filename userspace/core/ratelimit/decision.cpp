// SPDX-License-Identifier: BSD-2-Clause
#include "core/ratelimit/decision.hpp"

namespace rlgate::ratelimit {

bool is_tighter(const Verdict& v, const Verdict& than) {
    if (!v.allowed)
        return than.allowed || v.retry_after_ns > than.retry_after_ns;
    return than.allowed && (v.remaining < than.remaining || (v.remaining == than.remaining && v.reset_ns > than.reset_ns));
}

Decision decide(std::span<const LimitSpec> specs, std::span<LimitState> states, std::int64_t now_ns, std::uint64_t cost) {
    Decision d;
    if (specs.size() == 1) {  // the common case needs no second pass
        d.tightest = check(specs[0], states[0], now_ns, cost, true);
        d.allowed = d.tightest.allowed;
        return d;
    }
    d.allowed = true;
    bool first = true;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto v = check(specs[i], states[i], now_ns, cost, false);
        if (first || is_tighter(v, d.tightest)) {
            d.tightest = v;
            d.tightest_index = i;
        }
        first = false;
        d.allowed = d.allowed && v.allowed;
    }
    if (d.allowed)
        for (std::size_t i = 0; i < specs.size(); ++i)
            check(specs[i], states[i], now_ns, cost, true);
    return d;
}

}  // namespace rlgate::ratelimit
