// SPDX-License-Identifier: BSD-2-Clause
#pragma once

#include <cstdint>

namespace rlgate::bench {

struct XdpBenchOptions {
    std::uint32_t repeat = 2'000'000;  // packets per measurement
    int rounds = 5;                    // the median of the rounds is reported
    std::uint32_t churn_map_entries = 262'144;
    std::uint32_t churn_sources = 1'000'000;
    bool json = false;
    bool no_global = false;
    std::size_t policy_prefixes = 10'000;
    bool references = false;  // also time bare LRU lookups by key size
};

int run_xdp_bench(const XdpBenchOptions& options);

}  // namespace rlgate::bench
