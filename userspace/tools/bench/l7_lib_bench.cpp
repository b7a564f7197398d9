// SPDX-License-Identifier: BSD-2-Clause
#include "l7_lib_bench.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ratelimit/memory_store.hpp"

namespace rlgate::bench {

int run_l7_lib_bench(const L7LibBenchOptions& o) {
    using ratelimit::Algorithm;
    std::vector<std::string> keys;
    keys.reserve(o.keys);
    for (std::size_t i = 0; i < o.keys; ++i)
        // Short enough for std::string's inline buffer: a server hashes key bytes that sit
        // in the request it just read (in cache), not behind a pointer of their own.
        keys.push_back("key-" + std::to_string(i * 2654435761U % 1'000'000'007U));
    // A fixed pseudo-random visiting order, generated before timing.
    std::vector<std::uint32_t> order(1U << 20);
    std::uint64_t x = 88172645463325252ULL;
    for (auto& v : order) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v = static_cast<std::uint32_t>(x % o.keys);
    }
    struct Row {
        const char* name;
        double per_sec;
        double ns;
        double batch_per_sec;
        double batch_ns;
    };
    std::vector<Row> rows;
    for (const auto& [name, algo] : {std::pair{"token_bucket", Algorithm::token_bucket}, std::pair{"gcra", Algorithm::gcra},
                                     std::pair{"sliding_window", Algorithm::sliding_window},
                                     std::pair{"fixed_window", Algorithm::fixed_window}}) {
        const ratelimit::LimitSpec spec{.name = "100/s", .algorithm = algo, .limit = 100, .period_ns = 1'000'000'000ULL,
                                        .burst = 0, .calendar = ratelimit::Calendar::none};
        ratelimit::MemoryStore store(o.keys * 2, 64);
        std::int64_t now = 1'000'000'000'000LL;
        for (const auto& k : keys)  // warm: every key present
            store.decide(k, {&spec, 1}, now, 1);
        std::uint64_t n = 0, allowed = 0;
        const auto t0 = std::chrono::steady_clock::now();
        const auto deadline = t0 + std::chrono::duration<double>(o.seconds);
        while (std::chrono::steady_clock::now() < deadline) {
            for (std::size_t i = 0; i < 4096; ++i, ++n) {
                now += 50;  // time advances as a stream of requests would
                allowed += store.decide(keys[order[n & (order.size() - 1)]], {&spec, 1}, now, 1).allowed;
            }
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // The same through decide_batch: 64 requests at a time, slots prefetched.
        std::array<std::string_view, 64> batch{};
        std::array<ratelimit::Decision, 64> out{};
        std::uint64_t nb = 0;
        const auto b0 = std::chrono::steady_clock::now();
        const auto bdeadline = b0 + std::chrono::duration<double>(o.seconds);
        while (std::chrono::steady_clock::now() < bdeadline) {
            for (std::size_t r = 0; r < 64; ++r) {
                for (std::size_t i = 0; i < batch.size(); ++i, ++nb)
                    batch[i] = keys[order[nb & (order.size() - 1)]];
                now += 50 * 64;
                store.decide_batch(batch, {&spec, 1}, now, 1, out);
                allowed += out[0].allowed;
            }
        }
        const double bsecs = std::chrono::duration<double>(std::chrono::steady_clock::now() - b0).count();
        rows.push_back({name, static_cast<double>(n) / secs, secs * 1e9 / static_cast<double>(n),
                        static_cast<double>(nb) / bsecs, bsecs * 1e9 / static_cast<double>(nb)});
        if (allowed == 0)
            std::fprintf(stderr, "note: nothing allowed with %s\n", name);
    }
    if (o.json) {
        auto a = nlohmann::json::array();
        for (const auto& r : rows)
            a.push_back({{"algorithm", r.name},
                         {"decisions_per_sec", r.per_sec},
                         {"ns_per_decision", r.ns},
                         {"batched_decisions_per_sec", r.batch_per_sec},
                         {"batched_ns_per_decision", r.batch_ns}});
        std::printf("%s\n", nlohmann::json{{"keys", o.keys}, {"runs", a}}.dump().c_str());
    } else {
        std::printf("in-memory store, one thread, one limit, %zu warm keys in random order:\n", o.keys);
        std::printf("  %-15s %22s %28s\n", "", "decide (one at a time)", "decide_batch (64, prefetch)");
        for (const auto& r : rows)
            std::printf("  %-15s %7.2f M/s %6.1f ns each %9.2f M/s %6.1f ns each\n", r.name, r.per_sec / 1e6, r.ns,
                        r.batch_per_sec / 1e6, r.batch_ns);
        std::printf("goal: >= 10 M decisions/s for the token bucket\n");
    }
    return 0;
}

}  // namespace rlgate::bench
