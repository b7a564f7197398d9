// SPDX-License-Identifier: BSD-2-Clause
#pragma once

#include <cstdint>
#include <string>

namespace rlgate::bench {

struct L7RedisBenchOptions {
    std::string address = "127.0.0.1:6379";
    std::uint64_t keys = 10'000;     // random keys, each far under its limit
    unsigned concurrency = 64;       // decisions in flight
    unsigned connections = 2;        // to Redis
    double seconds = 5.0;            // per scenario
    unsigned lease = 0;              // store.redis.lease_size (0: off)
    unsigned batch = 32;             // store.redis.batch (1: one decision per EVALSHA)
    bool json = false;
};

// Decisions per second of rlgate-l7's Redis store (EVALSHA of the decide
// script through the pipelined client) against one Redis, with the Redis
// commands each decision cost; then one hot key far over its limit, where
// the local cache of refusals should leave Redis idle.
int run_l7_redis_bench(const L7RedisBenchOptions& options);

}  // namespace rlgate::bench
