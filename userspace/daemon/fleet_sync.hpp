// SPDX-License-Identifier: BSD-2-Clause
// Fleet mode: this host's bans go to every other rlgated through Redis, and
// theirs come here. Each ban or unban made here (manual, kernel auto-ban, L7
// escalation) is written to the fleet hash and published on the fleet
// channel in one script; peers apply what they receive to their own maps.
// A host (re)subscribing loads the whole hash first, so one that joins late
// or was cut off catches up. Bans received from peers are never published
// again (no loops), a host ignores its own messages, and this host
// publishes at most `publish_per_sec` (burst `publish_burst`): a spoofed
// flood that makes thousands of auto-bans stays local past that budget.
// Bans made while Redis is away wait in a bounded outbox. Every few seconds
// the host writes a heartbeat to the peers hash and reads the others'.
//
// With fleet.key_file every message is signed and unsigned ones are refused.
// Peers' messages are applied at most apply_per_sec (burst apply_burst).
// The whole hash is loaded again every 5 minutes too, so a message lost on
// the way (a silently dead subscription) is caught up.
//
// Redis layout (prefix from fleet.redis.prefix, "rlgate:" by default):
//   <prefix>fleet:bans   hash   CIDR -> FleetMessage JSON (a ban, or an unban
//                               kept a day so hosts away meanwhile lift it too)
//   <prefix>fleet:peers  hash   host -> {"last_seen_ms","version",...}
//   <prefix>fleet:bans   channel, FleetMessage JSON (ban and unban)
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "core/bans/fleet_message.hpp"
#include "core/config/config.hpp"
#include "core/ratelimit/token_bucket.hpp"
#include "redis/client.hpp"

namespace rlgate::daemon {

class FleetSync {
public:
    // `apply`: a peer's ban or unban, to be put into (taken out of) the maps.
    using Apply = std::function<void(const bans::FleetMessage&)>;

    // `password`: read from fleet.redis.password_file by the caller, or the inline one.
    FleetSync(boost::asio::io_context& io, const config::FleetSettings& settings, std::string host,
              std::string password, std::string key, Apply apply);
    ~FleetSync();
    FleetSync(const FleetSync&) = delete;
    FleetSync& operator=(const FleetSync&) = delete;

    void start();
    void stop();

    // A ban or unban made on this host. Bans past the budget are counted and kept local.
    void publish(bans::FleetMessage m);

    [[nodiscard]] bool up() const { return commands_.up() && subscriber_.up(); }
    [[nodiscard]] const std::string& host() const { return host_; }
    [[nodiscard]] nlohmann::json status() const;  // for `rlctl fleet status`
    struct Counts {
        std::uint64_t published = 0, publish_dropped = 0, publish_failed = 0;
        std::uint64_t received = 0, applied = 0, ignored = 0, invalid = 0, over_budget = 0;
        std::uint64_t resyncs = 0;
    };
    [[nodiscard]] const Counts& counts() const { return counts_; }
    [[nodiscard]] std::size_t peers_seen() const;

private:
    static boost::asio::awaitable<void> flush_loop(FleetSync* self, std::shared_ptr<bool> alive);
    static boost::asio::awaitable<void> heartbeat_loop(FleetSync* self, std::shared_ptr<bool> alive);
    // Loads the hash; retried every second until it works (or a newer resync starts).
    static boost::asio::awaitable<void> resync(FleetSync* self, std::shared_ptr<bool> alive, std::uint64_t round);
    boost::asio::awaitable<bool> load_hash(std::shared_ptr<bool> alive);
    boost::asio::awaitable<void> beat(std::shared_ptr<bool> alive, std::int64_t started_ms);
    void receive(const std::string& payload, bool from_resync);
    [[nodiscard]] std::int64_t now_ms() const;

    boost::asio::io_context& io_;
    config::FleetSettings settings_;
    std::string host_;
    std::string key_;
    Apply apply_;
    std::uint64_t resync_round_ = 0;  // a newer (re)subscription supersedes an older resync
    std::string bans_key_, peers_key_, channel_;
    redis::RedisClient commands_;
    redis::RedisClient subscriber_;
    ratelimit::TokenBucket budget_;
    ratelimit::TokenBucket apply_budget_;
    std::chrono::steady_clock::time_point last_budget_log_{};
    std::deque<bans::FleetMessage> outbox_;  // bounded: kOutboxMax
    boost::asio::steady_timer outbox_wake_;
    boost::asio::steady_timer heartbeat_wake_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // coroutines end when it turns false
    Counts counts_;
    std::optional<std::chrono::system_clock::time_point> last_sync_, last_message_, last_publish_;
    std::chrono::steady_clock::time_point last_drop_log_{};
    nlohmann::json peers_ = nlohmann::json::array();
    std::size_t bans_in_redis_ = 0;
    bool stopped_ = false;
};

}  // namespace rlgate::daemon
