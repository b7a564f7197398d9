// SPDX-License-Identifier: BSD-2-Clause
// The admin listener of a real daemon: /metrics agrees with the BPF maps to
// the packet and parses strictly, the token is enforced, a slowloris client
// cannot starve it, oversized requests get their status, and alerts reach a
// webhook once per episode, retried while the receiver is down.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "netns/daemon_fixture.hpp"
#include "rlgate/abi.h"
#include "support/http_client.hpp"
#include "support/prometheus_parser.hpp"

namespace rlgate::testing {
namespace {

constexpr std::uint16_t kAdminPort = 9477;

class ObservabilityTest : public DaemonTest {
protected:
    // Runs in the daemon's namespace, where its loopback listener lives.
    HttpResult get(const std::string& path, const std::map<std::string, std::string>& headers = {}) {
        InNetns in(pair_->ns_b());
        return http_request(kAdminPort, "GET", path, headers);
    }
    double sum(const std::vector<PromSample>& samples, const std::string& name,
               const std::map<std::string, std::string>& match = {}) {
        double s = 0;
        for (const auto& x : samples)
            if (x.name == name && std::all_of(match.begin(), match.end(), [&](const auto& kv) {
                    auto it = x.labels.find(kv.first);
                    return it != x.labels.end() && it->second == kv.second;
                }))
                s += x.value;
        return s;
    }
    // Straight from the pinned per-CPU map: the ground truth.
    std::uint64_t map_packets(std::uint32_t verdict) {
        UniqueFd fd(bpf_obj_get((daemon_->pin_dir() + "/rl_stats").c_str()));
        const int ncpu = libbpf_num_possible_cpus();
        std::vector<rl_counter> per_cpu(static_cast<std::size_t>(ncpu));
        std::uint64_t total = 0;
        for (std::uint32_t i = 0; i < RL_STATS_ENTRIES; ++i) {
            if (i % RL_VERDICTS != verdict)
                continue;
            EXPECT_EQ(bpf_map_lookup_elem(fd.get(), &i, per_cpu.data()), 0);
            for (const auto& c : per_cpu)
                total += c.packets;
        }
        return total;
    }
};

TEST_F(ObservabilityTest, MetricsMatchTheMapsExactlyAndParseStrictly) {
    auto cfg = base_config({{"default", tier(1000, 100)}});
    cfg["admin"] = {{"listen", "127.0.0.1:9477"}};
    daemon_->write_config(cfg);
    daemon_->start();
    const auto f = flood("10.230.0.1", 10, 50000, 1.0);
    const auto r = get("/metrics");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    std::vector<PromSample> samples;
    ASSERT_NO_THROW(samples = parse_prometheus(r.body)) << r.body;
    const auto passed = map_packets(RL_VERDICT_PASS), dropped = map_packets(RL_VERDICT_DROP);
    EXPECT_EQ(passed + dropped, f["sent"].get<std::uint64_t>());
    EXPECT_EQ(sum(samples, "rlgate_packets_total", {{"verdict", "pass"}}), static_cast<double>(passed));
    EXPECT_EQ(sum(samples, "rlgate_packets_total", {{"verdict", "drop"}}), static_cast<double>(dropped));
    EXPECT_EQ(sum(samples, "rlgate_packets_total", {{"verdict", "drop"}, {"reason", "rate"}, {"tier", "default"}}),
              static_cast<double>(dropped));
    EXPECT_EQ(sum(samples, "rlgate_interface_packets_total", {{"interface", "vb"}}),
              static_cast<double>(f["sent"].get<std::uint64_t>()));
    EXPECT_EQ(sum(samples, "rlgate_interface_attached", {{"interface", "vb"}, {"mode", "native"}}), 1.0);
    EXPECT_EQ(sum(samples, "rlgate_policy_generation"), 1.0);
    for (const auto& s : samples)
        for (const auto& [label, value] : s.labels)
            EXPECT_NE(label, "source") << "no label per source address";
    // The JSON API tells the same.
    const auto stats = json::parse(get("/api/v1/stats").body);
    EXPECT_EQ(stats["dropped"]["packets"].get<std::uint64_t>(), dropped);
    EXPECT_EQ(get("/api/v1/nosuch").status, 404);
    EXPECT_EQ(json::parse(get("/api/v1/status").body)["admin"], "http://127.0.0.1:9477/");
    {
        InNetns in(pair_->ns_b());
        const auto w = http_request(kAdminPort, "POST", "/api/v1/ban", {{"Content-Type", "application/json"}},
                                    R"({"cidr":"203.0.113.0/24"})");
        EXPECT_EQ(w.status, 403) << "without a token the listener only reads: any local user reaches loopback";
    }
    EXPECT_TRUE(daemon_->call("ban.list")["bans"].empty());
    EXPECT_EQ(get("/api/v1/status", {{"Host", "rebind.example:9477"}}).status, 403) << "DNS rebinding";
    EXPECT_EQ(get("/api/v1/status", {{"Host", "127.evil.example"}}).status, 403) << "a name that looks like 127/8";
    EXPECT_EQ(get("/api/v1/status", {{"Host", "localhost:9477"}}).status, 200);
}

TEST_F(ObservabilityTest, BeyondLoopbackTheTokenIsRequired) {
    auto cfg = base_config({{"default", tier(1000, 100)}});
    cfg["admin"] = {{"listen", "0.0.0.0:9477"}, {"token", "s3cret-token-for-the-test"}};
    daemon_->write_config(cfg);
    daemon_->start();
    InNetns in(pair_->ns_b());
    auto r = http_request(kAdminPort, "GET", "/metrics", {}, {}, "10.201.0.2");
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.headers["www-authenticate"], "Bearer realm=\"rlgate\"");
    EXPECT_EQ(http_request(kAdminPort, "GET", "/metrics", {{"Authorization", "Bearer wrong-token-of-the-same-len"}}, {}, "10.201.0.2").status,
              401);
    EXPECT_EQ(http_request(kAdminPort, "GET", "/metrics", {{"Authorization", "Bearer s3cret-token-for-the-test"}}, {}, "10.201.0.2").status,
              200);
    EXPECT_EQ(http_request(kAdminPort, "POST", "/api/v1/ban", {{"Content-Type", "application/json"}},
                           R"({"cidr":"203.0.113.0/24"})", "10.201.0.2")
                  .status,
              401)
        << "writes too";
    EXPECT_EQ(http_request(kAdminPort, "POST", "/api/v1/ban",
                           {{"Content-Type", "application/json"}, {"Authorization", "Bearer s3cret-token-for-the-test"}},
                           R"({"cidr":"203.0.113.0/24","ttl_s":60})", "10.201.0.2")
                  .status,
              200);
    EXPECT_EQ(http_request(kAdminPort, "POST", "/api/v1/unban",
                           {{"Content-Type", "text/plain"}, {"Authorization", "Bearer s3cret-token-for-the-test"}},
                           R"({"cidr":"203.0.113.0/24"})", "10.201.0.2")
                  .status,
              415)
        << "a form post cannot change state";
}

TEST_F(ObservabilityTest, SlowClientsAndOversizedRequestsCannotStarveTheListener) {
    auto cfg = base_config({{"default", tier(1000, 100)}});
    cfg["admin"] = {{"listen", "127.0.0.1:9477"}, {"max_connections", 8}};
    daemon_->write_config(cfg);
    daemon_->start();
    InNetns in(pair_->ns_b());
    std::vector<UniqueFd> slow;
    for (int i = 0; i < 20; ++i) {  // more than the listener holds, each an unfinished request
        slow.push_back(tcp_connect("127.0.0.1", kAdminPort));
        send_all(slow.back().get(), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = http_request(kAdminPort, "GET", "/api/v1/version");
    EXPECT_EQ(r.status, 200) << "a real client still gets through";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));

    auto fd = tcp_connect("127.0.0.1", kAdminPort);
    send_all(fd.get(), "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(100'000, 'a') + "\r\n\r\n");
    EXPECT_EQ(read_response(fd.get()).status, 431);
    EXPECT_EQ(http_request(kAdminPort, "POST", "/api/v1/ban", {{"Content-Type", "application/json"}}, std::string(100'000, ' ')).status,
              413);
    auto garbage = tcp_connect("127.0.0.1", kAdminPort);
    send_all(garbage.get(), "\x16\x03\x01 this is not HTTP\r\n\r\n");
    EXPECT_EQ(read_response(garbage.get()).status, 400);
    EXPECT_EQ(http_request(kAdminPort, "GET", "/api/v1/version").status, 200) << "still serving";
}

// Records what a webhook receives; "down" until started.
class Receiver {
public:
    explicit Receiver(std::string netns) : netns_(std::move(netns)) {}
    ~Receiver() { stop(); }
    void start(std::uint16_t port) {
        running_ = true;
        thread_ = std::thread([this, port] {
            InNetns in(netns_);
            UniqueFd srv(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            int one = 1;
            ::setsockopt(srv.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (::bind(srv.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(srv.get(), 16) != 0)
                return;
            timeval tv{0, 200'000};
            ::setsockopt(srv.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            while (running_) {
                UniqueFd c(::accept(srv.get(), nullptr, nullptr));
                if (!c.valid())
                    continue;
                std::string raw;
                char buf[8192];
                for (;;) {
                    const ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
                    if (n <= 0)
                        break;
                    raw.append(buf, static_cast<std::size_t>(n));
                    const auto end = raw.find("\r\n\r\n");
                    const auto cl = raw.find("Content-Length: ");
                    if (end != std::string::npos && cl != std::string::npos &&
                        raw.size() >= end + 4 + std::stoul(raw.substr(cl + 16)))
                        break;
                }
                {
                    std::lock_guard lock(mu_);
                    bodies_.push_back(json::parse(raw.substr(raw.find("\r\n\r\n") + 4), nullptr, false));
                }
                send_all(c.get(), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
    }
    void stop() {
        running_ = false;
        if (thread_.joinable())
            thread_.join();
    }
    std::vector<json> bodies() {
        std::lock_guard lock(mu_);
        return bodies_;
    }

private:
    std::string netns_;
    std::atomic<bool> running_{false};
    std::thread thread_;
    std::mutex mu_;
    std::vector<json> bodies_;
};

TEST_F(ObservabilityTest, AlertsReachTheWebhookOncePerEpisodeRetriedWhileItIsDown) {
    auto cfg = base_config({{"default", tier(100, 20)}});
    cfg["admin"] = {{"listen", "127.0.0.1:9477"}};
    cfg["alerts"] = {{"rules", {{{"name", "flood"}, {"type", "drop_ratio"}, {"above", 0.5}, {"for", "1s"}, {"window", "3s"}}}},
                     {"webhooks", {{{"url", "http://127.0.0.1:9555/hook"}, {"timeout", "1s"}}}},
                     {"max_backoff", "1s"}};
    daemon_->write_config(cfg);
    daemon_->start();
    Receiver receiver(pair_->ns_b());  // down for now

    flood("10.231.0.1", 1, 20000, 3.0);
    json alerts;
    for (int i = 0; i < 50; ++i) {
        alerts = daemon_->call("alerts");
        if (alerts["webhooks"][0]["failed_attempts"].get<int>() >= 1)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(alerts["recent"][0]["status"], "firing") << alerts.dump();
    EXPECT_GE(alerts["webhooks"][0]["failed_attempts"].get<int>(), 1) << "the receiver is down: retried";
    receiver.start(9555);

    // The flood is over: the ratio falls to 0 and, a second later, the alert resolves.
    for (int i = 0; i < 100 && receiver.bodies().size() < 2; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto got = receiver.bodies();
    ASSERT_EQ(got.size(), 2U) << daemon_->call("alerts").dump();
    EXPECT_EQ(got[0]["alert"], "flood");
    EXPECT_EQ(got[0]["status"], "firing");
    EXPECT_GT(got[0]["value"].get<double>(), 0.5);
    EXPECT_EQ(got[1]["status"], "resolved");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(receiver.bodies().size(), 2U) << "one firing and one resolved per episode, nothing more";
    alerts = daemon_->call("alerts");
    EXPECT_EQ(alerts["webhooks"][0]["delivered"], 2);
    EXPECT_EQ(alerts["webhooks"][0]["dropped"], 0);
    EXPECT_EQ(alerts["alerts"][0]["state"], "inactive");
    const auto table = rlctl("alerts");
    EXPECT_NE(table.find("flood  drop_ratio  inactive"), std::string::npos) << table;
    EXPECT_NE(table.find("http://127.0.0.1:9555/hook"), std::string::npos) << table;
}

}  // namespace
}  // namespace rlgate::testing
