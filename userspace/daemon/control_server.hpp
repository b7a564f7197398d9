// SPDX-License-Identifier: BSD-2-Clause
// The control socket: a Unix stream socket speaking newline-delimited JSON
// (core/control/protocol.hpp). Admits only root peers (SO_PEERCRED), bounds
// line length, connections and per-client output, and never lets a bad
// client take the daemon down.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/socket.h>
#include <string>

#include "core/control/protocol.hpp"

namespace rlgate::daemon {

class ControlSession;

class ControlServer {
public:
    using Reply = std::function<void(nlohmann::json)>;
    // Called for each request; call `reply` exactly once, now or later.
    // `subscribe` turns the connection into an event stream; `peer` is the
    // client's credentials (SO_PEERCRED).
    using Handler =
        std::function<void(const control::Request&, Reply reply, std::function<void()> subscribe, const ucred& peer)>;

    static constexpr std::size_t kMaxSessions = 64;
    static constexpr std::size_t kMaxQueuedLines = 4096;  // per client; a slow reader loses events, not memory

    // Who may connect: returns a refusal message, or empty to admit.
    using Admission = std::function<std::string(const ucred&)>;
    static std::string root_only(const ucred& peer);

    // Binds `path` (mode 0600, or `mode` with group `gid`) after refusing to
    // steal it from a live daemon.
    ControlServer(boost::asio::io_context& io, std::string path, Handler handler, Admission admit = root_only,
                  unsigned mode = 0600, int gid = -1);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Sends one line to every subscribed client.
    void broadcast(const nlohmann::json& event);
    [[nodiscard]] std::size_t sessions() const { return sessions_.size(); }

private:
    friend class ControlSession;
    void accept();
    void forget(const std::shared_ptr<ControlSession>& s) { sessions_.erase(s); }

    boost::asio::io_context& io_;
    std::string path_;
    Handler handler_;
    Admission admit_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    std::set<std::shared_ptr<ControlSession>> sessions_;
};

}  // namespace rlgate::daemon
