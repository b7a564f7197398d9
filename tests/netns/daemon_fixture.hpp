// SPDX-License-Identifier: BSD-2-Clause
// Fixture of the daemon tests: a veth pair between two namespaces, rlgated
// in one (attached to "vb"), rlgate-flood in the other.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "support/bpf_env.hpp"
#include "support/daemon_process.hpp"
#include "support/netns.hpp"

namespace rlgate::testing {

using nlohmann::json;

class DaemonTest : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(geteuid() == 0, "needs root for namespaces, XDP and bpffs");
        RLGATE_REQUIRE(shell("command -v ip") != "" && shell("command -v nsenter") != "",
                       "iproute2 and util-linux (nsenter) needed");
        pair_ = std::make_unique<VethPair>("rld");
        daemon_ = std::make_unique<DaemonProcess>(pair_->ns_b(), "dt");
    }
    void TearDown() override {
        if (HasFailure() && daemon_)
            std::cerr << "--- rlgated log ---\n" << daemon_->log_text() << std::endl;
        daemon_.reset();
        pair_.reset();
    }

    static json tier(std::uint64_t pps, std::uint64_t burst) { return {{"pps", pps}, {"burst", burst}}; }
    json base_config(json tiers) const {
        return {{"interfaces", {{{"name", "vb"}, {"mode", "native"}}}}, {"tiers", std::move(tiers)}};
    }

    // Frames from `src` (and the next sources-1 addresses) to the daemon's side.
    json flood(const std::string& src, unsigned sources, unsigned rate, double seconds) {
        int status = 0;
        const auto out = shell("ip netns exec " + pair_->ns_a() + " " + RLGATE_FLOOD_PATH + " --dev va --dst 10.201.0.2 --dst-mac " +
                                   pair_->mac_b() + " --json --src " + src + " --sources " + std::to_string(sources) +
                                   " --rate " + std::to_string(rate) + " --duration " + std::to_string(seconds) +
                                   " --count 0",
                               &status);
        EXPECT_EQ(status, 0) << out;
        const auto brace = out.find('{');
        return brace == std::string::npos ? json{{"sent", 0}, {"seconds", 0.0}} : json::parse(out.substr(brace));
    }

    // Packets of one tier, by verdict, from `rlctl stats`' by_class rows.
    std::uint64_t tier_packets(const json& stats, const std::string& tier, const std::string& verdict) {
        std::uint64_t n = 0;
        for (const auto& row : stats["by_class"])
            if (row["tier"] == tier && row["verdict"] == verdict)
                n += row["packets"].get<std::uint64_t>();
        return n;
    }

    // Waits until a file-change reload succeeded past generation `gen`, or failed.
    json wait_for_reload(std::uint32_t gen, bool want_ok) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        json st;
        while (std::chrono::steady_clock::now() < deadline) {
            st = daemon_->call("status");
            const auto& last = st["last_reload"];
            if (last["trigger"] == "file change" &&
                (want_ok ? last["ok"] == true && st["policy_generation"].get<std::uint32_t>() > gen
                         : last["ok"] == false))
                return st;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ADD_FAILURE() << "no reload seen: " << st.dump();
        return st;
    }

    std::unique_ptr<VethPair> pair_;
    std::unique_ptr<DaemonProcess> daemon_;
};

// The token-bucket bound of a source over `seconds`: its burst plus the refill.
inline double bound(double pps, double burst, double seconds) { return burst + pps * seconds; }

}  // namespace rlgate::testing
