// SPDX-License-Identifier: BSD-2-Clause
// The admin HTTP listener (/metrics, the JSON API, the dashboard), on the
// daemon's io_context with Boost.Beast. Hardened for an edge host: bounded
// header and body sizes, a deadline for every request, bounded connections
// where a new client evicts the slowest unfinished one (slowloris), a bearer
// token when configured, and Host checks against DNS rebinding on loopback.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace rlgate::daemon {

struct HttpRequest {
    std::string method;  // GET, POST ...
    std::string path;    // without the query
    std::map<std::string, std::string> query;
    std::string body;
};

struct HttpResponse {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

class AdminSession;

class AdminServer {
public:
    using Reply = std::function<void(HttpResponse)>;
    using Handler = std::function<void(const HttpRequest&, Reply)>;

    static constexpr std::size_t kHeaderLimit = 8 * 1024;
    static constexpr std::size_t kBodyLimit = 64 * 1024;
    static constexpr auto kRequestDeadline = std::chrono::seconds(10);

    AdminServer(boost::asio::io_context& io, const config::AdminSettings& settings, Handler handler);
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    [[nodiscard]] std::string endpoint() const;  // the bound address, e.g. 127.0.0.1:9477
    [[nodiscard]] std::size_t connections() const { return sessions_.size(); }
    [[nodiscard]] std::uint64_t evicted() const { return evicted_; }

private:
    friend class AdminSession;
    void accept();
    void forget(AdminSession* s);

    boost::asio::io_context& io_;
    config::AdminSettings settings_;
    bool loopback_ = true;
    Handler handler_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::list<std::shared_ptr<AdminSession>> sessions_;  // oldest first
    std::uint64_t evicted_ = 0;
};

}  // namespace rlgate::daemon
