// SPDX-License-Identifier: BSD-2-Clause
#pragma once

#include <cstddef>

namespace rlgate::bench {

struct PolicyBenchOptions {
    std::size_t prefixes = 10'000;  // allow + deny + tier prefixes
    int rounds = 5;                 // the median is reported
    bool json = false;
};

// Time of each step of a reload with a large policy: parse the config text,
// validate and compile it, write it into the maps and flip the generation.
int run_policy_bench(const PolicyBenchOptions& options);

}  // namespace rlgate::bench
