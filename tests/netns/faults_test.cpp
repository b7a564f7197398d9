// SPDX-License-Identifier: BSD-2-Clause
// Fault injection on a running rlgated: its interface deleted and created again,
// a full disk under its state directory, its bpffs unmounted. Each fault has a
// defined outcome: enforcement never stops and nothing is lost or left stale.
#include <sys/mount.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "netns/daemon_fixture.hpp"

namespace rlgate::testing {
namespace {

using FaultsTest = DaemonTest;

// Polls `pred` every 50 ms for up to `seconds`.
template <class Pred>
bool eventually(Pred pred, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pred();
}

json interface_status(DaemonProcess& d, const std::string& name) {
    const auto status = d.call("status");  // a local: a range-for over a temporary's member dangles
    for (const auto& i : status["interfaces"])
        if (i["name"] == name)
            return i;
    return nullptr;
}

TEST_F(FaultsTest, ADeletedInterfaceIsProtectedAgainAsSoonAsItExistsAgain) {
    daemon_->write_config(base_config({{"default", tier(100, 50)}}));
    daemon_->start();
    pair_->delete_link();
    // The kernel detached the program with the interface; the daemon notices and waits for it.
    EXPECT_TRUE(eventually([&] { return interface_status(*daemon_, "vb").is_null(); }, 3))
        << daemon_->call("status").dump();
    EXPECT_NE(daemon_->log_text().find("detached behind our back"), std::string::npos);

    pair_->create_link();
    ASSERT_TRUE(eventually(
        [&] {
            const auto i = interface_status(*daemon_, "vb");
            return !i.is_null() && i["link_alive"] == true;
        },
        3))
        << "the recreated interface stayed unprotected: " << daemon_->call("status").dump();
    EXPECT_NE(shell("ip -n " + pair_->ns_b() + " -d link show vb").find("prog/xdp"), std::string::npos);
    // And it limits again: one source at 20,000 pps for 1 s against 100 pps, burst 50.
    const auto stats_before = daemon_->call("stats");
    const auto f = flood("10.206.0.1", 1, 20000, 1.0);
    const auto passed =
        tier_packets(daemon_->call("stats"), "default", "pass") - tier_packets(stats_before, "default", "pass");
    EXPECT_GT(f["sent"].get<std::uint64_t>(), 5000U);
    EXPECT_LE(static_cast<double>(passed), 50 + 100 * (f["seconds"].get<double>() + 0.5));
}

// A tmpfs of 256 KiB mounted on the state directory, unmounted at scope exit.
class TinyDisk {
public:
    explicit TinyDisk(std::string dir) : dir_(std::move(dir)) {
        std::filesystem::create_directories(dir_);
        mounted_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=256k,mode=0700") == 0;
    }
    ~TinyDisk() {
        if (mounted_)
            ::umount2(dir_.c_str(), MNT_DETACH);
    }
    TinyDisk(const TinyDisk&) = delete;
    TinyDisk& operator=(const TinyDisk&) = delete;
    [[nodiscard]] bool mounted() const { return mounted_; }
    void fill() { shell("dd if=/dev/zero of=" + dir_ + "/filler bs=4k 2>/dev/null; sync"); }
    void free() { std::filesystem::remove(dir_ + "/filler"); }

private:
    std::string dir_;
    bool mounted_ = false;
};

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), {}};
}

TEST_F(FaultsTest, AFullDiskKeepsTheOldStateFileAndCatchesUpWhenSpaceReturns) {
    TinyDisk disk(daemon_->state_dir());
    ASSERT_TRUE(disk.mounted()) << "mount tmpfs: " << std::strerror(errno);
    daemon_->write_config(base_config({{"default", tier(100, 50)}}));
    daemon_->start();
    const std::string bans_file = daemon_->state_dir() + "/bans.json";
    daemon_->call("ban.add", {{"cidr", "203.0.113.0/24"}, {"ttl_s", 3600}});
    ASSERT_TRUE(eventually([&] { return read_text(bans_file).find("203.0.113.0/24") != std::string::npos; }, 3));
    const auto saved = read_text(bans_file);

    disk.fill();
    for (int i = 0; i < 50; ++i)  // enough bans that the new file cannot fit in what is left
        daemon_->call("ban.add", {{"cidr", "198.18." + std::to_string(i) + ".0/24"}, {"ttl_s", 3600}});
    EXPECT_TRUE(eventually([&] { return daemon_->log_text().find("cannot save the ban state") != std::string::npos; }, 3))
        << daemon_->log_text();
    EXPECT_EQ(read_text(bans_file), saved) << "the old state file was damaged";
    EXPECT_FALSE(json::parse(read_text(bans_file), nullptr, false).is_discarded());
    EXPECT_FALSE(std::filesystem::exists(bans_file + ".tmp")) << "a partial file was left behind";
    EXPECT_EQ(daemon_->call("ban.list")["bans"].size(), 51U) << "the kernel enforces the bans regardless";

    disk.free();
    EXPECT_TRUE(eventually([&] { return read_text(bans_file).find("198.18.49.0/24") != std::string::npos; }, 3))
        << "the state file did not catch up once space returned";
    EXPECT_FALSE(json::parse(read_text(bans_file), nullptr, false).is_discarded());
}

TEST_F(FaultsTest, UnmountedBpffsIsPinnedAgainWhileEnforcementGoesOn) {
    daemon_->use_private_bpffs();
    daemon_->write_config(base_config({{"default", tier(100, 50)}}));
    daemon_->start();
    const std::string ctl = daemon_->pin_dir() + "/rl_ctl", link = daemon_->pin_dir() + "/links/vb";
    int status = 0;
    daemon_->in_daemon_mounts("test -e " + ctl + " && test -e " + link, &status);
    ASSERT_EQ(status, 0) << "no pins in the daemon's bpffs";

    daemon_->in_daemon_mounts("umount /sys/fs/bpf", &status);
    ASSERT_EQ(status, 0);
    // The program runs on the daemon's fds: a flood is still limited.
    const auto stats_before = daemon_->call("stats");
    const auto f = flood("10.207.0.1", 1, 20000, 1.0);
    const auto passed =
        tier_packets(daemon_->call("stats"), "default", "pass") - tier_packets(stats_before, "default", "pass");
    EXPECT_LE(static_cast<double>(passed), 50 + 100 * (f["seconds"].get<double>() + 0.5));
    // And the pins come back (on a bpffs mounted again) for the next restart to adopt.
    EXPECT_TRUE(eventually(
        [&] {
            int st = 0;
            daemon_->in_daemon_mounts("test -e " + ctl + " && test -e " + link + " && test -e " +
                                          daemon_->pin_dir() + "/rl_buckets",
                                      &st);
            return st == 0;
        },
        3))
        << daemon_->log_text();
    EXPECT_NE(daemon_->log_text().find("pinned again"), std::string::npos);
    EXPECT_EQ(daemon_->in_daemon_mounts("stat -f -c %T /sys/fs/bpf"), "bpf_fs\n");
}

json ban_of(DaemonProcess& d, const std::string& source) {
    const auto list = d.call("ban.list");
    for (const auto& b : list["bans"])
        if (b["source"] == source)
            return b;
    return nullptr;
}

TEST_F(FaultsTest, AWallClockStepNeitherLiftsNorExtendsBans) {
    const std::string faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    RLGATE_REQUIRE(std::filesystem::exists(faketime), "needs libfaketime (Debian package faketime)");
    // rlgated's wall clock follows this file; its monotonic clock and the kernel's stay real.
    const std::string offset_file = (daemon_->dir() / "wall-offset").string();
    std::ofstream(offset_file) << "+0\n";
    daemon_->set_env("LD_PRELOAD", faketime);
    daemon_->set_env("FAKETIME_TIMESTAMP_FILE", offset_file);
    daemon_->set_env("FAKETIME_NO_CACHE", "1");
    daemon_->set_env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    // Under AddressSanitizer (preset asan) the preloaded library comes before its runtime.
    const char* asan = std::getenv("ASAN_OPTIONS");
    daemon_->set_env("ASAN_OPTIONS", std::string(asan ? asan : "") + (asan ? ":" : "") + "verify_asan_link_order=0");
    daemon_->write_config(base_config({{"default", tier(100, 50)}}));
    daemon_->start();
    daemon_->call("ban.add", {{"cidr", "203.0.113.0/24"}, {"ttl_s", 3}});
    daemon_->call("ban.add", {{"cidr", "198.51.100.0/24"}, {"ttl_s", 3600}});

    std::ofstream(offset_file) << "-1d\n";  // the wall clock steps back a day
    EXPECT_TRUE(eventually([&] { return ban_of(*daemon_, "203.0.113.0/24").is_null(); }, 6))
        << "a 3 s ban outlived a backward step of the wall clock: " << daemon_->call("ban.list").dump();

    std::ofstream(offset_file) << "+2d\n";  // and forward two days
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const auto kept = ban_of(*daemon_, "198.51.100.0/24");
    ASSERT_FALSE(kept.is_null()) << "a forward step of the wall clock lifted a 1 h ban";
    EXPECT_GT(kept["remaining_s"].get<double>(), 3500) << kept.dump();
    EXPECT_LE(kept["remaining_s"].get<double>(), 3600) << kept.dump();
    // The kernel still drops the banned prefix.
    const auto before = daemon_->call("stats");
    flood("198.51.100.7", 1, 1000, 0.5);
    const auto after = daemon_->call("stats");
    EXPECT_EQ(tier_packets(after, "default", "pass"), tier_packets(before, "default", "pass"));
}

}  // namespace
}  // namespace rlgate::testing
