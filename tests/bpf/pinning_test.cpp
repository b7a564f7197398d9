// SPDX-License-Identifier: BSD-2-Clause
// Maps can be pinned on bpffs and carry BTF: `bpftool map dump` prints named
// fields, which is how operators inspect a running dataplane.
#include <sys/statfs.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "xdp_fixture.hpp"

namespace rlgate::testing {
namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;

std::string run_command(const std::string& cmd) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
    std::string out;
    std::array<char, 4096> buf{};
    while (pipe && fgets(buf.data(), buf.size(), pipe.get()))
        out += buf.data();
    return out;
}

class PinningTest : public XdpTest {
protected:
    void SetUp() override {
        XdpTest::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        struct statfs fs {};
        RLGATE_REQUIRE(statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == kBpfFsMagic,
                       "bpffs is not mounted on /sys/fs/bpf (scripts/setup-deps.sh mounts it)");
        RLGATE_REQUIRE(std::system("command -v bpftool >/dev/null") == 0, "bpftool not installed");
        dir_ = "/sys/fs/bpf/rlgate-test-" + std::to_string(getpid());
    }
    void TearDown() override {
        if (!dir_.empty() && dp_) {
            try {
                dp_->unpin_maps(dir_);
            } catch (const std::exception&) {
            }
            std::error_code ec;
            std::filesystem::remove(dir_, ec);
        }
    }
    std::string dir_;
};

TEST_F(PinningTest, PinnedMapsDumpWithNamedFields) {
    apply(limited_policy(10, 5));
    dp_->add_ban(*Cidr::parse("203.0.113.0/24"), std::chrono::seconds(60));
    ASSERT_EQ(run(udp_from("192.0.2.1")), XDP_PASS);
    dp_->pin_maps(dir_);
    for (const char* name : {"rl_ctl", "rl_policy", "rl_class", "rl_bans", "rl_buckets", "rl_stats", "rl_events"})
        EXPECT_TRUE(std::filesystem::exists(dir_ + "/" + name)) << name;

    auto buckets = nlohmann::json::parse(run_command("bpftool -j map dump pinned " + dir_ + "/rl_buckets"));
    ASSERT_EQ(buckets.size(), 1U);
    const auto& f = buckets[0]["formatted"];
    EXPECT_TRUE(f["value"].contains("pkt_tat_q")) << buckets.dump();
    EXPECT_TRUE(f["key"].contains("prefixlen")) << buckets.dump();
    EXPECT_EQ(f["key"]["prefixlen"], 128);

    auto bans = nlohmann::json::parse(run_command("bpftool -j map dump pinned " + dir_ + "/rl_bans"));
    ASSERT_EQ(bans.size(), 1U);
    EXPECT_TRUE(bans[0]["formatted"]["value"].contains("expires_ns")) << bans.dump();
    EXPECT_EQ(bans[0]["formatted"]["key"]["prefixlen"], RL_LPM_SLOT_BITS + 96 + 24);

    auto ctl = nlohmann::json::parse(run_command("bpftool -j map dump pinned " + dir_ + "/rl_ctl"));
    EXPECT_EQ(ctl[0]["formatted"]["value"]["policy_gen"], dp_->policy_generation());
}

}  // namespace
}  // namespace rlgate::testing
