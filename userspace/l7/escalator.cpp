// SPDX-License-Identifier: BSD-2-Clause
#include "l7/escalator.hpp"

#include <chrono>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace rlgate::l7 {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {
constexpr int kMaxInFlight = 32;
constexpr auto kTimeout = std::chrono::seconds(2);
}  // namespace

Escalator::Escalator(asio::io_context& io, std::string socket_path)
    : io_(io), strand_(asio::make_strand(io)), socket_path_(std::move(socket_path)) {}

void Escalator::set_socket(std::string path) {
    asio::post(strand_, [this, p = std::move(path)]() mutable { socket_path_ = std::move(p); });
}

Escalator::Stats Escalator::stats() const {
    return {accepted_.load(), refused_.load(), unreachable_.load(), dropped_.load()};
}

void Escalator::escalate(const std::string& source, const std::string& reason, std::int64_t ban_s) {
    spdlog::warn("escalating {} to rlgated: {} (ban {}s)", source, reason, ban_s);
    send("escalate", {{"source", source}, {"reason", reason}, {"ttl_s", ban_s}}, Kind::escalation);
}

void Escalator::report(nlohmann::json args) { send("report", std::move(args), Kind::report); }

void Escalator::fetch_policy(std::function<void(std::optional<nlohmann::json>)> done) {
    send("policy", nlohmann::json::object(), Kind::query, std::move(done));
}

void Escalator::send(std::string command, nlohmann::json args, Kind kind,
                     std::function<void(std::optional<nlohmann::json>)> done) {
    if (in_flight_.fetch_add(1) >= kMaxInFlight) {
        --in_flight_;
        ++dropped_;
        if (done)
            asio::post(strand_, [done] { done(std::nullopt); });
        return;
    }
    const bool is_escalation = kind == Kind::escalation;
    const auto id = next_id_++;
    std::string line = nlohmann::json{{"v", 1}, {"id", id}, {"cmd", command}, {"args", std::move(args)}}.dump() + "\n";
    asio::co_spawn(
        strand_,
        [this, line = std::move(line), is_escalation, kind, done = std::move(done)]() -> asio::awaitable<void> {
            auto socket = std::make_shared<stream_protocol::socket>(strand_);
            asio::steady_timer deadline(strand_, kTimeout);
            deadline.async_wait([socket](boost::system::error_code ec) {
                if (!ec)
                    socket->close();  // a stuck daemon costs us one socket for two seconds
            });
            boost::system::error_code ec;
            try {
                const stream_protocol::endpoint endpoint(socket_path_);  // throws for a path over 107 bytes
                std::tie(ec) = co_await socket->async_connect(endpoint, asio::as_tuple(asio::use_awaitable));
            } catch (const boost::system::system_error& e) {
                ec = e.code();
            }
            std::string reply;
            if (!ec)
                std::tie(ec, std::ignore) = co_await asio::async_write(*socket, asio::buffer(line), asio::as_tuple(asio::use_awaitable));
            if (!ec)
                std::tie(ec, std::ignore) = co_await asio::async_read_until(
                    *socket, asio::dynamic_buffer(reply, 1024 * 1024), '\n', asio::as_tuple(asio::use_awaitable));
            deadline.cancel();
            --in_flight_;
            if (ec) {
                ++unreachable_;
                if (is_escalation || !warned_unreachable_) {
                    const char* consequence = "decision counts not reported";
                    if (is_escalation)
                        consequence = "the escalation is only logged";
                    else if (kind == Kind::query)
                        consequence = "its policy is not followed until it answers";
                    spdlog::warn("rlgated not reachable at {} ({}): {}", socket_path_, ec.message(), consequence);
                }
                warned_unreachable_ = true;
                if (done)
                    done(std::nullopt);
                co_return;
            }
            warned_unreachable_ = false;
            const auto j = nlohmann::json::parse(reply, nullptr, false);
            if (!j.is_object() || !j.value("ok", false)) {
                ++refused_;
                std::string msg = reply;
                if (j.is_object() && j.contains("error"))
                    msg = j["error"].dump();
                const char* what = "report";
                if (is_escalation)
                    what = "escalation";
                else if (kind == Kind::query)
                    what = "policy query";
                spdlog::warn("rlgated refused the {}: {}", what, msg);
                if (done)
                    done(std::nullopt);
                co_return;
            }
            ++accepted_;
            if (done)
                done(j.value("result", nlohmann::json::object()));
            if (is_escalation)
                spdlog::info("rlgated banned: {}", j.value("result", nlohmann::json::object()).dump());
        },
        asio::detached);
}

}  // namespace rlgate::l7
