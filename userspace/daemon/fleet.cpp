// SPDX-License-Identifier: BSD-2-Clause
// The daemon's side of fleet mode (FleetSync does the Redis part): which
// bans are shared, and how a peer's ban or unban reaches this host's maps.
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <spdlog/spdlog.h>

#include "daemon/daemon.hpp"

namespace rlgate::daemon {

using nlohmann::json;

namespace {

std::string read_secret(const std::string& path, const char* field) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    if (!in)
        throw StartupError(std::string(field) + ": cannot read " + path);
    return config::password_from_file_text(text.str());
}

std::string machine_host_name() {
    std::array<char, 256> name{};
    if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0')
        return "rlgated-" + std::to_string(getpid());
    std::string s(name.data());
    return s.substr(0, 64);
}

}  // namespace

void Daemon::start_fleet() {
    const auto& f = config_.fleet;
    if (!f.enabled)
        return;
    std::string password = f.redis.password;
    if (!f.redis.password_file.empty())
        password = read_secret(f.redis.password_file, "fleet.redis.password_file");
    std::string key;
    if (!f.key_file.empty()) {
        key = read_secret(f.key_file, "fleet.key_file");
        if (key.size() < 16)
            throw StartupError("fleet.key_file: " + f.key_file + " holds " + std::to_string(key.size()) +
                               " bytes; use at least 16 (e.g. head -c 32 /dev/urandom | base64)");
    } else {
        spdlog::warn("fleet: no fleet.key_file: whoever can publish on the fleet's Redis channel can ban and unban here");
    }
    const std::string host = f.host.empty() ? machine_host_name() : f.host;
    if (!bans::valid_fleet_host(host))
        throw StartupError("fleet: this machine's host name \"" + host + "\" cannot name it in the fleet; set fleet.host");
    fleet_ = std::make_unique<FleetSync>(io_, f, host, std::move(password), std::move(key),
                                         [this](const bans::FleetMessage& m) { apply_fleet_message(m); });
    fleet_->start();
}

void Daemon::share_ban(const net::Cidr& prefix, const std::string& origin, const std::string& reason,
                       std::optional<std::int64_t> expires_ms) {
    if (!fleet_)
        return;
    fleet_->publish({.op = bans::FleetMessage::Op::ban,
                     .prefix = prefix,
                     .host = {},
                     .origin = origin,
                     .reason = reason,
                     .at_ms = 0,
                     .expires_ms = expires_ms.value_or(0)});
}

void Daemon::share_unban(const net::Cidr& prefix) {
    if (!fleet_)
        return;
    fleet_->publish({.op = bans::FleetMessage::Op::unban, .prefix = prefix, .host = {}, .origin = "manual"});
}

void Daemon::apply_fleet_message(const bans::FleetMessage& m) {
    const auto where = m.prefix.to_string();
    // Logged one by one up to 20 per 10 s; a summary says how many went unlogged.
    const auto mono = std::chrono::steady_clock::now();
    if (mono - fleet_log_window_ > std::chrono::seconds(10)) {
        if (fleet_log_suppressed_)
            spdlog::info("fleet: {} more ban changes from peers applied without a log line", fleet_log_suppressed_);
        fleet_log_window_ = mono;
        fleet_log_lines_ = fleet_log_suppressed_ = 0;
    }
    const bool log_it = fleet_log_lines_ < 20;
    if (log_it)
        ++fleet_log_lines_;
    else
        ++fleet_log_suppressed_;
    if (m.op == bans::FleetMessage::Op::unban) {
        bool removed = false;
        try {
            removed = dataplane_->remove_ban(m.prefix);
        } catch (const std::exception& e) {
            spdlog::warn("fleet: unban of {} from {} not applied: {}", where, m.host, e.what());
            return;
        }
        bans_dirty_ |= ban_book_.erase(m.prefix);
        if (removed && log_it)
            spdlog::info("fleet: {} unbanned by host {}", where, m.host);
        return;
    }
    const unsigned min_len = m.prefix.address.v4 ? config_.fleet.min_prefix_v4 : config_.fleet.min_prefix_v6;
    if (m.prefix.prefix < min_len) {
        if (log_it)
            spdlog::warn("fleet: ban of {} from host {} refused: broader than /{} (fleet.min_prefix_v{})", where, m.host,
                         min_len, m.prefix.address.v4 ? 4 : 6);
        return;
    }
    // Neither inside an allowlisted prefix nor covering one.
    for (const auto& a : effective_.allow)
        if (a.contains(m.prefix) || m.prefix.contains(a)) {
            if (log_it)
                spdlog::info("fleet: ban of {} from host {} not applied here: overlaps this host's allowlist ({})", where,
                             m.host, a.to_string());
            return;
        }
    std::uint64_t ttl_ns = 0;
    if (m.expires_ms) {
        const auto left_ms = m.expires_ms - now_ms();
        if (left_ms <= 0)
            return;  // over already (or this host's clock is ahead)
        constexpr std::int64_t kTenYearsMs = 10LL * 365 * 86'400'000;
        ttl_ns = static_cast<std::uint64_t>(std::min(left_ms, kTenYearsMs)) * 1'000'000ULL;
    }
    // Never shortened by a peer: a longer or permanent ban in force here stays.
    if (const auto* known = ban_book_.find(m.prefix)) {
        if (!known->expires_ms)
            return;
        if (m.expires_ms && *known->expires_ms >= m.expires_ms)
            return;
    }
    try {
        ban(m.prefix, ttl_ns, "peer", "from host " + m.host + " (" + m.origin + "): " + m.reason);
        if (log_it)
            spdlog::info("fleet: {} banned by host {} ({}), {}", where, m.host, m.origin,
                     ttl_ns ? std::to_string(ttl_ns / 1'000'000'000ULL) + " s left" : std::string("until removed"));
    } catch (const std::exception& e) {
        spdlog::warn("fleet: ban of {} from host {} not applied: {}", where, m.host, e.what());
    }
}

json Daemon::cmd_fleet_status() const {
    if (!fleet_)
        return {{"enabled", false}};
    return fleet_->status();
}

}  // namespace rlgate::daemon
