// SPDX-License-Identifier: BSD-2-Clause
// rlgated: owns the dataplane, turns the config file plus the operator's
// runtime changes into policy, reloads it without a restart, and serves the
// control socket. Single-threaded: everything runs on one io_context.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <spdlog/logger.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/bans/ban_book.hpp"
#include "core/config/config.hpp"
#include "core/ratelimit/token_bucket.hpp"
#include "core/config/overlay.hpp"
#include "core/control/protocol.hpp"
#include "core/alerts/alert_engine.hpp"
#include "daemon/admin_server.hpp"
#include "daemon/control_server.hpp"
#include "daemon/fleet_sync.hpp"
#include "daemon/webhook_sender.hpp"
#include "dataplane/dataplane.hpp"

namespace rlgate::daemon {

struct DaemonOptions {
    std::string config_path = "/etc/rlgate/rlgate.json";
    std::optional<std::string> log_level;  // overrides the config's
};

// Thrown when the daemon cannot start; the message is for the operator.
class StartupError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

AttachMode to_dataplane_mode(config::AttachModeSetting m);

class Daemon {
public:
    // Loads the config, loads or adopts the dataplane, applies the policy,
    // attaches interfaces and opens the control socket; throws StartupError.
    Daemon(boost::asio::io_context& io, DaemonOptions options, config::Config config);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Runs until SIGTERM/SIGINT or a full detach; returns the exit code.
    int run();

    // What `rlgated --cleanup` does without a running daemon.
    static std::size_t cleanup(const config::Config& config);

private:
    struct ReloadOutcome {
        bool ok = false;
        std::string trigger;
        std::chrono::system_clock::time_point at;
        std::uint32_t generation = 0;
        nlohmann::json error;  // {file, field, reason} or {message}
        std::vector<std::string> warnings;
    };
    struct CounterSample {
        std::chrono::steady_clock::time_point at;
        Counters counters;
    };

    // Policy and interfaces
    ReloadOutcome reload_from_file(const std::string& trigger);
    ReloadOutcome apply_config(config::Config next, const std::string& trigger, const std::string& source);
    std::uint32_t apply_effective_policy(std::vector<std::string>& warnings);
    std::vector<std::string> reconcile_interfaces();
    void drop_dead_links();
    void heal_interfaces();
    void heal_pins();
    void load_overlay();
    void save_overlay();
    void change_overlay(const std::function<void(config::RuntimeOverlay&)>& edit);

    // Event sources
    void watch_signals();
    void watch_config_file();
    void watch_events();
    void sample_counters();
    void notify_systemd(const std::string& state) const;

    // Control requests (commands.cpp)
    void handle(const control::Request& req, ControlServer::Reply reply, std::function<void()> subscribe);
    nlohmann::json cmd_status() const;
    nlohmann::json cmd_stats() const;
    void cmd_top(const control::Request& req, ControlServer::Reply reply);
    nlohmann::json cmd_policy_show() const;
    nlohmann::json cmd_policy_apply(const nlohmann::json& args);
    nlohmann::json cmd_reload();
    nlohmann::json cmd_list_edit(const std::string& cmd, const nlohmann::json& args);
    nlohmann::json cmd_tier_list() const;
    nlohmann::json cmd_tier_set(const nlohmann::json& args);
    nlohmann::json cmd_attach(const nlohmann::json& args);
    nlohmann::json cmd_detach(const nlohmann::json& args);
    nlohmann::json cmd_ban(const std::string& cmd, const nlohmann::json& args);

    // Bans (bans.cpp)
    void start_bans();
    void load_ban_state();
    void save_ban_state();
    // Reaps expired bans, records and escalates new kernel auto-bans, and
    // forgets records of bans gone from the map. Cheap when nothing changed.
    void sync_bans(bool force);
    void schedule_ban_sync();
    void log_violation(const bans::Violation& v);
    void open_escalation_socket();
    void handle_escalation(const control::Request& req, ControlServer::Reply reply, const std::string& peer);
    [[nodiscard]] const net::Cidr* allowlisted(const net::Cidr& prefix) const;
    [[nodiscard]] const policy::Tier* tier_of(const net::Cidr& prefix) const;
    struct BanResult {
        bool updated = false;
        std::uint64_t ttl_ns = 0;
        std::uint32_t offence = 0;
    };
    BanResult ban(const net::Cidr& prefix, std::uint64_t ttl_ns, const std::string& origin, const std::string& reason);
    [[nodiscard]] std::int64_t now_ms() const;

    // Fleet (fleet.cpp): bans shared with the other hosts through Redis
    void start_fleet();
    void apply_fleet_message(const bans::FleetMessage& m);
    // Tells the fleet about a ban made here (not one received from a peer).
    void share_ban(const net::Cidr& prefix, const std::string& origin, const std::string& reason,
                   std::optional<std::int64_t> expires_ms);
    void share_unban(const net::Cidr& prefix);
    nlohmann::json cmd_fleet_status() const;

    // Adaptive limits, overrides, emergency (adaptive.cpp)
    policy::Scaling current_scaling(std::vector<std::string>* warnings) const;
    void start_adaptive();
    void adapt();
    void reapply_scaling(const std::string& why);
    [[nodiscard]] nlohmann::json scaling_json() const;
    nlohmann::json cmd_override(const std::string& cmd, const nlohmann::json& args);
    nlohmann::json cmd_emergency(const nlohmann::json& args);
    void note_l7_load(const nlohmann::json& args, const std::string& peer);

    // Observability (observability.cpp)
    void open_admin();
    void handle_http(const HttpRequest& req, AdminServer::Reply reply);
    [[nodiscard]] std::string metrics_text() const;
    void start_alerts();
    void evaluate_alerts();
    void notify(const alerts::Notification& n);
    nlohmann::json cmd_alerts() const;
    nlohmann::json cmd_insights() const;
    nlohmann::json cmd_source(const nlohmann::json& args) const;
    void handle_l7_report(const nlohmann::json& args, const std::string& peer);
    nlohmann::json event_json(const rl_event& ev) const;
    nlohmann::json outcome_json(const ReloadOutcome& o) const;

    boost::asio::io_context& io_;
    DaemonOptions options_;
    UniqueFd lock_fd_;  // flock: one daemon per socket, taken before touching any map
    config::Config config_;          // last accepted config file
    policy::Policy base_policy_;     // config_.policy, or what `rlctl policy apply` set
    std::string policy_source_;      // the file the base policy came from
    policy::Policy effective_;       // base + overlay: what the maps hold
    std::vector<std::string> tier_names_, rule_names_;
    std::set<std::string> heal_failures_;  // interfaces whose re-attach failed (logged once)
    bool pins_lost_logged_ = false;
    config::RuntimeOverlay overlay_;
    std::unique_ptr<Dataplane> dataplane_;
    std::unique_ptr<ControlServer> control_;
    ReloadOutcome last_reload_;
    std::optional<CounterSample> previous_, latest_;
    bans::BanBook ban_book_;
    bool bans_dirty_ = false;
    std::chrono::steady_clock::time_point last_ban_save_{};
    std::uint32_t synced_ban_gen_ = 0;
    std::uint64_t next_expiry_rl_ns_ = 0;  // earliest kernel ban expiry, rl time (0: none)
    std::shared_ptr<spdlog::logger> violation_log_;
    std::unique_ptr<ControlServer> escalation_;
    std::map<std::string, ratelimit::TokenBucket> l7_budgets_;  // per reporting peer
    std::map<std::string, ratelimit::TokenBucket> l7_other_budgets_;  // report/policy/version, per peer
    std::unique_ptr<FleetSync> fleet_;
    std::chrono::steady_clock::time_point fleet_log_window_{};
    unsigned fleet_log_lines_ = 0, fleet_log_suppressed_ = 0;
    std::unique_ptr<policy::Controller> controller_;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> cpu_times_;  // softirq, total per CPU (last sample)
    std::map<std::string, double> load_signals_;  // signal -> value / high, last sample
    struct InterfaceSample {
        std::chrono::steady_clock::time_point at;
        std::uint64_t packets = 0;
    };
    std::map<std::string, InterfaceSample> interface_packets_;  // for the pps signal, per interface
    policy::LoadSample last_load_;
    struct AdaptiveChange {
        std::int64_t at_ms = 0;
        int level = 0;
        std::string tier;
        double factor = 1, load = 0;
        std::string cause;
    };
    std::deque<AdaptiveChange> adaptive_changes_;  // newest last, bounded
    std::vector<policy::Override> applied_overrides_;  // in force when the policy was last applied
    struct L7Load {
        std::chrono::steady_clock::time_point at;
        std::uint64_t latency_ms = 0, in_flight = 0;
    };
    std::map<std::string, L7Load> l7_load_;  // by reporting peer (uid), the latest report of each
    std::unique_ptr<AdminServer> admin_;
    std::unique_ptr<alerts::AlertEngine> alert_engine_;
    std::vector<std::shared_ptr<WebhookSender>> webhooks_;
    std::deque<alerts::Notification> recent_alerts_;  // newest last, bounded
    struct TotalsSample {
        std::chrono::steady_clock::time_point at;
        std::uint64_t passed = 0, dropped = 0;
    };
    std::deque<TotalsSample> totals_;  // one per second, for windowed ratios
    std::vector<Dataplane::MapFill> fill_cache_;  // refreshed in the background: scrapes never count 1M entries
    unsigned ticks_ = 0;
    std::uint64_t reloads_ok_ = 0, reloads_rejected_ = 0;
    std::map<std::string, std::uint64_t> violations_total_;  // by origin
    std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> l7_decisions_;  // tier, endpoint, verdict
    std::optional<bool> l7_redis_up_;
    std::chrono::steady_clock::time_point l7_report_at_{};
    std::chrono::steady_clock::time_point started_;
    std::chrono::system_clock::time_point started_wall_;

    boost::asio::signal_set signals_;
    boost::asio::steady_timer stats_timer_;
    boost::asio::steady_timer reload_debounce_;
    boost::asio::steady_timer ban_timer_;
    std::unique_ptr<boost::asio::posix::stream_descriptor> inotify_;
    std::unique_ptr<boost::asio::posix::stream_descriptor> events_;
    std::array<char, 4096> inotify_buf_{};
    int exit_code_ = 0;
};

}  // namespace rlgate::daemon
