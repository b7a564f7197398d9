// SPDX-License-Identifier: BSD-2-Clause
// Maps can be pinned on bpffs and carry BTF: `bpftool map dump` prints named
// fields, which is how operators inspect a running dataplane.
#include <bpf/bpf.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <gmock/gmock.h>
#include <map>
#include <nlohmann/json.hpp>

#include "dataplane/unique_fd.hpp"
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
    ASSERT_EQ(passes(udp_from("192.0.2.1"), 2), 2);  // the second packet makes the bucket
    dp_->pin_maps(dir_);
    for (const char* name : {"rl_ctl", "rl_policy", "rl_class", "rl_bans", "rl_buckets", "rl_seen", "rl_seen_clock",
                             "rl_stats", "rl_events"})
        EXPECT_TRUE(std::filesystem::exists(dir_ + "/" + name)) << name;

    // rl_buckets is an array of sets: one entry per set, each with its keys and buckets by name.
    auto sets = nlohmann::json::parse(run_command("bpftool -j map dump pinned " + dir_ + "/rl_buckets"));
    EXPECT_EQ(sets.size(), dp_->buckets().sets());
    std::vector<std::pair<nlohmann::json, nlohmann::json>> used;  // key, bucket
    for (const auto& set : sets) {
        const auto& v = set["formatted"]["value"];
        ASSERT_EQ(v["keys"].size(), RL_BUCKET_WAYS) << v.dump();
        for (std::size_t w = 0; w < RL_BUCKET_WAYS; ++w)
            if (v["keys"][w]["prefixlen"] != 0)
                used.emplace_back(v["keys"][w], v["buckets"][w]);
    }
    ASSERT_EQ(used.size(), 1U);
    EXPECT_EQ(used[0].first["prefixlen"], 128);
    EXPECT_EQ(used[0].first["rule"], RL_BUCKET_KEY_V4);
    EXPECT_TRUE(used[0].second.contains("pkt_tat_q")) << used[0].second.dump();
    EXPECT_EQ(used[0].second["passed"], 2);
    EXPECT_EQ(sets[dp_->buckets().set_of(bucket_key(*IpAddress::parse("192.0.2.1"), 128, 0))]["formatted"]["value"]
                   ["keys"][0]["prefixlen"],
              128)
        << "the source sits in the set userspace computes for it";

    auto bans = nlohmann::json::parse(run_command("bpftool -j map dump pinned " + dir_ + "/rl_bans"));
    ASSERT_EQ(bans.size(), 1U);
    EXPECT_TRUE(bans[0]["formatted"]["value"].contains("expires_ns")) << bans.dump();
    EXPECT_EQ(bans[0]["formatted"]["key"]["prefixlen"], RL_LPM_SLOT_BITS + 96 + 24);

    auto ctl = nlohmann::json::parse(run_command("bpftool -j map dump pinned " + dir_ + "/rl_ctl"));
    EXPECT_EQ(ctl[0]["formatted"]["value"]["policy_gen"], dp_->policy_generation());
}

// A dataplane created with a pin_dir, as rlgated runs it.
class PinnedStateTest : public PinningTest {
protected:
    DataplaneOptions options() const override {
        auto o = XdpTest::options();
        o.pin_dir = "/sys/fs/bpf/rlgate-test-state-" + std::to_string(getpid());
        return o;
    }
    void TearDown() override {
        dp_.reset();
        remove_pinned_state(options().pin_dir);
        EXPECT_FALSE(std::filesystem::exists(options().pin_dir));
    }
    std::unique_ptr<Dataplane> reopen(DataplaneOptions o) {
        dp_.reset();  // the daemon dies: only the pins keep the maps
        return std::make_unique<Dataplane>(o);
    }
};

TEST_F(PinnedStateTest, RestartAdoptsBucketsBansPolicyAndCounters) {
    ASSERT_FALSE(dp_->adopted());
    const auto gen = apply(limited_policy(1, 5));  // one token per second: none refills during the restart
    dp_->add_ban(*Cidr::parse("203.0.113.0/24"), std::chrono::seconds(600));
    const auto src = udp_from("192.0.2.1");
    EXPECT_EQ(passes(src, 8), 5);  // burst 5, then limited
    const auto key = bucket_key(*IpAddress::parse("192.0.2.1"), 128, 0);
    const auto before = dp_->lookup_bucket(key);
    ASSERT_TRUE(before);

    dp_ = reopen(options());
    EXPECT_TRUE(dp_->adopted());
    EXPECT_EQ(dp_->policy_generation(), gen);
    const auto after = dp_->lookup_bucket(key);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->pkt_tat_q, before->pkt_tat_q);
    EXPECT_EQ(after->passed, 5U);
    EXPECT_EQ(after->dropped, 3U);
    ASSERT_EQ(dp_->list_bans().size(), 1U);
    EXPECT_EQ(dp_->list_bans()[0].prefix.to_string(), "203.0.113.0/24");
    EXPECT_EQ(count(RL_REASON_RATE, RL_VERDICT_DROP), 3U);
    // The new program enforces the adopted state at once: the bucket is still empty.
    EXPECT_EQ(run(src), XDP_DROP);
    EXPECT_EQ(run(udp_from("203.0.113.9")), XDP_DROP);
    EXPECT_EQ(count(RL_REASON_BAN, RL_VERDICT_DROP), 1U);
}

TEST_F(PinnedStateTest, IncompatibleLayoutIsRefusedWithTheWayOut) {
    auto other = options();
    other.bucket_entries *= 2;
    try {
        dp_ = reopen(other);
        FAIL() << "adopted a bucket map of another size";
    } catch (const std::exception& e) {
        EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("rl_buckets does not match"));
        EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("rlgated --cleanup"));
    }
    EXPECT_TRUE(std::filesystem::exists(options().pin_dir + "/rl_buckets"));  // left untouched
}

TEST_F(PinnedStateTest, OtherLayoutVersionIsRefusedWithTheWayOut) {
    // The pinned maps of a release with another layout: same sizes, other rl_ctl.abi_version.
    const std::string ctl_path = options().pin_dir + "/rl_ctl";
    {
        UniqueFd ctl_fd(bpf_obj_get(ctl_path.c_str()));
        ASSERT_TRUE(ctl_fd.valid());
        const std::uint32_t key = 0;
        rl_ctl ctl{};
        ASSERT_EQ(bpf_map_lookup_elem(ctl_fd.get(), &key, &ctl), 0);
        ctl.abi_version = RL_ABI_VERSION + 1;
        ASSERT_EQ(bpf_map_update_elem(ctl_fd.get(), &key, &ctl, BPF_ANY), 0);
    }
    try {
        dp_ = reopen(options());
        FAIL() << "adopted maps of another layout version";
    } catch (const std::exception& e) {
        EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("layout version " + std::to_string(RL_ABI_VERSION + 1)));
        EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("rlgated --cleanup"));
    }
    EXPECT_TRUE(std::filesystem::exists(ctl_path)) << "refused, not destroyed";
}

TEST_F(PinnedStateTest, RemovePinnedStateDropsEverything) {
    apply(limited_policy(10, 5));
    dp_->remove_pinned_state();
    EXPECT_FALSE(std::filesystem::exists(options().pin_dir));
    dp_ = reopen(options());
    EXPECT_FALSE(dp_->adopted());
    EXPECT_EQ(dp_->policy_generation(), 0U);
}

TEST_F(PinnedStateTest, SnapshotCountsPerSourcePackets) {
    apply(limited_policy(1000, 1000));
    passes(udp_from("192.0.2.1"), 7);
    passes(udp_from("192.0.2.2"), 2);
    std::map<std::string, std::uint32_t> seen;
    for (const auto& e : dp_->snapshot_buckets()) {
        IpAddress a = IpAddress::from_v4_bytes({e.key.addr[0], e.key.addr[1], e.key.addr[2], e.key.addr[3]});
        seen[a.to_string()] = e.value.passed;
    }
    EXPECT_EQ(seen.size(), 2U);
    EXPECT_EQ(seen["192.0.2.1"], 7U);
    EXPECT_EQ(seen["192.0.2.2"], 2U);
}

}  // namespace
}  // namespace rlgate::testing
