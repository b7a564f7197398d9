// SPDX-License-Identifier: BSD-2-Clause
// The loader attached to a real veth in a namespace of its own, fed by
// rlgate-flood from the peer namespace: counters match what was sent, the
// limit holds, and detaching really removes the program.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/policy/policy.hpp"
#include "dataplane/bpf_error.hpp"
#include "dataplane/dataplane.hpp"
#include "support/bpf_env.hpp"
#include "support/netns.hpp"

namespace rlgate::testing {
namespace {

class AttachTest : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(geteuid() == 0, "needs root for namespaces and XDP");
        RLGATE_REQUIRE(shell("command -v ip") != "", "iproute2 not installed");
        pair_ = std::make_unique<VethPair>("rlt");
        DataplaneOptions o;
        o.bucket_entries = 4096;
        o.class_entries = 256;
        o.ban_entries = 256;
        dp_ = std::make_unique<Dataplane>(o);
        policy::Policy p;
        p.tiers.push_back({.name = "default", .limit = {.packets_per_sec = 100, .burst_packets = 50}});
        dp_->apply_policy(policy::compile(p));
    }

    nlohmann::json flood(const std::string& args) {
        int status = 0;
        const auto out = shell("ip netns exec " + pair_->ns_a() + " " + RLGATE_FLOOD_PATH +
                                   " --dev va --dst 10.201.0.2 --dst-mac " + pair_->mac_b() + " --json " + args,
                               &status);
        EXPECT_EQ(status, 0) << out;
        return nlohmann::json::parse(out.substr(out.find('{')));
    }

    std::string xdp_of_vb() { return shell("ip -n " + pair_->ns_b() + " -d link show vb"); }

    std::unique_ptr<VethPair> pair_;
    std::unique_ptr<Dataplane> dp_;
};

TEST_F(AttachTest, NativeAttachLimitsAFloodAndCountsEveryFrame) {
    {
        InNetns in(pair_->ns_b());
        EXPECT_EQ(dp_->attach("vb", AttachMode::native), AttachMode::native);
        EXPECT_THROW(dp_->attach("vb", AttachMode::native), BpfError) << "second attach refused";
        EXPECT_THROW(dp_->attach("no-such-if", AttachMode::native), BpfError);
    }
    EXPECT_NE(xdp_of_vb().find("xdp"), std::string::npos);

    const auto sent_json = flood("--count 200000 --sources 10 --threads 1");
    const auto sent = sent_json["sent"].get<std::uint64_t>();
    const double seconds = sent_json["seconds"].get<double>();
    ASSERT_EQ(sent, 200000U);

    const auto c = dp_->read_counters();
    const auto passed = c.packets(RL_REASON_WITHIN_LIMIT, RL_VERDICT_PASS);
    const auto dropped = c.packets(RL_REASON_RATE, RL_VERDICT_DROP);
    EXPECT_EQ(passed + dropped, sent) << "every flood frame reached the program and was classified";
    // 10 sources: each passes its burst of 50 plus 100 pps while the flood lasts.
    const double max_passed = 10 * (50 + 100 * (seconds + 0.01));
    EXPECT_GE(passed, 500U);
    EXPECT_LE(static_cast<double>(passed), max_passed) << "passed " << passed << " in " << seconds << " s";
    EXPECT_EQ(dp_->attachments().at("vb"), AttachMode::native);

    dp_->detach("vb");
    EXPECT_EQ(xdp_of_vb().find("prog/xdp"), std::string::npos) << xdp_of_vb();
}

TEST_F(AttachTest, GenericModeOnRequestAndDetachOnDestruction) {
    {
        InNetns in(pair_->ns_b());
        EXPECT_EQ(dp_->attach("vb", AttachMode::generic), AttachMode::generic);
    }
    EXPECT_NE(xdp_of_vb().find("xdpgeneric"), std::string::npos) << xdp_of_vb();
    dp_.reset();  // closing the link detaches
    EXPECT_EQ(xdp_of_vb().find("xdpgeneric"), std::string::npos) << xdp_of_vb();
}

}  // namespace
}  // namespace rlgate::testing
