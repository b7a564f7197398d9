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
    if (!f.redis.password_file.empty()) {
        std::ifstream in(f.redis.password_file);
        std::stringstream text;
        text << in.rdbuf();
        if (!in)
            throw StartupError("fleet.redis.password_file: cannot read " + f.redis.password_file);
        password = config::password_from_file_text(text.str());
    }
    const std::string host = f.host.empty() ? machine_host_name() : f.host;
    if (!bans::valid_fleet_host(host))
        throw StartupError("fleet: this machine's host name \"" + host + "\" cannot name it in the fleet; set fleet.host");
    fleet_ = std::make_unique<FleetSync>(io_, f, host, std::move(password),
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
    if (m.op == bans::FleetMessage::Op::unban) {
        bool removed = false;
        try {
            removed = dataplane_->remove_ban(m.prefix);
        } catch (const std::exception& e) {
            spdlog::warn("fleet: unban of {} from {} not applied: {}", where, m.host, e.what());
            return;
        }
        bans_dirty_ |= ban_book_.erase(m.prefix);
        if (removed)
            spdlog::info("fleet: {} unbanned by host {}", where, m.host);
        return;
    }
    if (const auto* allow = allowlisted(m.prefix)) {
        spdlog::info("fleet: ban of {} from host {} not applied here: on this host's allowlist ({})", where, m.host,
                     allow->to_string());
        return;
    }
    std::uint64_t ttl_ns = 0;
    if (m.expires_ms) {
        const auto left_ms = m.expires_ms - now_ms();
        if (left_ms <= 0)
            return;  // over already (or this host's clock is ahead)
        ttl_ns = static_cast<std::uint64_t>(left_ms) * 1'000'000ULL;
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
