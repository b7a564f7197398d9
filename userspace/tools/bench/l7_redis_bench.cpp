// SPDX-License-Identifier: BSD-2-Clause
#include "l7_redis_bench.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "redis/client.hpp"
#include "l7/redis_store.hpp"

namespace rlgate::bench {

namespace asio = boost::asio;

namespace {

// CPU time this process has used (user + system), µs.
double cpu_us() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Redis's own count of the commands it processed (INFO stats).
asio::awaitable<std::uint64_t> commands_processed(redis::RedisClient& client) {
    std::vector<std::string> info = {"INFO", "stats"};
    const redis::RedisResult r = co_await client.call(info);
    std::uint64_t n = 0;
    if (const auto* reply = std::get_if<redis::RedisReply>(&r)) {
        const auto at = reply->text.find("total_commands_processed:");
        if (at != std::string::npos)
            n = std::stoull(reply->text.substr(at + 25));
    }
    co_return n;
}

// Redis's own CPU time (INFO cpu: used_cpu_user + used_cpu_sys), seconds.
asio::awaitable<double> redis_cpu_seconds(redis::RedisClient& client) {
    std::vector<std::string> info = {"INFO", "cpu"};
    const redis::RedisResult r = co_await client.call(info);
    double total = 0;
    if (const auto* reply = std::get_if<redis::RedisReply>(&r)) {
        for (const char* field : {"used_cpu_user:", "used_cpu_sys:"}) {
            const auto at = reply->text.find(field);
            if (at != std::string::npos)
                total += std::stod(reply->text.substr(at + std::strlen(field)));
        }
    }
    co_return total;
}

struct Scenario {
    std::string name;
    double seconds = 0;
    std::uint64_t decisions = 0, allowed = 0, redis_commands = 0, round_trips = 0;
    double client_cpu_us = 0;  // this process: the store, its client and the load loop
    double redis_cpu_us = 0;   // the Redis server's
};

}  // namespace

int run_l7_redis_bench(const L7RedisBenchOptions& o) {
    const auto colon = o.address.rfind(':');
    l7::RedisStoreSettings settings;
    settings.host = o.address.substr(0, colon);
    settings.port = static_cast<std::uint16_t>(std::stoul(o.address.substr(colon + 1)));
    settings.prefix = "bench:";
    settings.connections = o.connections;
    settings.timeout_ns = 1'000'000'000;
    settings.on_failure = l7::RedisFailure::closed;
    settings.lease_size = o.lease;
    settings.batch = o.batch;

    asio::io_context io(1);
    l7::RedisStore store(io, settings, 1024);
    redis::RedisClient probe(io, redis::RedisOptions{.host = settings.host, .port = settings.port, .connections = 1});
    store.start();
    probe.start();

    // Far under their limits: every decision goes to Redis and is admitted.
    const std::vector<ratelimit::LimitSpec> roomy = {
        {.name = "bench", .algorithm = ratelimit::Algorithm::gcra, .limit = 1'000'000'000, .period_ns = 60'000'000'000ULL}};
    // One caller far over its limit: refused, and then refused from the local cache.
    const std::vector<ratelimit::LimitSpec> tight = {
        {.name = "hot", .algorithm = ratelimit::Algorithm::gcra, .limit = 1, .period_ns = 3'600'000'000'000ULL}};

    std::vector<Scenario> results;
    auto run = [&](std::string name, bool hot) -> asio::awaitable<void> {
        Scenario s{.name = std::move(name)};
        const auto commands_before = co_await commands_processed(probe);
        const double redis_cpu_before = co_await redis_cpu_seconds(probe);
        const auto calls_before = store.stats().client.calls;
        const double cpu_before = cpu_us();
        const auto start = now_ns();
        const auto end = start + static_cast<std::int64_t>(o.seconds * 1e9);
        std::atomic<unsigned> running{o.concurrency};
        auto worker = [&](unsigned id) -> asio::awaitable<void> {
            std::mt19937_64 rng(id);
            std::string key;
            while (now_ns() < end) {
                key = hot ? std::string("hot") : "k" + std::to_string(rng() % o.keys);
                const std::array keyed = {ratelimit::MemoryStore::KeyedLimits{key, hot ? tight : roomy}};
                const std::span<const ratelimit::MemoryStore::KeyedLimits> keys(keyed);
                const std::int64_t t = now_ns();
                const auto d = co_await store.decide(keys, 1, t, t);
                ++s.decisions;
                s.allowed += d.allowed;
                // Decisions from the cache or a lease complete without waiting: let the others (and
                // the timers of calls in flight) run, as a server's socket reads would.
                if (s.decisions % 32 == 0)
                    co_await asio::post(io, asio::use_awaitable);
            }
            --running;
        };
        for (unsigned i = 0; i < o.concurrency; ++i)
            asio::co_spawn(io, worker(i), asio::detached);
        asio::steady_timer tick(io);
        while (running.load() > 0) {
            tick.expires_after(std::chrono::milliseconds(5));
            co_await tick.async_wait(asio::use_awaitable);
        }
        s.seconds = static_cast<double>(now_ns() - start) / 1e9;
        s.client_cpu_us = cpu_us() - cpu_before;
        const auto commands_after = co_await commands_processed(probe);
        s.redis_cpu_us = (co_await redis_cpu_seconds(probe) - redis_cpu_before) * 1e6;
        s.redis_commands = commands_after - commands_before - 1;  // minus our own INFO
        s.round_trips = store.stats().client.calls - calls_before;
        results.push_back(s);
    };
    int status = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer wait(io);
            for (int i = 0; i < 200 && (!store.up() || !probe.up()); ++i) {
                wait.expires_after(std::chrono::milliseconds(10));
                co_await wait.async_wait(asio::use_awaitable);
            }
            if (!store.up()) {
                std::fprintf(stderr, "rlgate-bench: no Redis at %s\n", o.address.c_str());
                status = 1;
            } else {
                co_await run("random_keys", false);
                co_await run("hot_key_over_limit", true);
            }
            store.stop();
            probe.stop();
        },
        asio::detached);
    io.run();
    if (status)
        return status;

    if (o.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& s : results)
            out.push_back({{"name", s.name},
                           {"decisions_per_sec", static_cast<double>(s.decisions) / s.seconds},
                           {"allowed", s.allowed},
                           {"redis_commands_per_sec", static_cast<double>(s.redis_commands) / s.seconds},
                           {"round_trips_per_decision",
                            s.decisions ? static_cast<double>(s.round_trips) / static_cast<double>(s.decisions) : 0.0},
                           {"redis_commands_per_decision",
                            s.decisions ? static_cast<double>(s.redis_commands) / static_cast<double>(s.decisions) : 0.0},
                           {"client_cpu_us_per_decision",
                            s.decisions ? s.client_cpu_us / static_cast<double>(s.decisions) : 0.0},
                           {"redis_cpu_us_per_decision",
                            s.decisions ? s.redis_cpu_us / static_cast<double>(s.decisions) : 0.0}});
        std::printf("%s\n", nlohmann::json{{"concurrency", o.concurrency}, {"results", out}}.dump().c_str());
        return 0;
    }
    // Redis counts the commands a script runs (TIME, GET, SET ...) besides the EVALSHA itself.
    std::printf("%-20s %14s %10s %16s %14s %14s %14s %14s\n", "scenario", "decisions/s", "allowed", "redis cmds/s",
                "cmds/decision", "trips/decision", "client cpu us", "redis cpu us");
    for (const auto& s : results) {
        const double n = s.decisions ? static_cast<double>(s.decisions) : 1.0;
        std::printf("%-20s %14.0f %10llu %16.0f %14.3f %14.3f %14.2f %14.2f\n", s.name.c_str(),
                    static_cast<double>(s.decisions) / s.seconds, static_cast<unsigned long long>(s.allowed),
                    static_cast<double>(s.redis_commands) / s.seconds, static_cast<double>(s.redis_commands) / n,
                    static_cast<double>(s.round_trips) / n, s.client_cpu_us / n, s.redis_cpu_us / n);
    }
    return 0;
}

}  // namespace rlgate::bench
