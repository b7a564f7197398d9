// SPDX-License-Identifier: BSD-2-Clause
#include "policy_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/config/config.hpp"
#include "dataplane/dataplane.hpp"
#include "realistic_policy.hpp"

namespace rlgate::bench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json limit_json(const policy::RateLimit& l) {
    json j = json::object();
    if (l.packets_per_sec)
        j.update({{"pps", l.packets_per_sec}, {"burst", l.burst_packets}});
    if (l.bytes_per_sec)
        j.update({{"bytes_per_sec", l.bytes_per_sec}, {"burst_bytes", l.burst_bytes}});
    return j;
}

// The config file an operator would write for `p`.
std::string config_text(const policy::Policy& p) {
    nlohmann::ordered_json tiers = nlohmann::ordered_json::object();
    for (const auto& t : p.tiers) {
        nlohmann::ordered_json tj = limit_json(t.limit);
        tj["prefix_v4"] = t.prefix_v4;
        tj["prefix_v6"] = t.prefix_v6;
        if (t.autoban.drops)
            tj["autoban"] = {{"drops", t.autoban.drops},
                             {"window", std::to_string(t.autoban.window_ns / 1'000'000) + "ms"},
                             {"ban", std::to_string(t.autoban.ban_ns / 1'000'000) + "ms"}};
        json members = json::array();
        for (const auto& m : p.members)
            if (m.tier == t.name)
                members.push_back(m.prefix.to_string());
        if (!members.empty())
            tj["members"] = members;
        tiers[t.name] = tj;
    }
    json rules = json::array();
    for (const auto& r : p.rules) {
        json rj = limit_json(r.limit);
        rj["name"] = r.name;
        rj["proto"] = r.protocol == policy::RuleProtocol::tcp ? "tcp" : r.protocol == policy::RuleProtocol::udp ? "udp" : "other";
        if (r.protocol != policy::RuleProtocol::other)
            rj["ports"] = std::to_string(r.port_first) + "-" + std::to_string(r.port_last);
        if (r.syn_only)
            rj["syn_only"] = true;
        rules.push_back(rj);
    }
    json allow = json::array(), deny = json::array();
    for (const auto& c : p.allow)
        allow.push_back(c.to_string());
    for (const auto& c : p.deny)
        deny.push_back(c.to_string());
    nlohmann::ordered_json cfg;
    cfg["maps"] = {{"classes", 65536}};
    cfg["default_tier"] = p.default_tier;
    cfg["tiers"] = tiers;
    cfg["rules"] = rules;
    cfg["allow"] = allow;
    cfg["deny"] = deny;
    cfg["global"] = limit_json(p.global);
    return cfg.dump(1);
}

double median_ms(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <typename F>
double time_ms(F&& f) {
    const auto t0 = Clock::now();
    f();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

int run_policy_bench(const PolicyBenchOptions& o) {
    const auto text = config_text(realistic_policy(o.prefixes));
    DataplaneOptions dopts;
    dopts.class_entries = 65536;
    dopts.bucket_entries = 65536;
    Dataplane dp(dopts);

    std::vector<double> parse, compile, apply;
    std::size_t entries = 0;
    for (int i = 0; i < o.rounds; ++i) {
        config::Config cfg;
        parse.push_back(time_ms([&] { cfg = config::parse_config(text, "bench.json"); }));  // includes validation
        policy::CompiledPolicy compiled;
        compile.push_back(time_ms([&] { compiled = policy::compile(cfg.policy); }));
        entries = compiled.class_entries.size();
        apply.push_back(time_ms([&] { dp.apply_policy(compiled); }));
    }
    const double p = median_ms(parse), c = median_ms(compile), a = median_ms(apply);
    if (o.json) {
        std::printf("%s\n", json{{"prefixes", entries},
                                 {"config_bytes", text.size()},
                                 {"parse_validate_ms", p},
                                 {"compile_ms", c},
                                 {"apply_ms", a},
                                 {"total_ms", p + c + a}}
                                .dump()
                                .c_str());
    } else {
        std::printf("policy with %zu prefixes (%zu KiB of config), median of %d rounds:\n", entries, text.size() / 1024,
                    o.rounds);
        std::printf("  parse + validate   %8.1f ms\n  compile            %8.1f ms\n  apply to the maps  %8.1f ms\n"
                    "  total              %8.1f ms   (goal: < 1000 ms)\n",
                    p, c, a, p + c + a);
    }
    return 0;
}

}  // namespace rlgate::bench
