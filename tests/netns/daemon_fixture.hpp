// SPDX-License-Identifier: BSD-2-Clause
// Fixture of the daemon tests: a veth pair between two namespaces, rlgated
// in one (attached to "vb"), rlgate-flood in the other.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>

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

    // Output (stdout+stderr) and exit code of rlctl.
    std::string rlctl(const std::string& args, int* code = nullptr) {
        int status = 0;
        auto out = shell(std::string(RLCTL_PATH) + " --socket " + daemon_->socket() + " " + args, &status);
        if (code)
            *code = WEXITSTATUS(status);
        return out;
    }
    json rlctl_json(const std::string& args) {
        int code = 0;
        const auto out = rlctl("--json " + args, &code);
        EXPECT_EQ(code, 0) << out;
        return json::parse(out, nullptr, false);
    }

    std::unique_ptr<VethPair> pair_;
    std::unique_ptr<DaemonProcess> daemon_;
};

// The token-bucket bound of a source over `seconds`: its burst plus the refill.
// A raw connection to the control socket, for what rlctl would never send.
class RawConnection {
public:
    explicit RawConnection(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        connected_ = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
        error_ = connected_ ? 0 : errno;
        timeval tv{10, 0};
        setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    [[nodiscard]] bool connected() const { return connected_; }
    [[nodiscard]] int error() const { return error_; }
    void send(const std::string& bytes) {
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::send(fd_.get(), bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (n <= 0)
                return;
            done += static_cast<std::size_t>(n);
        }
    }
    json reply() {
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                auto line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return json::parse(line);
            }
            char b[4096];
            const ssize_t n = ::recv(fd_.get(), b, sizeof b, 0);
            if (n <= 0)
                return json{{"closed", true}};
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }

private:
    UniqueFd fd_;
    bool connected_ = false;
    int error_ = 0;
    std::string buf_;
};

inline double bound(double pps, double burst, double seconds) { return burst + pps * seconds; }

}  // namespace rlgate::testing
