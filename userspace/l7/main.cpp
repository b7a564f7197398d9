// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7: the companion HTTP API limiter. Unprivileged: refuses to run as
// root unless told which user to become once its port is bound.
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <mutex>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "core/config/json_reader.hpp"
#include "l7/escalator.hpp"
#include "l7/limiter.hpp"
#include "l7/redis_store.hpp"
#include "l7/server.hpp"

namespace asio = boost::asio;
using namespace rlgate;

namespace {

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::shared_ptr<const l7::L7Config> load(const std::string& path) {
    const auto text = read_file(path);
    if (!text)
        throw config::ConfigError(path, "", std::string("cannot read: ") + std::strerror(errno));
    return std::make_shared<const l7::L7Config>(l7::parse_l7_config(*text, path, read_file));
}

// Drops root for good: supplementary groups of `user` (so an escalation
// group membership counts), then its gid and uid.
void become(const std::string& user) {
    const passwd* pw = ::getpwnam(user.c_str());
    if (!pw)
        throw std::runtime_error("--user: no user named '" + user + "'");
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
        throw std::runtime_error("--user: cannot switch to '" + user + "': " + std::strerror(errno));
    if (::setuid(0) == 0)
        throw std::runtime_error("--user: root could be regained; refusing to run");
}

void set_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"rlgate-l7: HTTP API rate limiter (forward-auth or reverse proxy)"};
    std::string config_path = "/etc/rlgate/l7.json";
    std::string user;
    bool check = false;
    unsigned threads = std::max(1U, std::thread::hardware_concurrency());
    app.add_option("-c,--config", config_path, "config file (JSON with comments)")->capture_default_str();
    app.add_flag("--check", check, "validate the config and exit (0 valid, 1 invalid)");
    app.add_option("--user", user, "when started as root: the user to run as once the port is bound");
    app.add_option("--threads", threads, "worker threads (default: one per CPU)")->check(CLI::Range(1U, 256U));
    app.add_flag_callback("--version", [] {
        std::printf("rlgate-l7 %s\n", RLGATE_VERSION);
        throw CLI::Success();
    }, "print the version");
    CLI11_PARSE(app, argc, argv);

    std::shared_ptr<const l7::L7Config> cfg;
    try {
        cfg = load(config_path);
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "rlgate-l7: invalid config: %s\n", e.what());
        return 1;
    }
    if (check) {
        std::printf("%s: valid (%s mode, %zu tiers, %zu endpoints)\n", config_path.c_str(),
                    cfg->mode == l7::Mode::proxy ? "proxy" : "forward-auth", cfg->tiers.size(), cfg->endpoints.size());
        return 0;
    }
    if (::geteuid() == 0 && user.empty()) {
        std::fprintf(stderr,
                     "rlgate-l7: refusing to run as root: it parses untrusted HTTP. Start it as a dedicated user "
                     "(systemd: DynamicUser=yes or User=), or pass --user NAME to switch after binding.\n");
        return 1;
    }
    set_level(cfg->log_level);

    try {
        asio::io_context io(static_cast<int>(threads));
        l7::Limiter limiter(cfg, l7::system_clock());
        // The config as written, and rlgated's tier factors applied to it (from_rlgated.limits): the
        // SIGHUP handler and the policy fetch run on any of the io threads, hence the lock.
        std::mutex follow_mu;
        std::shared_ptr<const l7::L7Config> file_config = cfg;
        std::map<std::string, double> followed_factors;
        int missed_fetches = 0;
        const auto apply_factors = [&](std::map<std::string, double> factors) {  // with follow_mu held
            followed_factors = std::move(factors);
            limiter.reload(followed_factors.empty()
                               ? file_config
                               : std::make_shared<const l7::L7Config>(l7::scale_tiers(*file_config, followed_factors)));
        };
        l7::Escalator escalator(io, cfg->escalation.socket);
        std::unique_ptr<l7::RedisStore> redis;
        if (cfg->redis) {
            redis = std::make_unique<l7::RedisStore>(io, *cfg->redis, cfg->store_max_keys);
            redis->start();
            spdlog::info("limits shared through redis {}:{} (prefix {}, timeout {} ms, when it cannot answer: {})",
                         cfg->redis->host, cfg->redis->port, cfg->redis->prefix, cfg->redis->timeout_ns / 1'000'000,
                         cfg->redis->on_failure == l7::RedisFailure::local  ? "local limits"
                         : cfg->redis->on_failure == l7::RedisFailure::open ? "admit"
                                                                            : "refuse");
        }
        l7::Server server(io, limiter, escalator, threads, redis.get());
        server.start();
        if (!user.empty() && ::geteuid() == 0)
            become(user);
        spdlog::info("rlgate-l7 {} listening on {}:{} ({} mode{}), {} threads", RLGATE_VERSION,
                     server.local_endpoint().address().to_string(), server.local_endpoint().port(),
                     cfg->mode == l7::Mode::proxy ? "proxy" : "forward-auth",
                     cfg->mode == l7::Mode::proxy ? ", upstream " + cfg->upstream.host + ":" + std::to_string(cfg->upstream.port)
                                                  : ", check " + cfg->check_path,
                     threads);

        asio::signal_set hup(io, SIGHUP);
        asio::steady_timer report_timer(io);
        asio::steady_timer policy_timer(io);
        asio::signal_set stop_signals(io, SIGINT, SIGTERM);
        std::jthread watchdog;
        stop_signals.async_wait([&](boost::system::error_code ec, int sig) {
            if (ec)
                return;
            spdlog::info("signal {}: stopping", sig);
            // Let the work run out, so nothing is left for destructors;
            // requests still in progress after 5 s are cut short.
            hup.cancel();
            report_timer.cancel();
            policy_timer.cancel();
            server.stop();
            if (redis)
                redis->stop();
            watchdog = std::jthread([](std::stop_token st) {
                for (int i = 0; i < 50 && !st.stop_requested(); ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                if (!st.stop_requested()) {
                    spdlog::warn("requests still in progress after 5s: exiting");
                    spdlog::shutdown();
                    std::_Exit(0);
                }
            });
        });
        std::function<void()> wait_hup = [&] {
            hup.async_wait([&](boost::system::error_code ec, int) {
                if (ec)
                    return;
                try {
                    auto next = load(config_path);
                    const auto& cur = *limiter.config();
                    if (next->mode != cur.mode || next->listen_host != cur.listen_host || next->listen_port != cur.listen_port)
                        spdlog::warn("reload: mode and listen take effect at the next restart");
                    if (next->redis.has_value() != cur.redis.has_value() ||
                        (next->redis && (next->redis->host != cur.redis->host || next->redis->port != cur.redis->port)))
                        spdlog::warn("reload: the store (memory or redis, and its address) changes at the next restart");
                    set_level(next->log_level);
                    escalator.set_socket(next->escalation.socket);
                    std::lock_guard lock(follow_mu);
                    file_config = next;
                    apply_factors(next->from_rlgated.limits ? followed_factors : std::map<std::string, double>{});
                    spdlog::info("reload: {} applied", config_path);
                } catch (const std::exception& e) {
                    spdlog::error("reload rejected, the running policy stays: {}", e.what());
                }
                wait_hup();
            });
        };
        wait_hup();

        // Decision counts to rlgated, as deltas.
        std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> reported;
        std::function<void()> schedule_report = [&] {
            report_timer.expires_after(std::chrono::nanoseconds(limiter.config()->escalation.report_interval_ns));
            report_timer.async_wait([&](boost::system::error_code ec) {
                if (ec)
                    return;
                if (limiter.config()->escalation.enabled) {
                    auto decisions = nlohmann::json::array();
                    for (const auto& c : limiter.counts()) {
                        auto& last = reported[{c.tier, c.endpoint, c.verdict}];
                        if (c.count > last)
                            decisions.push_back({{"tier", c.tier.empty() ? "-" : c.tier},
                                                 {"endpoint", c.endpoint.empty() ? "-" : c.endpoint},
                                                 {"verdict", c.verdict},
                                                 {"count", c.count - last}});
                        last = c.count;
                    }
                    // Every interval: decision counts (if any), Redis health and this server's load,
                    // which rlgated's adaptive controller may watch (l7_latency, l7_in_flight).
                    const auto load = server.take_load();
                    escalator.report({{"decisions", decisions},
                                      {"redis", !redis ? "unused" : redis->up() ? "up" : "down"},
                                      {"in_flight", load.in_flight},
                                      {"upstream_latency_ms", load.upstream_latency_ms}});
                }
                schedule_report();
            });
        };
        schedule_report();

        // rlgated's allowlist and tier prefixes, when the config follows them.
        std::uint64_t followed_generation = ~0ULL;
        std::function<void()> follow_policy = [&] {
            std::shared_ptr<const l7::L7Config> c;
            {
                std::lock_guard lock(follow_mu);
                c = file_config;
            }
            if (c->from_rlgated.any())
                escalator.fetch_policy([&](std::optional<nlohmann::json> result) {
                    std::lock_guard lock(follow_mu);
                    if (!result) {
                        // rlgated gone for three refreshes: its factors (an emergency's 0.1?) are not held forever.
                        if (++missed_fetches == 3 && !followed_factors.empty()) {
                            spdlog::warn("rlgated does not answer: back to the configured limits until it does");
                            apply_factors({});
                        }
                        return;
                    }
                    missed_fetches = 0;
                    std::string error;
                    auto p = l7::parse_shared_policy(*result, &error);
                    if (!p) {
                        spdlog::warn("rlgated's policy not understood: {}", error);
                        return;
                    }
                    if (p->generation != followed_generation)
                        spdlog::info("following rlgated's policy generation {}: {} allowed prefixes, {} tier prefixes",
                                     p->generation, p->allow.size(), p->members.size());
                    followed_generation = p->generation;
                    if (file_config->from_rlgated.limits && p->factors != followed_factors) {
                        for (const auto& [tier, f] : p->factors)
                            spdlog::info("following rlgated: tier {} at {:.3g}x its limits", tier, f);
                        if (p->factors.empty())
                            spdlog::info("following rlgated: every tier at its configured limits again");
                        apply_factors(p->factors);
                    }
                    limiter.set_shared_policy(std::make_shared<const l7::SharedPolicy>(std::move(*p)));
                });
            policy_timer.expires_after(std::chrono::nanoseconds(c->from_rlgated.refresh_ns));
            policy_timer.async_wait([&](boost::system::error_code ec) {
                if (!ec)
                    follow_policy();
            });
        };
        follow_policy();

        std::vector<std::jthread> workers;
        for (unsigned i = 1; i < threads; ++i)
            workers.emplace_back([&io] { io.run(); });
        io.run();
        for (auto& w : workers)
            w.join();
        if (watchdog.joinable())
            watchdog.request_stop();
        spdlog::info("stopped");
    } catch (const std::exception& e) {
        spdlog::error("rlgate-l7: {}", e.what());
        return 1;
    }
    return 0;
}
