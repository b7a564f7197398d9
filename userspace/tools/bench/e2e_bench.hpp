// SPDX-License-Identifier: BSD-2-Clause
#pragma once

#include <cstdint>
#include <string>

namespace rlgate::bench {

struct E2eBenchOptions {
    std::uint64_t count = 3'000'000;  // frames per measurement
    unsigned threads = 2;             // generator threads
    int rounds = 3;                   // the median of the rounds is reported
    int warmup = 1;                   // unmeasured rounds first: exhaust the bursts, fill maps and sets
    double duration = 20.0;           // seconds one generator run may last at most
    std::string flood;                // rlgate-flood; empty: next to this binary
    std::uint64_t limit_pps = 10;    // per-source limit of rlgate and nft
    std::uint64_t limit_burst = 20;
    bool json = false;
};

int run_e2e_bench(const E2eBenchOptions& options);

}  // namespace rlgate::bench

namespace rlgate::bench {

struct AutobanBenchOptions {
    std::uint64_t limit_pps = 100;   // per-source limit
    std::uint64_t limit_burst = 200;
    std::uint32_t drops = 1000;      // auto-ban threshold within the window
    std::string flood;               // rlgate-flood; empty: next to this binary
    bool json = false;
};

// Time from the start of a single-source flood to its kernel ban, and the
// packets that passed before it, at several flood rates (veth, root).
int run_autoban_bench(const AutobanBenchOptions& options);

}  // namespace rlgate::bench

namespace rlgate::bench {

struct ScrapeBenchOptions {
    std::uint32_t sources = 1'000'000;  // buckets filled into the daemon's map
    int scrapes = 50;
    std::string rlgated;  // empty: ../../rlgated from this binary
    bool json = false;
};

// /metrics of a real rlgated whose bucket map tracks `sources` sources:
// scrape latency, and rl_xdp's ns/packet while scrapes run vs. idle.
int run_scrape_bench(const ScrapeBenchOptions& options);

}  // namespace rlgate::bench
