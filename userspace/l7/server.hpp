// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's HTTP front end on one listener: forward-auth (answers the
// check subrequests of nginx auth_request, Caddy forward_auth, Traefik
// ForwardAuth) or reverse proxy (forwards allowed requests to the upstream
// over pooled keep-alive connections, bodies streamed both ways). Both
// serve /metrics to loopback peers. Bounded: header bytes and count, body
// bytes, connections, per-request deadlines.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <boost/beast/core/tcp_stream.hpp>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "l7/escalator.hpp"
#include "l7/limiter.hpp"
#include "l7/redis_store.hpp"
#include "l7/throttle.hpp"
#include "l7/upstream_pool.hpp"

namespace rlgate::l7 {

class Server {
public:
    // `threads`: how many threads run `io` (one needs no strands). `redis`:
    // the fleet's shared store, or null for limits in memory.
    Server(boost::asio::io_context& io, Limiter& limiter, Escalator& escalator, unsigned threads,
           RedisStore* redis = nullptr);

    // Binds the listener of the current config (throws on failure) and accepts.
    void start();
    // Stops accepting and closes every client connection, so the io_context
    // runs out of work (requests in progress end with their sockets).
    void stop();
    [[nodiscard]] boost::asio::ip::tcp::endpoint local_endpoint() const { return local_; }
    [[nodiscard]] std::string metrics() const;
    // Load for rlgated's adaptive controller: requests being decided or proxied now, and the
    // slowest upstream response head since the last call (proxy mode; 0 without one).
    struct Load {
        std::uint64_t in_flight = 0;
        std::uint64_t upstream_latency_ms = 0;
    };
    Load take_load();

private:
    struct Connection;
    boost::asio::awaitable<void> accept_loop();
    // `client`: the key counted in per_client_ (empty: not counted).
    boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket, std::string client);
    ThrottleGate& gate(const std::string& endpoint);
    // The limiter's answer, its limits decided in Redis when the store is there.
    boost::asio::awaitable<Answer> decide(const RequestView& view);

    boost::asio::io_context& io_;
    Limiter& limiter_;
    Escalator& escalator_;
    unsigned threads_;
    RedisStore* redis_;
    UpstreamPool pool_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::ip::tcp::endpoint local_;
    std::atomic<bool> stopping_{false};
    std::mutex sessions_mu_;
    std::set<boost::beast::tcp_stream*> sessions_;  // open client connections, for stop()
    std::mutex per_client_mu_;
    std::map<std::string, std::uint32_t> per_client_;  // open connections by client key
    std::mutex gates_mu_;
    std::map<std::string, std::unique_ptr<ThrottleGate>> gates_;

    std::atomic<std::uint64_t> connections_{0}, connections_total_{0}, connections_refused_{0};
    std::atomic<std::uint64_t> connections_refused_per_client_{0};
    std::atomic<std::uint64_t> bad_requests_{0}, upstream_errors_{0}, upstream_timeouts_{0}, throttled_{0};
    std::atomic<std::uint64_t> queued_{0};
    std::atomic<std::uint64_t> in_flight_{0}, upstream_latency_max_ns_{0};
};

}  // namespace rlgate::l7
