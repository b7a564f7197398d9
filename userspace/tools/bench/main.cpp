// SPDX-License-Identifier: BSD-2-Clause
// rlgate-bench: benchmark programs that print figures (never pass/fail).
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <iostream>

#include "e2e_bench.hpp"
#include "l7_lib_bench.hpp"
#include "l7_redis_bench.hpp"
#include "policy_bench.hpp"
#include "xdp_bench.hpp"

int main(int argc, char** argv) {
    CLI::App app{"rlgate benchmarks: prints figures side by side with reference programs"};
    app.require_subcommand(1);

    rlgate::bench::XdpBenchOptions xdp;
    auto* xdp_cmd = app.add_subcommand("xdp", "ns/packet of the XDP program with BPF_PROG_TEST_RUN vs an empty program");
    xdp_cmd->add_option("--repeat", xdp.repeat, "packets per measurement (>= 1,000,000)")->check(CLI::Range(1'000'000U, 100'000'000U));
    xdp_cmd->add_option("--rounds", xdp.rounds, "rounds per scenario; the median is reported")->check(CLI::Range(1, 50));
    xdp_cmd->add_option("--churn-map-entries", xdp.churn_map_entries, "bucket map size in the churn scenario");
    xdp_cmd->add_option("--churn-sources", xdp.churn_sources, "distinct sources in the churn scenario");
    xdp_cmd->add_flag("--json", xdp.json, "print JSON");
    xdp_cmd->add_option("--policy-prefixes", xdp.policy_prefixes, "allow/deny/tier prefixes in the policy");
    xdp_cmd->add_flag("--references", xdp.references, "also time reference programs: one bare LRU lookup per key size, each clock helper");
    xdp_cmd->add_flag("--no-global", xdp.no_global, "load the policy without its global limit");

    rlgate::bench::E2eBenchOptions e2e;
    auto* e2e_cmd = app.add_subcommand(
        "e2e", "packets/s through a veth pair flooded by rlgate-flood: XDP_DROP vs rlgate vs nftables (root)");
    e2e_cmd->add_option("--count", e2e.count, "frames per measurement")->check(CLI::Range(10'000ULL, 1'000'000'000ULL));
    e2e_cmd->add_option("--threads", e2e.threads, "generator threads, one CPU each")->check(CLI::Range(1U, 64U));
    e2e_cmd->add_option("--rounds", e2e.rounds, "rounds per measurement; the median is reported")->check(CLI::Range(1, 50));
    e2e_cmd->add_option("--warmup", e2e.warmup, "unmeasured rounds before each measurement")->check(CLI::Range(0, 10));
    e2e_cmd->add_option("--duration", e2e.duration, "seconds one generator run may last at most")->check(CLI::Range(1.0, 600.0));
    e2e_cmd->add_option("--flood", e2e.flood, "path of rlgate-flood (default: ../rlgate-flood from this binary's directory)");
    e2e_cmd->add_option("--limit-pps", e2e.limit_pps, "per-source limit of rlgate and nft, packets/s")->check(CLI::Range(1ULL, 1'000'000ULL));
    e2e_cmd->add_option("--limit-burst", e2e.limit_burst, "per-source burst of rlgate and nft, packets")->check(CLI::Range(1ULL, 1'000'000ULL));
    e2e_cmd->add_flag("--json", e2e.json, "print JSON");

    rlgate::bench::PolicyBenchOptions pol;
    auto* policy_cmd = app.add_subcommand("policy", "time to parse, compile and apply a config with many prefixes (root)");
    policy_cmd->add_option("--prefixes", pol.prefixes, "allow/deny/tier prefixes")->check(CLI::Range(1UL, 30'000UL));
    policy_cmd->add_option("--rounds", pol.rounds, "rounds; the median is reported")->check(CLI::Range(1, 50));
    policy_cmd->add_flag("--json", pol.json, "print JSON");

    rlgate::bench::AutobanBenchOptions ab;
    auto* autoban_cmd = app.add_subcommand("autoban", "time from flood start to kernel ban, packets leaked before it (root)");
    autoban_cmd->add_option("--limit-pps", ab.limit_pps, "per-source limit")->check(CLI::Range(1ULL, 1'000'000ULL));
    autoban_cmd->add_option("--limit-burst", ab.limit_burst, "per-source burst")->check(CLI::Range(1ULL, 1'000'000ULL));
    autoban_cmd->add_option("--drops", ab.drops, "auto-ban threshold (drops within 10 s)")->check(CLI::Range(1U, 10'000'000U));
    autoban_cmd->add_option("--flood", ab.flood, "path of rlgate-flood");
    autoban_cmd->add_flag("--json", ab.json, "print JSON");

    rlgate::bench::ScrapeBenchOptions sc;
    auto* scrape_cmd = app.add_subcommand("scrape", "/metrics latency of rlgated tracking 1M sources, XDP cost while scraping (root)");
    scrape_cmd->add_option("--sources", sc.sources, "buckets in the map")->check(CLI::Range(1U, 8'000'000U));
    scrape_cmd->add_option("--scrapes", sc.scrapes, "timed scrapes")->check(CLI::Range(1, 10'000));
    scrape_cmd->add_option("--rlgated", sc.rlgated, "path of rlgated");
    scrape_cmd->add_flag("--json", sc.json, "print JSON");

    rlgate::bench::L7LibBenchOptions l7;
    auto* l7_cmd = app.add_subcommand("l7lib", "decisions/s of the L7 limiter's in-memory store on one core");
    l7_cmd->add_option("--keys", l7.keys, "warm keys")->check(CLI::Range(1UL, 10'000'000UL));
    l7_cmd->add_option("--seconds", l7.seconds, "per algorithm")->check(CLI::Range(0.1, 60.0));
    l7_cmd->add_flag("--json", l7.json, "print JSON");

    rlgate::bench::L7RedisBenchOptions l7r;
    auto* l7r_cmd = app.add_subcommand("l7redis", "decisions/s of rlgate-l7's Redis store against one Redis, commands per decision");
    l7r_cmd->add_option("--redis", l7r.address, "HOST:PORT of a Redis to use (its keys under bench:)")->capture_default_str();
    l7r_cmd->add_option("--keys", l7r.keys, "distinct keys")->check(CLI::Range(1UL, 10'000'000UL));
    l7r_cmd->add_option("--concurrency", l7r.concurrency, "decisions in flight")->check(CLI::Range(1U, 4096U));
    l7r_cmd->add_option("--connections", l7r.connections, "connections to Redis")->check(CLI::Range(1U, 64U));
    l7r_cmd->add_option("--seconds", l7r.seconds, "per scenario")->check(CLI::Range(0.1, 120.0));
    l7r_cmd->add_option("--lease", l7r.lease, "token leasing: decisions charged per Redis call for hot callers (0: off)")
        ->check(CLI::Range(0U, 10'000U));
    l7r_cmd->add_option("--batch", l7r.batch, "decisions per EVALSHA at most while Redis is busy (1: one each)")
        ->check(CLI::Range(1U, 256U));
    l7r_cmd->add_flag("--json", l7r.json, "print JSON");

    CLI11_PARSE(app, argc, argv);
    spdlog::set_default_logger(spdlog::stderr_color_mt("rlgate-bench"));  // stdout carries the figures (--json)
    spdlog::set_level(spdlog::level::warn);
    try {
        if (xdp_cmd->parsed())
            return rlgate::bench::run_xdp_bench(xdp);
        if (e2e_cmd->parsed())
            return rlgate::bench::run_e2e_bench(e2e);
        if (l7_cmd->parsed())
            return rlgate::bench::run_l7_lib_bench(l7);
        if (l7r_cmd->parsed())
            return rlgate::bench::run_l7_redis_bench(l7r);
        if (scrape_cmd->parsed())
            return rlgate::bench::run_scrape_bench(sc);
        if (autoban_cmd->parsed())
            return rlgate::bench::run_autoban_bench(ab);
        if (policy_cmd->parsed())
            return rlgate::bench::run_policy_bench(pol);
    } catch (const std::exception& e) {
        std::cerr << "rlgate-bench: " << e.what() << "\n";
        return 1;
    }
    return 1;
}
