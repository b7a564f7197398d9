// SPDX-License-Identifier: BSD-2-Clause
// A Redis client for rlgate-l7's request path and rlgated's fleet sync: a
// few connections (TCP or TLS, AUTH with user and password), commands
// pipelined on each, every call
// bounded by a timeout, replies parsed by hiredis's reader. A call that times
// out breaks its connection (later replies could no longer be matched), so a
// slow or paused Redis costs each request at most the timeout, never a pile-up.
// Broken connections are re-made in the background; `up()` says whether the
// last attempt worked, for the caller's fallback and for metrics. A connection
// counts as made once Redis has answered on it: AUTH when there is a
// password, PING otherwise (so a TLS port spoken to in plain TCP, or a Redis
// that wants a password, is not "up").
// A client made for subscribe() is a subscriber instead: one connection that
// (re)subscribes after every (re)connection and hands each message over.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

namespace rlgate::redis {

struct RedisOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string username;  // AUTH username password (ACL); empty: AUTH password alone
    std::string password;  // empty: no AUTH
    bool tls = false;
    std::string tls_ca_file;      // empty: the system's CAs
    std::string tls_server_name;  // SNI and certificate name; empty: host
    std::chrono::milliseconds connect_timeout{200};
    std::chrono::milliseconds timeout{50};  // per call
    unsigned connections = 2;
};

// One RESP reply, as far as rlgate needs it.
struct RedisReply {
    enum class Type { string, status, error, integer, nil, array };
    Type type = Type::nil;
    std::string text;  // string, status, error
    long long integer = 0;
    std::vector<RedisReply> elements;
    [[nodiscard]] bool is_error() const { return type == Type::error; }
};

// The call could not be made or answered: not connected, timed out, connection lost.
struct RedisCallFailed {
    std::string reason;
};

using RedisResult = std::variant<RedisReply, RedisCallFailed>;

class RedisClient {
public:
    RedisClient(boost::asio::io_context& io, RedisOptions options);
    ~RedisClient();
    RedisClient(const RedisClient&) = delete;
    RedisClient& operator=(const RedisClient&) = delete;

    // Runs `args` (e.g. {"EVALSHA", sha, "2", k1, k2, ...}) on one of the
    // connections; completes on the caller's executor within the timeout.
    boost::asio::awaitable<RedisResult> call(std::vector<std::string> args);
    // The same, preceded by ASKING on the same connection (Redis Cluster's ASK redirection).
    boost::asio::awaitable<RedisResult> call_asking(std::vector<std::string> args);

    // Before start(): make this a subscriber to `channels`. `on_subscribed` runs
    // after each (re)subscription (what was published meanwhile is lost: catch
    // up then), `on_message(channel, payload)` for each message. Both run on
    // the client's strand; call() is then refused.
    struct Subscription {
        std::vector<std::string> channels;
        std::function<void()> on_subscribed;
        std::function<void(const std::string& channel, const std::string& payload)> on_message;
    };
    void subscribe(Subscription subscription);

    // Starts the background reconnection; stop() ends it and closes everything.
    void start();
    void stop();

    [[nodiscard]] bool up() const { return up_.load(); }
    struct Stats {
        std::uint64_t calls = 0, failures = 0, timeouts = 0, reconnects = 0;
    };
    [[nodiscard]] Stats stats() const;
    [[nodiscard]] const RedisOptions& options() const { return options_; }

    class Connection;

private:
    friend class Connection;
    void mark(bool up, const std::string& why);
    boost::asio::awaitable<RedisResult> call_encoded(std::string encoded, unsigned skipped_replies);

    boost::asio::io_context& io_;
    RedisOptions options_;
    std::vector<std::shared_ptr<Connection>> pool_;
    std::optional<Subscription> subscription_;
    std::atomic<std::size_t> next_{0};
    std::atomic<bool> up_{false};
    std::atomic<bool> stopped_{false};
    std::atomic<std::uint64_t> calls_{0}, failures_{0}, timeouts_{0}, reconnects_{0};
    // What the log last said (mark()): the first failure is logged too, and a new reason while down.
    std::mutex mark_mu_;
    enum class Logged { nothing, up, down } logged_ = Logged::nothing;
    std::string logged_why_;
};

// RESP encoding of one command (an array of bulk strings).
std::string encode_command(const std::vector<std::string>& args);

}  // namespace rlgate::redis
