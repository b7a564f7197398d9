// SPDX-License-Identifier: BSD-2-Clause
// The way to rlgated: abuse escalations ("ban this client IP") and periodic
// decision counts, one NDJSON request per connection to the daemon's
// escalation socket. Fire and forget, bounded: without a daemon (or without
// permission) the escalation is only logged, and the request path never waits.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include "core/net/ip_address.hpp"

namespace rlgate::l7 {

class Escalator {
public:
    Escalator(boost::asio::io_context& io, std::string socket_path);

    // `source`: an address, or an IPv6 /64 (the granularity of L7 limits).
    void escalate(const std::string& source, const std::string& reason, std::int64_t ban_s);
    void report(nlohmann::json args);
    // Asks for rlgated's allowlist and tier prefixes; `done` gets the result,
    // or nullopt when the daemon is unreachable or refuses (on the strand).
    void fetch_policy(std::function<void(std::optional<nlohmann::json>)> done);
    void set_socket(std::string path);

    struct Stats {
        std::uint64_t accepted = 0, refused = 0, unreachable = 0, dropped = 0;
    };
    [[nodiscard]] Stats stats() const;

private:
    enum class Kind { escalation, report, query };
    void send(std::string command, nlohmann::json args, Kind kind,
              std::function<void(std::optional<nlohmann::json>)> done = {});

    boost::asio::io_context& io_;
    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    std::string socket_path_;  // touched on strand_ only
    std::atomic<int> in_flight_{0};
    std::atomic<std::uint64_t> accepted_{0}, refused_{0}, unreachable_{0}, dropped_{0};
    std::atomic<std::uint64_t> next_id_{1};
    bool warned_unreachable_ = false;  // strand_ only
};

}  // namespace rlgate::l7
