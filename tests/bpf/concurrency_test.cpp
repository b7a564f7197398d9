// SPDX-License-Identifier: BSD-2-Clause
// Two threads pinned to different CPUs drive one source far over its rate
// through the real program; the passed count must stay within ±2% of
// burst + rate × elapsed. A per-CPU bucket would pass ~2x; a racy update
// would pass more or less than the rate. The bound is exact only while the
// sender never idles longer than burst/rate (a token bucket forgets credit
// beyond its depth), hence the generous burst.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "xdp_fixture.hpp"

namespace rlgate::testing {
namespace {

TEST_F(XdpTest, OneSourceFromTwoCpusStaysWithinTwoPercent) {
    const unsigned cpus = std::thread::hardware_concurrency();
    RLGATE_REQUIRE(cpus >= 2, "needs two CPUs");
    constexpr std::uint64_t rate = 100'000;  // pps
    // 100 ms of burst: a sender thread descheduled for less than that loses
    // no credit, so the bound holds on a busy CI machine too.
    constexpr std::uint64_t burst = 10'000;
    apply(limited_policy(rate, burst));
    const auto frame = build_frame(udp_from("192.0.2.1")).bytes;

    std::atomic<bool> stop{false};
    std::atomic<int> ready{0};
    // The window is measured where packets are sent: from the first call of
    // either thread to the end of the last one, on the program's own clock.
    std::uint64_t first_call[2] = {}, last_call[2] = {};
    auto worker = [&](int cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        first_call[cpu] = dp_->clock().rl_now_ns;
        // repeat = 1: a run with repeat > 1 swaps the kernel's XDP dispatcher
        // twice (~16 ms of RCU waits here), pausing both senders in lockstep.
        while (!stop.load(std::memory_order_relaxed))
            dp_->test_run(frame, 1);
        last_call[cpu] = dp_->clock().rl_now_ns;
    };
    std::thread a(worker, 0), b(worker, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop = true;
    a.join();
    b.join();
    const auto start = std::min(first_call[0], first_call[1]);
    const auto end = std::max(last_call[0], last_call[1]);

    const auto c = dp_->read_counters();
    const auto passed = static_cast<double>(c.packets(RL_REASON_WITHIN_LIMIT, RL_VERDICT_PASS));
    const auto dropped = static_cast<double>(c.packets(RL_REASON_RATE, RL_VERDICT_DROP));
    const double elapsed_s = static_cast<double>(end - start) / 1e9;
    const double expected = static_cast<double>(burst) + static_cast<double>(rate) * elapsed_s;
    EXPECT_GT(dropped, 3 * passed) << "the source must be driven well over its rate";
    EXPECT_NEAR(passed, expected, expected * 0.02)
        << "passed " << passed << " dropped " << dropped << " over " << elapsed_s << " s; CAS retries "
        << c.health[RL_HEALTH_CAS_RETRY] << ", exhausted " << c.health[RL_HEALTH_CAS_EXHAUSTED];
    RecordProperty("passed", std::to_string(passed));
    RecordProperty("expected", std::to_string(expected));
    RecordProperty("cas_retries", std::to_string(c.health[RL_HEALTH_CAS_RETRY]));
}

}  // namespace
}  // namespace rlgate::testing
