// SPDX-License-Identifier: BSD-2-Clause
// `rlgate-bench xdp`: ns/packet of rl_xdp under a realistic policy, side by
// side with an empty XDP_PASS program measured in the same run.
//
// Uses the kernel's own per-repetition duration from BPF_PROG_TEST_RUN,
// which excludes the fixed ~16 ms a run with repeat > 1 spends swapping
// the XDP dispatcher.
#include "xdp_bench.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "bench_bpf.skel.h"
#include "core/net/frame.hpp"
#include "dataplane/bpf_error.hpp"
#include "dataplane/dataplane.hpp"
#include "realistic_policy.hpp"

namespace rlgate::bench {
namespace {

struct BenchSkelDeleter {
    void operator()(bench_bpf* s) const { bench_bpf__destroy(s); }
};
using BenchSkel = std::unique_ptr<bench_bpf, BenchSkelDeleter>;

struct Result {
    std::string name;
    double ns_per_pkt = 0;
    double x_floor = 0;
    std::string note;
};

std::vector<std::uint8_t> udp_frame(const char* src) {
    net::FrameSpec s;
    s.src = *net::IpAddress::parse(src);
    s.dst = *net::IpAddress::parse(s.src.v4 ? "198.51.100.1" : "2001:db8:ffff::1");
    s.dport = 9999;
    return net::build_frame(s).bytes;
}

double run_ns(int prog_fd, const std::vector<std::uint8_t>& frame, std::uint32_t repeat) {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<std::uint32_t>(frame.size());
    opts.repeat = repeat;
    check_bpf(bpf_prog_test_run_opts(prog_fd, &opts), "BPF_PROG_TEST_RUN");
    return opts.duration;
}

double median_ns(int prog_fd, const std::vector<std::uint8_t>& frame, const XdpBenchOptions& o) {
    std::vector<double> v;
    for (int r = 0; r < o.rounds; ++r)
        v.push_back(run_ns(prog_fd, frame, o.repeat));
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int run_xdp_bench(const XdpBenchOptions& o) {
    BenchSkel ref(bench_bpf__open());
    if (!ref)
        throw BpfError(errno, "open bench programs");
    ref->rodata->churn_sources = o.churn_sources;
    ref->rodata->churn_base = kChurnBase;
    check_bpf(bench_bpf__load(ref.get()), "load bench programs (needs root)");

    DataplaneOptions dopts;
    dopts.bucket_entries = o.churn_map_entries;
    Dataplane dp(dopts);
    auto pol = realistic_policy(o.policy_prefixes);
    if (o.no_global)
        pol.global = {};
    const auto compiled = policy::compile(pol);
    dp.apply_policy(compiled);
    dp.add_ban(*net::Cidr::parse(kBannedPrefix), std::chrono::nanoseconds(0));

    const int floor_fd = bpf_program__fd(ref->progs.bench_pass);
    const int churn_fd = bpf_program__fd(ref->progs.bench_churn);
    const int rl_fd = dp.program_fd();
    const int progs_fd = bpf_map__fd(ref->maps.bench_progs);
    const std::uint32_t slot0 = 0;

    const auto under = udp_frame(kUnderSource);
    const auto over = udp_frame(kOverSource);
    const auto banned = udp_frame(kBannedSource);
    const auto v6 = udp_frame(kV6UnderSource);
    const auto churn = udp_frame("11.0.0.1");

    const double floor = median_ns(floor_fd, under, o);
    std::vector<Result> results;
    auto add = [&](std::string name, double ns, std::string note = {}) {
        results.push_back({std::move(name), ns, ns / floor, std::move(note)});
    };
    add("single_under", median_ns(rl_fd, under, o));
    add("single_over", median_ns(rl_fd, over, o));
    add("banned", median_ns(rl_fd, banned, o));
    add("ipv6_under", median_ns(rl_fd, v6, o));

    // Churn: the mutator's own cost first (tail call into the empty program),
    // then the same stream into rl_xdp after one warm-up round.
    check_bpf(bpf_map_update_elem(progs_fd, &slot0, &floor_fd, BPF_ANY), "set tail call");
    const double churn_floor = median_ns(churn_fd, churn, o);
    check_bpf(bpf_map_update_elem(progs_fd, &slot0, &rl_fd, BPF_ANY), "set tail call");
    // The stream into `prog` (a dataplane's rl_xdp): ns/pkt and bucket inserts per packet.
    auto churn_into = [&](const Dataplane& target, std::uint32_t repeat_shift) {
        const int fd = target.program_fd();
        check_bpf(bpf_map_update_elem(progs_fd, &slot0, &fd, BPF_ANY), "set tail call");
        ref->bss->churn_repeat_shift = repeat_shift;
        run_ns(churn_fd, churn, o.repeat);
        const auto before = target.read_counters().health[RL_HEALTH_BUCKET_INSERTS];
        const double ns = median_ns(churn_fd, churn, o);
        const auto inserts = target.read_counters().health[RL_HEALTH_BUCKET_INSERTS] - before;
        return std::pair{ns, static_cast<double>(inserts) / (static_cast<double>(o.repeat) * o.rounds)};
    };
    const auto [churn_ns, inserts_per_pkt] = churn_into(dp, 0);
    add("churn_1m", churn_ns,
        fmt::format("{} sources, {}-entry map, {:.2f} inserts/pkt, mutator {:.1f} ns incl.", o.churn_sources,
                    o.churn_map_entries, inserts_per_pkt, churn_floor - floor));
    std::rotate(results.begin() + 2, results.end() - 1, results.end());  // order of the table

    // The same stream with two packets per source in a row (every second
    // packet makes a bucket), and into a dataplane without the seen filter
    // (every packet makes a bucket): what a new source costs once it returns.
    std::vector<Result> extras;
    auto add_extra = [&](std::string name, std::pair<double, double> r, std::string note) {
        extras.push_back({std::move(name), r.first, r.first / floor,
                          fmt::format("{:.2f} inserts/pkt, {}", r.second, note)});
    };
    add_extra("churn_1m_pairs", churn_into(dp, 1), "each source twice in a row");
    {
        DataplaneOptions unfiltered = dopts;
        unfiltered.seen_filter = false;
        Dataplane dp2(unfiltered);
        dp2.apply_policy(compiled);
        dp2.add_ban(*net::Cidr::parse(kBannedPrefix), std::chrono::nanoseconds(0));
        add_extra("churn_1m_nofilter", churn_into(dp2, 0), "seen filter off: a bucket per new source");
    }
    ref->bss->churn_repeat_shift = 0;

    // What one LRU lookup (plus insert on a miss) costs by itself, by key size
    // (the cost no per-source design can avoid; rl_bucket_key is 16 bytes),
    // and what each clock helper costs.
    std::vector<Result> references;
    if (o.references) {
        const std::pair<const char*, bpf_program*> refs[] = {
            {"lru_key8", ref->progs.bench_lookup8},   {"lru_key12", ref->progs.bench_lookup12},
            {"lru_key16", ref->progs.bench_lookup16}, {"lru_key20", ref->progs.bench_lookup},
            {"lru_key8_cas", ref->progs.bench_lookup_cas}, {"set4_key16_cas", ref->progs.bench_set4},
            {"ktime_get_ns", ref->progs.bench_ktime},
            {"ktime_coarse", ref->progs.bench_coarse},     {"jiffies64", ref->progs.bench_jiffies}};
        for (const auto& [name, prog] : refs) {
            const double ns = median_ns(bpf_program__fd(prog), under, o);
            references.push_back({name, ns, ns / floor, "reference"});
        }
        // The same churn stream into the bare bucket stores.
        const std::pair<const char*, bpf_program*> churn_refs[] = {{"lru_key16_churn", ref->progs.bench_lookup16},
                                                                   {"set4_churn", ref->progs.bench_set4}};
        for (const auto& [name, prog] : churn_refs) {
            const int fd = bpf_program__fd(prog);
            check_bpf(bpf_map_update_elem(progs_fd, &slot0, &fd, BPF_ANY), "set tail call");
            run_ns(churn_fd, churn, o.repeat);
            const double ns = median_ns(churn_fd, churn, o);
            references.push_back({name, ns, ns / floor, "reference, mutator incl."});
        }
    }

    if (o.json) {
        nlohmann::json j;
        j["floor_ns"] = floor;
        j["churn_mutator_ns"] = churn_floor;
        j["repeat"] = o.repeat;
        j["rounds"] = o.rounds;
        j["policy_prefixes"] = compiled.class_entries.size();
        j["churn_inserts_per_pkt"] = inserts_per_pkt;
        for (const auto& r : results)
            j["results"].push_back({{"name", r.name}, {"ns_per_pkt", r.ns_per_pkt}, {"x_floor", r.x_floor}});
        for (const auto& r : extras)
            j["extras"].push_back({{"name", r.name}, {"ns_per_pkt", r.ns_per_pkt}, {"x_floor", r.x_floor}});
        for (const auto& r : references)
            j["references"].push_back({{"name", r.name}, {"ns_per_pkt", r.ns_per_pkt}, {"x_floor", r.x_floor}});
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::cout << fmt::format("rl_xdp vs empty XDP_PASS, BPF_PROG_TEST_RUN, repeat {} x {} rounds (median), "
                             "{} policy prefixes, {} rules\n",
                             o.repeat, o.rounds, compiled.class_entries.size(), pol.rules.size());
    std::cout << fmt::format("{:<18} {:>10} {:>9}  {}\n", "scenario", "ns/pkt", "x floor", "");
    std::cout << fmt::format("{:<18} {:>10.1f} {:>9.2f}\n", "floor", floor, 1.0);
    for (const auto* list : {&results, &extras, &references})
        for (const auto& r : *list)
            std::cout << fmt::format("{:<18} {:>10.1f} {:>9.2f}  {}\n", r.name, r.ns_per_pkt, r.x_floor, r.note);
    return 0;
}

}  // namespace rlgate::bench
