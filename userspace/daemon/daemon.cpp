// SPDX-License-Identifier: BSD-2-Clause
#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <net/if.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <spdlog/spdlog.h>

#include "daemon/atomic_file.hpp"

namespace rlgate::daemon {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr long kBpfFsMagic = 0xcafe4a11;
constexpr auto kReloadDebounce = std::chrono::milliseconds(300);

// `ip netns exec` gives the process a fresh /sys without bpffs: mount one so
// the daemon works there too, but warn: pins in that mount vanish with it.
void ensure_bpffs(const std::string& pin_dir) {
    const std::string root = "/sys/fs/bpf";
    if (!pin_dir.starts_with(root))
        return;
    struct statfs st {};
    if (statfs(root.c_str(), &st) == 0 && st.f_type == kBpfFsMagic)
        return;
    if (::mount("bpf", root.c_str(), "bpf", 0, "mode=0700") != 0)
        throw StartupError("cannot mount bpffs on " + root + ": " + std::strerror(errno));
    spdlog::warn("mounted bpffs on {} (was it hidden by `ip netns exec`?): pins made here only live as long "
                 "as this mount namespace; use `nsenter --net=...` to keep enforcement across restarts",
                 root);
}

UniqueFd lock_instance(const std::string& socket_path) {
    // A directory we create is root's alone; an existing one (say /run) keeps its mode.
    const auto dir = fs::path(socket_path).parent_path();
    std::error_code ec;
    if (fs::create_directories(dir, ec))
        ::chmod(dir.c_str(), 0750);
    if (ec)
        throw StartupError("cannot create " + dir.string() + ": " + ec.message());
    const std::string lock_path = socket_path + ".lock";
    UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid())
        throw StartupError("cannot open " + lock_path + ": " + std::strerror(errno));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
        throw StartupError("another rlgated is running (it holds " + lock_path + ")");
    return fd;
}

}  // namespace

AttachMode to_dataplane_mode(config::AttachModeSetting m) {
    switch (m) {
    case config::AttachModeSetting::native: return AttachMode::native;
    case config::AttachModeSetting::generic: return AttachMode::generic;
    case config::AttachModeSetting::automatic: return AttachMode::automatic;
    }
    return AttachMode::native;
}

Daemon::Daemon(asio::io_context& io, DaemonOptions options, config::Config cfg)
    : io_(io),
      options_(std::move(options)),
      config_(std::move(cfg)),
      started_(std::chrono::steady_clock::now()),
      started_wall_(std::chrono::system_clock::now()),
      signals_(io, SIGHUP, SIGTERM, SIGINT),
      stats_timer_(io),
      reload_debounce_(io),
      ban_timer_(io) {
    lock_fd_ = lock_instance(config_.daemon.socket_path);
    ensure_bpffs(config_.daemon.pin_dir);
    std::error_code ec;
    fs::create_directories(config_.daemon.state_dir, ec);
    if (ec)
        throw StartupError("cannot create state directory " + config_.daemon.state_dir + ": " + ec.message());
    load_overlay();

    DataplaneOptions dopts;
    dopts.bucket_entries = config_.maps.buckets;
    dopts.class_entries = config_.maps.classes;
    dopts.ban_entries = config_.maps.bans;
    dopts.seen_filter = config_.maps.seen_filter;
    dopts.events_per_sec = config_.events.per_sec;
    dopts.events_burst = config_.events.burst;
    dopts.pin_dir = config_.daemon.pin_dir;
    try {
        dataplane_ = std::make_unique<Dataplane>(dopts);
    } catch (const std::exception& e) {
        throw StartupError(e.what());
    }

    base_policy_ = config_.policy;
    policy_source_ = options_.config_path;
    ReloadOutcome first{.ok = true, .trigger = "startup", .at = std::chrono::system_clock::now()};
    try {
        first.generation = apply_effective_policy(first.warnings);
    } catch (const std::exception& e) {
        throw StartupError(std::string("cannot apply the policy: ") + e.what());
    }
    const auto attach_errors = reconcile_interfaces();
    if (!attach_errors.empty()) {
        std::string all;
        for (const auto& e : attach_errors)
            all += (all.empty() ? "" : "; ") + e;
        throw StartupError(all);
    }
    last_reload_ = first;
    start_adaptive();
    start_bans();
    start_fleet();
    control_ = std::make_unique<ControlServer>(
        io_, config_.daemon.socket_path,
        [this](const control::Request& req, ControlServer::Reply reply, std::function<void()> subscribe, const ucred&) {
            handle(req, std::move(reply), std::move(subscribe));
        });
    open_escalation_socket();
    try {
        open_admin();
    } catch (const std::exception& e) {
        throw StartupError(e.what());
    }
    start_alerts();
    spdlog::info("policy generation {} in force ({} maps {})", first.generation, dataplane_->adopted() ? "adopted" : "new",
                 config_.daemon.pin_dir);
}

Daemon::~Daemon() = default;

int Daemon::run() {
    watch_signals();
    watch_config_file();
    watch_events();
    sample_counters();
    notify_systemd("READY=1\nSTATUS=enforcing policy generation " + std::to_string(last_reload_.generation));
    io_.run();
    notify_systemd("STOPPING=1");
    if (bans_dirty_)
        save_ban_state();
    return exit_code_;
}

std::size_t Daemon::cleanup(const config::Config& cfg) {
    return remove_pinned_state(cfg.daemon.pin_dir);
}

void Daemon::notify_systemd(const std::string& state) const { sd_notify(0, state.c_str()); }

std::uint32_t Daemon::apply_effective_policy(std::vector<std::string>& warnings) {
    const auto now = now_ms();
    const auto scaling = current_scaling(&warnings);
    auto eff = policy::scaled(config::effective_policy(base_policy_, overlay_, &warnings), scaling, now);
    auto compiled = policy::compile(eff);
    const auto gen = dataplane_->apply_policy(compiled);
    effective_ = std::move(eff);
    applied_overrides_ = policy::active_overrides(scaling.overrides, now);
    tier_names_ = compiled.tier_names;
    rule_names_ = compiled.rule_names;
    for (const auto& w : warnings)
        spdlog::warn("{}", w);
    return gen;
}

Daemon::ReloadOutcome Daemon::reload_from_file(const std::string& trigger) {
    notify_systemd("RELOADING=1");
    ReloadOutcome out{.ok = false, .trigger = trigger, .at = std::chrono::system_clock::now()};
    try {
        auto next = config::parse_config(read_file(options_.config_path), options_.config_path);
        out = apply_config(std::move(next), trigger, options_.config_path);
    } catch (const config::ConfigError& e) {
        out.error = {{"file", e.file()}, {"field", e.field()}, {"reason", e.reason()}};
        spdlog::error("reload ({}) rejected, policy generation {} stays in force: {}", trigger,
                      dataplane_->policy_generation(), e.what());
    } catch (const std::exception& e) {
        out.error = {{"file", options_.config_path}, {"message", e.what()}};
        spdlog::error("reload ({}) failed, policy generation {} stays in force: {}", trigger,
                      dataplane_->policy_generation(), e.what());
    }
    last_reload_ = out;
    ++(out.ok ? reloads_ok_ : reloads_rejected_);
    notify_systemd("READY=1\nSTATUS=enforcing policy generation " + std::to_string(dataplane_->policy_generation()));
    return out;
}

Daemon::ReloadOutcome Daemon::apply_config(config::Config next, const std::string& trigger,
                                           const std::string& source) {
    ReloadOutcome out{.ok = false, .trigger = trigger, .at = std::chrono::system_clock::now()};
    auto keep = [&](bool changed, const char* what) {
        if (changed)
            out.warnings.push_back(std::string(what) + " changed: takes effect after a restart");
    };
    keep(next.daemon.pin_dir != config_.daemon.pin_dir, "daemon.pin_dir");
    keep(next.daemon.socket_path != config_.daemon.socket_path, "daemon.socket");
    keep(next.daemon.state_dir != config_.daemon.state_dir, "daemon.state_dir");
    keep(next.maps.buckets != config_.maps.buckets || next.maps.classes != config_.maps.classes ||
             next.maps.bans != config_.maps.bans,
         "maps (sizes need `rlgated --cleanup`, which drops buckets and bans, and a restart)");
    keep(next.maps.seen_filter != config_.maps.seen_filter, "maps.seen_filter");
    keep(next.events.per_sec != config_.events.per_sec || next.events.burst != config_.events.burst, "events");
    keep(next.daemon.escalation_socket != config_.daemon.escalation_socket ||
             next.daemon.escalation_group != config_.daemon.escalation_group,
         "daemon.escalation_socket/escalation_group");
    keep(next.bans.violation_log_path != config_.bans.violation_log_path, "bans.violation_log.path");
    keep(next.bans.history_max != config_.bans.history_max, "bans.history");
    keep(!(next.fleet == config_.fleet), "fleet");
    next.fleet = config_.fleet;
    next.bans.history_max = config_.bans.history_max;

    next.daemon.escalation_socket = config_.daemon.escalation_socket;
    next.daemon.escalation_group = config_.daemon.escalation_group;
    next.bans.violation_log_path = config_.bans.violation_log_path;
    next.daemon.pin_dir = config_.daemon.pin_dir;
    next.daemon.socket_path = config_.daemon.socket_path;
    next.daemon.state_dir = config_.daemon.state_dir;
    next.maps = config_.maps;
    next.events = config_.events;

    const auto old_base = base_policy_;
    const auto old_schedule = config_.schedule;
    const auto old_emergency = config_.emergency;
    base_policy_ = next.policy;
    config_.schedule = next.schedule;  // what the new policy is scaled with
    config_.emergency = next.emergency;
    try {
        out.generation = apply_effective_policy(out.warnings);
    } catch (...) {
        base_policy_ = old_base;
        config_.schedule = old_schedule;
        config_.emergency = old_emergency;
        throw;
    }
    keep(next.admin.listen != config_.admin.listen || next.admin.token != config_.admin.token ||
             next.admin.max_connections != config_.admin.max_connections,
         "admin");
    next.admin = config_.admin;
    keep(next.alerts.webhooks != config_.alerts.webhooks || next.alerts.queue != config_.alerts.queue ||
             next.alerts.max_backoff_ns != config_.alerts.max_backoff_ns,
         "alerts.webhooks/queue/max_backoff");
    next.alerts.webhooks = config_.alerts.webhooks;
    next.alerts.queue = config_.alerts.queue;
    next.alerts.max_backoff_ns = config_.alerts.max_backoff_ns;
    // Only an accepted config changes how we log.
    if (!options_.log_level)
        spdlog::set_level(spdlog::level::from_str(next.daemon.log_level));
    if (violation_log_ && next.bans.violation_log_format != config_.bans.violation_log_format)
        violation_log_->set_pattern(next.bans.violation_log_format == "json" ? "%v" : "%Y-%m-%dT%H:%M:%S%z %v");
    // A new controller (its tiers or steps changed) starts from factor 1; new signal levels keep its state.
    const bool controller_changed = next.adaptive.enabled != config_.adaptive.enabled ||
                                    !(next.adaptive.controller == config_.adaptive.controller);
    config_ = std::move(next);
    policy_source_ = source;
    if (controller_changed) {
        start_adaptive();
        try {
            std::vector<std::string> ignored;
            out.generation = apply_effective_policy(ignored);
        } catch (const std::exception& e) {  // the file's policy is in force already, unscaled by the old controller
            out.warnings.push_back(std::string("adaptive: the new controller's policy not applied: ") + e.what());
        }
    }
    l7_budgets_.clear();  // report budgets follow the new bans.l7_* settings
    if (alert_engine_)
        for (const auto& n : alert_engine_->replace_rules(config_.alerts.rules, now_ms()))
            notify(n);  // a firing rule that changed or went away resolves
    for (auto& e : reconcile_interfaces())
        out.warnings.push_back(std::move(e));
    out.ok = true;
    for (const auto& w : out.warnings)
        spdlog::warn("reload ({}): {}", trigger, w);
    spdlog::info("reload ({}): policy generation {} in force", trigger, out.generation);
    return out;
}

std::vector<std::string> Daemon::reconcile_interfaces() {
    std::vector<std::string> errors;
    const auto desired = config::effective_interfaces(config_.interfaces, overlay_);
    drop_dead_links();
    const auto current = dataplane_->attachments();
    for (const auto& [name, mode] : current) {
        const bool wanted = std::any_of(desired.begin(), desired.end(),
                                        [&](const config::InterfaceConfig& d) { return d.name == name; });
        if (!wanted) {
            spdlog::info("{} is no longer in the config: detaching", name);
            dataplane_->detach(name);
        }
    }
    for (const auto& d : desired) {
        auto it = current.find(d.name);
        if (it != current.end()) {
            const bool mismatch = (d.mode == config::AttachModeSetting::native && it->second == AttachMode::generic) ||
                                  (d.mode == config::AttachModeSetting::generic && it->second == AttachMode::native);
            if (!mismatch)
                continue;
            spdlog::warn("{}: re-attaching in {} mode (was {})", d.name, config::to_string(d.mode),
                         to_string(it->second));
            dataplane_->detach(d.name);
        }
        try {
            dataplane_->attach(d.name, to_dataplane_mode(d.mode));
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());
            errors.emplace_back(e.what());
        }
    }
    return errors;
}

// The kernel detaches XDP when its interface is deleted; the link object lives
// on (pinned), defunct. Forget such links so that the interface is attached
// again once it exists: a recreated interface must not stay unprotected.
void Daemon::drop_dead_links() {
    for (const auto& [name, mode] : dataplane_->attachments()) {
        if (dataplane_->link_alive(name))
            continue;
        spdlog::warn("{}: XDP was detached behind our back (interface deleted?); it is attached again as soon as "
                     "{} exists",
                     name, name);
        dataplane_->detach(name);
    }
}

// Once a second: attach what the config wants and is missing (an interface that
// did not exist at start or was deleted and created again).
void Daemon::heal_interfaces() {
    drop_dead_links();
    const auto current = dataplane_->attachments();
    for (const auto& d : config::effective_interfaces(config_.interfaces, overlay_)) {
        if (current.contains(d.name) || if_nametoindex(d.name.c_str()) == 0)
            continue;
        try {
            dataplane_->attach(d.name, to_dataplane_mode(d.mode));
            spdlog::warn("{}: attached again", d.name);
        } catch (const std::exception& e) {
            if (!heal_failures_.contains(d.name))  // once per episode, not once a second
                spdlog::error("{}", e.what());
            heal_failures_.insert(d.name);
            continue;
        }
        heal_failures_.erase(d.name);
    }
}

// Pins are how enforcement outlives the daemon. If they vanish (bpffs unmounted,
// files removed), the program still runs on our fds: pin everything again before
// a crash or restart could lose buckets and links.
void Daemon::heal_pins() {
    if (config_.daemon.pin_dir.empty() || fs::exists(config_.daemon.pin_dir + "/rl_ctl"))
        return;
    try {
        ensure_bpffs(config_.daemon.pin_dir);
        const auto n = dataplane_->repin_missing();
        spdlog::warn("the pins under {} had vanished (bpffs unmounted or files removed): {} pinned again; "
                     "enforcement never stopped",
                     config_.daemon.pin_dir, n);
        pins_lost_logged_ = false;
    } catch (const std::exception& e) {
        if (!pins_lost_logged_)  // once per episode
            spdlog::error("the pins under {} have vanished and cannot be restored: {}; a restart of rlgated "
                          "would start from empty maps (bans come back from the state directory)",
                          config_.daemon.pin_dir, e.what());
        pins_lost_logged_ = true;
    }
}

void Daemon::load_overlay() {
    const std::string path = config_.daemon.state_dir + "/runtime.json";
    std::error_code ec;
    if (!fs::exists(path, ec))
        return;
    try {
        overlay_ = config::overlay_from_json(json::parse(read_file(path)), path);
    } catch (const std::exception& e) {
        const std::string aside = path + ".corrupt-" + std::to_string(::time(nullptr));
        fs::rename(path, aside, ec);
        spdlog::error("runtime changes in {} are unreadable ({}); set aside as {}, starting without them", path,
                      e.what(), aside);
        overlay_ = {};
    }
}

void Daemon::save_overlay() {
    write_file_atomically(config_.daemon.state_dir + "/runtime.json", to_json(overlay_).dump(2) + "\n");
}

void Daemon::change_overlay(const std::function<void(config::RuntimeOverlay&)>& edit) {
    const auto old = overlay_;
    edit(overlay_);
    if (overlay_ == old)
        return;
    std::vector<std::string> warnings;
    try {
        apply_effective_policy(warnings);
        save_overlay();
    } catch (...) {
        overlay_ = old;
        std::vector<std::string> ignored;
        apply_effective_policy(ignored);  // the previous policy again, in a new generation
        throw;
    }
}

void Daemon::watch_signals() {
    signals_.async_wait([this](boost::system::error_code ec, int sig) {
        if (ec)
            return;
        if (sig == SIGHUP) {
            reload_from_file("SIGHUP");
            watch_signals();
            return;
        }
        spdlog::info("{} received: stopping; XDP stays attached through its pinned links (`rlctl detach` or "
                     "`rlgated --cleanup` removes it)",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
        io_.stop();
    });
}

void Daemon::watch_config_file() {
    const fs::path file = fs::absolute(options_.config_path);
    const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        spdlog::warn("inotify unavailable ({}): reload with SIGHUP or `rlctl reload`", std::strerror(errno));
        return;
    }
    // Watch the directory: editors and config managers replace files by rename.
    if (inotify_add_watch(fd, file.parent_path().c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        spdlog::warn("cannot watch {} ({}): reload with SIGHUP or `rlctl reload`", file.parent_path().string(),
                     std::strerror(errno));
        ::close(fd);
        return;
    }
    inotify_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
    auto name = file.filename().string();
    auto read = std::make_shared<std::function<void()>>();
    *read = [this, name, read] {
        inotify_->async_read_some(asio::buffer(inotify_buf_), [this, name, read](boost::system::error_code ec,
                                                                                std::size_t n) {
            if (ec)
                return;
            bool ours = false;
            for (std::size_t off = 0; off + sizeof(inotify_event) <= n;) {
                inotify_event ev{};
                std::memcpy(&ev, inotify_buf_.data() + off, sizeof ev);
                if (ev.len > 0 && name == std::string(inotify_buf_.data() + off + sizeof ev))
                    ours = true;
                off += sizeof ev + ev.len;
            }
            if (ours) {
                reload_debounce_.expires_after(kReloadDebounce);
                reload_debounce_.async_wait([this](boost::system::error_code e) {
                    if (!e)
                        reload_from_file("file change");
                });
            }
            (*read)();
        });
    };
    (*read)();
}

void Daemon::watch_events() {
    if (!events_) {
        const int fd = ::dup(dataplane_->events_fd());  // asio closes its copy
        if (fd < 0) {
            spdlog::warn("cannot watch the event ring buffer: {}", std::strerror(errno));
            return;
        }
        events_ = std::make_unique<asio::posix::stream_descriptor>(io_, fd);
    }
    events_->async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        if (ec)
            return;
        try {
            dataplane_->consume_events([this](const rl_event& ev) {
                auto j = event_json(ev);
                control_->broadcast(j);
            });
            sync_bans(false);  // record and escalate new auto-bans at once
        } catch (const std::exception& e) {
            spdlog::error("reading events: {}", e.what());
        }
        watch_events();
    });
}

void Daemon::sample_counters() {
    try {
        previous_ = std::move(latest_);
        latest_ = CounterSample{std::chrono::steady_clock::now(), dataplane_->read_counters()};
        TotalsSample t{latest_->at, 0, 0};
        for (const auto& [k, v] : latest_->counters.entries)
            (k.verdict == RL_VERDICT_DROP ? t.dropped : t.passed) += v.packets;
        totals_.push_back(t);
        while (totals_.size() > 3700)  // an hour of one-second samples
            totals_.pop_front();
        if (ticks_++ % 10 == 0)
            fill_cache_ = dataplane_->map_fill();
        heal_interfaces();
        heal_pins();
        adapt();
        evaluate_alerts();
    } catch (const std::exception& e) {
        spdlog::error("reading counters: {}", e.what());
    }
    stats_timer_.expires_after(std::chrono::seconds(1));
    stats_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec)
            sample_counters();
    });
}

}  // namespace rlgate::daemon
