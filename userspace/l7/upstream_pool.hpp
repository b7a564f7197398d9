// SPDX-License-Identifier: BSD-2-Clause
// Keep-alive connections to the upstream, reused across client connections
// (at most `max_idle` kept, none older than the idle timeout).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "core/l7/l7_config.hpp"

namespace rlgate::l7 {

struct UpstreamConnection {
    explicit UpstreamConnection(boost::asio::io_context& io) : stream(io) {}
    boost::beast::tcp_stream stream;
    boost::beast::flat_buffer buffer;
    bool reused = false;  // came from the pool: the upstream may have closed it meanwhile
    std::string host;     // where it goes: a reload may change the upstream
    std::uint16_t port = 0;
    std::chrono::steady_clock::time_point idle_since;
};

class UpstreamPool {
public:
    explicit UpstreamPool(boost::asio::io_context& io) : io_(io) {}

    // A pooled connection, or a new one; on failure the error (timeout: boost::beast::error::timeout).
    boost::asio::awaitable<std::unique_ptr<UpstreamConnection>> acquire(const Upstream& upstream,
                                                                          boost::system::error_code& ec);
    void release(std::unique_ptr<UpstreamConnection> c, const Upstream& upstream, std::int64_t idle_timeout_ns);
    [[nodiscard]] std::size_t idle() const;

private:
    boost::asio::io_context& io_;
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<UpstreamConnection>> idle_;
};

}  // namespace rlgate::l7
