// SPDX-License-Identifier: BSD-2-Clause
// A request checked against several limits at once (10/min burst, 100/h,
// 200/day ...) with a cost: admitted only if every limit admits it, and then
// charged to all of them; the answer describes the tightest limit. Pure.
#pragma once

#include <span>

#include "core/ratelimit/algorithms.hpp"

namespace rlgate::ratelimit {

struct Decision {
    bool allowed = false;
    Verdict tightest;          // what the headers report
    std::size_t tightest_index = 0;  // in its group's specs
    std::size_t tightest_group = 0;  // MemoryStore::decide_keys: which key's limits
};

// Whether `v` describes a tighter limit than `than`: denied, the one that makes
// the client wait longest; allowed, the one with least left (then latest reset).
bool is_tighter(const Verdict& v, const Verdict& than);

// `states[i]` belongs to `specs[i]`. No state changes when denied.
Decision decide(std::span<const LimitSpec> specs, std::span<LimitState> states, std::int64_t now_ns, std::uint64_t cost);

}  // namespace rlgate::ratelimit
