// SPDX-License-Identifier: BSD-2-Clause
// rlgate-bench: benchmark programs that print figures (never pass/fail).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <exception>
#include <iostream>

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

    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(spdlog::level::warn);
    try {
        if (xdp_cmd->parsed())
            return rlgate::bench::run_xdp_bench(xdp);
    } catch (const std::exception& e) {
        std::cerr << "rlgate-bench: " << e.what() << "\n";
        return 1;
    }
    return 1;
}
