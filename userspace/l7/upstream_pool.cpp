// SPDX-License-Identifier: BSD-2-Clause
#include "l7/upstream_pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace rlgate::l7 {

namespace asio = boost::asio;

asio::awaitable<std::unique_ptr<UpstreamConnection>> UpstreamPool::acquire(const Upstream& upstream,
                                                                              boost::system::error_code& ec) {
    {
        std::lock_guard lock(mu_);
        while (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            // Not to another upstream, and not with bytes nobody asked for
            // (a stray response would answer the next client's request).
            boost::system::error_code aec;
            if (c->stream.socket().is_open() && c->host == upstream.host && c->port == upstream.port &&
                c->stream.socket().available(aec) == 0 && !aec) {
                c->reused = true;
                co_return c;
            }
        }
    }
    auto c = std::make_unique<UpstreamConnection>(io_);
    c->host = upstream.host;
    c->port = upstream.port;
    const asio::ip::tcp::endpoint ep(asio::ip::make_address(upstream.host), upstream.port);
    c->stream.expires_after(std::chrono::nanoseconds(upstream.connect_timeout_ns));
    std::tie(ec) = co_await c->stream.async_connect(ep, asio::as_tuple(asio::use_awaitable));
    if (ec)
        co_return nullptr;
    c->stream.socket().set_option(asio::ip::tcp::no_delay(true), ec);
    ec = {};
    co_return c;
}

void UpstreamPool::release(std::unique_ptr<UpstreamConnection> c, const Upstream& upstream, std::int64_t idle_timeout_ns) {
    const auto now = std::chrono::steady_clock::now();
    c->idle_since = now;
    c->buffer.clear();
    std::lock_guard lock(mu_);
    // Drop connections idle for longer than the upstream is likely to keep them.
    std::erase_if(idle_, [&](const auto& old) { return now - old->idle_since > std::chrono::nanoseconds(idle_timeout_ns); });
    if (idle_.size() < upstream.max_idle)
        idle_.push_back(std::move(c));
}

std::size_t UpstreamPool::idle() const {
    std::lock_guard lock(mu_);
    return idle_.size();
}

}  // namespace rlgate::l7
