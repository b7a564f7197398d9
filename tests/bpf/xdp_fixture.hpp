// SPDX-License-Identifier: BSD-2-Clause
// Fixture for tests that run crafted frames through the real XDP program with
// BPF_PROG_TEST_RUN. Each test gets a freshly loaded program and maps.
#pragma once

#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <memory>

#include "core/net/frame.hpp"
#include "core/policy/policy.hpp"
#include "dataplane/dataplane.hpp"
#include "support/bpf_env.hpp"

namespace rlgate::testing {

using net::build_frame;
using net::Cidr;
using net::Frame;
using net::FrameSpec;
using net::IpAddress;

inline FrameSpec udp_from(const char* src, std::uint16_t dport = 53) {
    FrameSpec s;
    s.src = *IpAddress::parse(src);
    s.dst = *IpAddress::parse(s.src.v4 ? "198.51.100.1" : "2001:db8:ffff::1");
    s.protocol = net::kProtoUdp;
    s.dport = dport;
    return s;
}

inline FrameSpec tcp_from(const char* src, std::uint16_t dport, bool syn) {
    FrameSpec s = udp_from(src, dport);
    s.protocol = net::kProtoTcp;
    s.syn = syn;
    s.ack = !syn;
    return s;
}

inline policy::Policy limited_policy(std::uint64_t pps, std::uint64_t burst) {
    policy::Policy p;
    p.tiers.push_back({.name = "default", .limit = {.packets_per_sec = pps, .burst_packets = burst}});
    p.default_tier = "default";
    return p;
}

class XdpTest : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(geteuid() == 0, "loading BPF programs needs root (CAP_BPF + CAP_NET_ADMIN)");
        std::string error;
        try {
            dp_ = std::make_unique<Dataplane>(options());
        } catch (const std::exception& e) {
            error = e.what();
        }
        RLGATE_REQUIRE(dp_ != nullptr, "cannot load the XDP program: " + error);
    }

    virtual DataplaneOptions options() const {
        DataplaneOptions o;
        o.bucket_entries = 8192;
        o.class_entries = 4096;
        o.ban_entries = 1024;
        return o;
    }

    std::uint32_t run(const FrameSpec& spec) { return dp_->test_run(build_frame(spec).bytes).verdict; }
    std::uint32_t run_bytes(const std::vector<std::uint8_t>& bytes) { return dp_->test_run(bytes).verdict; }
    std::uint32_t apply(const policy::Policy& p) { return dp_->apply_policy(policy::compile(p)); }
    std::uint64_t count(std::uint32_t reason, std::uint32_t verdict) const {
        return dp_->read_counters().packets(reason, verdict);
    }
    // Sends `n` copies; returns how many passed.
    int passes(const FrameSpec& spec, int n) {
        const auto bytes = build_frame(spec).bytes;
        int passed = 0;
        for (int i = 0; i < n; ++i)
            passed += dp_->test_run(bytes).verdict == XDP_PASS;
        return passed;
    }

    std::unique_ptr<Dataplane> dp_;
};

}  // namespace rlgate::testing
