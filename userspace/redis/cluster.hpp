// SPDX-License-Identifier: BSD-2-Clause
// Redis Cluster on top of RedisClient: the slot map read with CLUSTER SLOTS
// from the seeds (and from any known master later), one RedisClient per
// master, each call sent to the master of its slot. MOVED updates the map
// and retries at the new owner; ASK retries once at the named node with
// ASKING. The map is re-read in the background every few seconds and at
// once after a redirection, so a resharded or failed-over cluster is
// followed without a restart.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "redis/client.hpp"

namespace rlgate::redis {

inline constexpr std::size_t kClusterSlots = 16384;

// The slot of a key: CRC16 (XMODEM) of its first non-empty {hash tag}, or of
// the whole key, modulo 16384 (the Redis Cluster specification).
std::uint16_t key_slot(std::string_view key);

// "MOVED 3999 127.0.0.1:6381" / "ASK ..." -> slot and address; nullopt for other errors.
struct Redirect {
    bool ask = false;
    std::uint16_t slot = 0;
    std::string host;
    std::uint16_t port = 0;
};
std::optional<Redirect> parse_redirect(std::string_view error);

// One slot range of a CLUSTER SLOTS reply and the address of its master.
struct SlotRange {
    std::uint16_t first = 0, last = 0;
    std::string host;
    std::uint16_t port = 0;
};
// Parses a CLUSTER SLOTS reply; nullopt (and *error) when it is not one. An
// empty host (a node that does not know its address) means `asked_host`.
std::optional<std::vector<SlotRange>> parse_cluster_slots(const RedisReply& reply, const std::string& asked_host,
                                                          std::string* error);

// Made by std::make_shared: its background work holds a reference.
class RedisCluster : public std::enable_shared_from_this<RedisCluster> {
public:
    // `node`: what every connection uses (AUTH, TLS, timeouts, connections per
    // master); its host/port is the first seed.
    RedisCluster(boost::asio::io_context& io, RedisOptions node,
                 std::vector<std::pair<std::string, std::uint16_t>> more_seeds);
    ~RedisCluster();
    RedisCluster(const RedisCluster&) = delete;
    RedisCluster& operator=(const RedisCluster&) = delete;

    void start();
    void stop();

    // Runs `args` on the master of `slot`, following at most a few redirections.
    boost::asio::awaitable<RedisResult> call(std::uint16_t slot, std::vector<std::string> args);

    // Runs `args` on every known node (e.g. SCRIPT LOAD: an ASK may send a script to a node that
    // owns none of the slots it was used in); the first failure, else the last reply.
    boost::asio::awaitable<RedisResult> call_every_node(std::vector<std::string> args);

    // The slot map covers every slot and each of their masters is connected.
    [[nodiscard]] bool up() const;
    struct Stats {
        RedisClient::Stats calls;  // summed over the masters
        std::uint64_t moved = 0, ask = 0, map_reads = 0;
        std::size_t masters = 0;
    };
    [[nodiscard]] Stats stats() const;

private:
    std::shared_ptr<RedisClient> node(const std::string& host, std::uint16_t port);
    std::shared_ptr<RedisClient> owner(std::uint16_t slot) const;
    static boost::asio::awaitable<void> keep_map(std::shared_ptr<RedisCluster> self);
    boost::asio::awaitable<bool> read_map();
    void refresh_soon();

    boost::asio::io_context& io_;
    RedisOptions node_options_;
    std::vector<std::pair<std::string, std::uint16_t>> seeds_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<RedisClient>> nodes_;  // "host:port" -> client
    std::array<std::shared_ptr<RedisClient>, kClusterSlots> slots_;
    std::vector<std::shared_ptr<RedisClient>> masters_;  // distinct owners in slots_, when the map was read
    bool complete_ = false;  // every slot has an owner
    boost::asio::strand<boost::asio::io_context::executor_type> strand_;  // the map reader and its timer
    boost::asio::steady_timer refresh_;
    std::atomic<bool> stopped_{false};
    std::atomic<std::uint64_t> moved_{0}, ask_{0}, map_reads_{0};
};

}  // namespace rlgate::redis
