// SPDX-License-Identifier: BSD-2-Clause
#pragma once

#include <cstddef>

namespace rlgate::bench {

struct L7LibBenchOptions {
    std::size_t keys = 100'000;  // warm key set
    double seconds = 1.0;        // per algorithm
    bool json = false;
};

// Decisions per second on one core through the in-memory store (rlgate-l7's
// hot path), per algorithm, single limit, random keys of a warm set.
int run_l7_lib_bench(const L7LibBenchOptions& options);

}  // namespace rlgate::bench
