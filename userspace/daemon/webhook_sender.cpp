// SPDX-License-Identifier: BSD-2-Clause
#include "daemon/webhook_sender.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace rlgate::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One POST: resolve, connect, write, read the status; all under one deadline.
struct Exchange : std::enable_shared_from_this<Exchange> {
    Exchange(asio::io_context& io, const config::Webhook& h, std::string body, std::function<void(bool, std::string)> on_done)
        : resolver(io), stream(io), hook(h), done(std::move(on_done)) {
        req.method(http::verb::post);
        req.target(hook.path);
        req.version(11);
        req.set(http::field::host, hook.host + ":" + std::to_string(hook.port));
        req.set(http::field::content_type, "application/json");
        req.set(http::field::user_agent, "rlgated");
        req.body() = std::move(body);
        req.prepare_payload();
    }
    void run() {
        auto self = shared_from_this();
        stream.expires_after(std::chrono::nanoseconds(hook.timeout_ns));
        std::string host = hook.host;
        if (host.starts_with('[') && host.ends_with(']'))
            host = host.substr(1, host.size() - 2);
        resolver.async_resolve(host, std::to_string(hook.port), [this, self](beast::error_code ec, tcp::resolver::results_type r) {
            if (ec)
                return finish(false, "resolve: " + ec.message());
            stream.async_connect(r, [this, self](beast::error_code e, const tcp::endpoint&) {
                if (e)
                    return finish(false, "connect: " + e.message());
                http::async_write(stream, req, [this, self](beast::error_code e2, std::size_t) {
                    if (e2)
                        return finish(false, "send: " + e2.message());
                    http::async_read(stream, buffer, res, [this, self](beast::error_code e3, std::size_t) {
                        if (e3)
                            return finish(false, "read: " + e3.message());
                        const auto code = res.result_int();
                        finish(code >= 200 && code < 300, "HTTP " + std::to_string(code));
                    });
                });
            });
        });
    }
    void finish(bool ok, std::string why) {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        if (done)
            std::exchange(done, nullptr)(ok, std::move(why));
    }
    tcp::resolver resolver;
    beast::tcp_stream stream;
    config::Webhook hook;
    http::request<http::string_body> req;
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    std::function<void(bool, std::string)> done;
};

}  // namespace

WebhookSender::WebhookSender(asio::io_context& io, config::Webhook hook, std::size_t queue, std::uint64_t max_backoff_ns)
    : io_(io), hook_(std::move(hook)), queue_(queue, static_cast<std::int64_t>(max_backoff_ns / 1'000'000)), retry_(io) {}

void WebhookSender::push(std::string payload) {
    const auto dropped = queue_.dropped();
    queue_.push(std::move(payload));
    if (queue_.dropped() != dropped)
        spdlog::warn("webhook {}: queue full, the oldest notification was dropped", hook_.url);
    pump();
}

void WebhookSender::stop() {
    stopped_ = true;
    retry_.cancel();
}

void WebhookSender::pump() {
    if (in_flight_ || stopped_ || queue_.empty())
        return;
    const auto now = now_ms();
    if (!queue_.due(now)) {
        retry_.expires_after(std::chrono::milliseconds(queue_.next_try_ms() - now));
        auto self = shared_from_this();
        retry_.async_wait([this, self](boost::system::error_code ec) {
            if (!ec)
                pump();
        });
        return;
    }
    attempt();
}

void WebhookSender::attempt() {
    in_flight_ = true;
    queue_.begin_attempt();
    auto self = shared_from_this();
    std::make_shared<Exchange>(io_, hook_, queue_.front(), [this, self](bool ok, const std::string& why) {
        done(ok, why);
    })->run();
}

void WebhookSender::done(bool ok, const std::string& why) {
    in_flight_ = false;
    if (ok) {
        queue_.delivered();
    } else {
        queue_.failed(now_ms());
        spdlog::warn("webhook {}: delivery failed ({}); {} waiting, next try in {} ms", hook_.url, why, queue_.size(),
                     queue_.next_try_ms() - now_ms());
    }
    pump();
}

}  // namespace rlgate::daemon
