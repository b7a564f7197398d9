// SPDX-License-Identifier: BSD-2-Clause
#include "daemon/admin_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace rlgate::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string url_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i] == '+' ? ' ' : s[i];
        }
    }
    return out;
}

// Compares in time independent of where the strings differ.
bool same_secret(std::string_view a, std::string_view b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

bool loopback_host(std::string_view host) {
    // Host header: name[:port] or [v6][:port]; only a loopback literal or "localhost".
    std::string_view name = host;
    if (name.starts_with('[')) {
        const auto close = name.find(']');
        if (close == std::string_view::npos)
            return false;
        name = name.substr(1, close - 1);
    } else if (const auto colon = name.find(':'); colon != std::string_view::npos) {
        name = name.substr(0, colon);
    }
    if (name == "localhost")
        return true;
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(std::string(name), ec);
    return !ec && addr.is_loopback();
}

}  // namespace

class AdminSession : public std::enable_shared_from_this<AdminSession> {
public:
    AdminSession(AdminServer& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {}

    void start() { read(); }
    [[nodiscard]] bool reading() const { return reading_; }
    void close() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream_.close();
    }

private:
    void read() {
        reading_ = true;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(AdminServer::kHeaderLimit));
        parser_->body_limit(AdminServer::kBodyLimit);
        stream_.expires_after(AdminServer::kRequestDeadline);
        auto self = shared_from_this();
        http::async_read(stream_, buffer_, *parser_, [this, self](beast::error_code ec, std::size_t) {
            reading_ = false;
            if (ec == http::error::header_limit)
                return fail(431, "request header fields too large");
            if (ec == http::error::body_limit)
                return fail(413, "request body too large");
            if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
                ec == asio::error::connection_reset || ec == asio::error::eof)
                return finish();
            if (ec)
                return fail(400, "malformed request");
            serve(parser_->release());
        });
    }

    void serve(http::request<http::string_body> req) {
        keep_alive_ = req.keep_alive();
        const auto& s = server_.settings_;
        // The dashboard page holds no data and a browser cannot send a bearer token when
        // it loads a page: it is served as is and asks for the token for its API calls.
        const std::string_view target_view(req.target());
        const auto page_path = target_view.substr(0, target_view.find('?'));
        const bool public_page = req.method() == http::verb::get && (page_path == "/" || page_path == "/dashboard");
        if (!s.token.empty() && !public_page) {
            const std::string auth(req[http::field::authorization]);
            if (!auth.starts_with("Bearer ") || !same_secret(auth.substr(7), s.token))
                return respond({401, "application/json", R"({"error":"unauthorized","message":"a bearer token is required"})",
                                {{"WWW-Authenticate", "Bearer realm=\"rlgate\""}}});
        } else if (server_.loopback_ && !loopback_host(std::string_view(req[http::field::host]))) {
            // A page on another site that resolves its name to 127.0.0.1 (DNS rebinding) gets nothing.
            return respond({403, "application/json", R"({"error":"forbidden","message":"Host must be a loopback name"})", {}});
        }
        HttpRequest r;
        r.method = std::string(req.method_string());
        const std::string target(req.target());
        const auto q = target.find('?');
        r.path = target.substr(0, q);
        if (q != std::string::npos) {
            std::string_view rest = std::string_view(target).substr(q + 1);
            while (!rest.empty()) {
                const auto amp = rest.find('&');
                const auto kv = rest.substr(0, amp);
                const auto eq = kv.find('=');
                r.query[url_decode(kv.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(kv.substr(eq + 1));
                rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
            }
        }
        if ((r.method == "POST" || r.method == "DELETE" || r.method == "PUT") && s.token.empty())
            // Any local user reaches a loopback port: without a token the listener only reads.
            return respond({403, "application/json",
                            R"JSON({"error":"forbidden","message":"state-changing calls need admin.token; without one the admin listener is read-only (use rlctl)"})JSON",
                            {}});
        if (r.method == "POST" || r.method == "DELETE" || r.method == "PUT") {
            // Only a JSON body: a cross-site form cannot send one without a CORS preflight we never answer.
            if (!std::string_view(req[http::field::content_type]).starts_with("application/json"))
                return respond({415, "application/json",
                                R"({"error":"unsupported_media_type","message":"state-changing calls take application/json"})", {}});
        }
        r.body = std::move(req.body());
        auto self = shared_from_this();
        auto replied = std::make_shared<bool>(false);
        server_.handler_(r, [this, self, replied](HttpResponse resp) {
            if (*replied)
                return;
            *replied = true;
            respond(std::move(resp));
        });
    }

    void fail(unsigned status, const std::string& message) {
        keep_alive_ = false;
        respond({status, "application/json", R"({"error":"bad_request","message":")" + message + "\"}", {}});
    }

    void respond(HttpResponse r) {
        auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
        res->set(http::field::server, "rlgated");
        res->set(http::field::content_type, r.content_type);
        res->set(http::field::cache_control, "no-store");
        res->set("X-Content-Type-Options", "nosniff");
        res->set("X-Frame-Options", "DENY");
        res->set("Content-Security-Policy",
                 "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:");
        for (const auto& [k, v] : r.headers)
            res->set(k, v);
        res->body() = std::move(r.body);
        res->keep_alive(keep_alive_);
        res->prepare_payload();
        stream_.expires_after(AdminServer::kRequestDeadline);
        auto self = shared_from_this();
        http::async_write(stream_, *res, [this, self, res](beast::error_code ec, std::size_t) {
            if (ec || !keep_alive_)
                return finish();
            read();
        });
    }

    void finish() {
        close();
        server_.forget(this);
    }

    AdminServer& server_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    bool reading_ = false;
    bool keep_alive_ = false;
};

AdminServer::AdminServer(asio::io_context& io, const config::AdminSettings& settings, Handler handler)
    : io_(io), settings_(settings), handler_(std::move(handler)), acceptor_(io) {
    const auto colon = settings_.listen.rfind(':');
    std::string host = settings_.listen.substr(0, colon);
    if (host.starts_with('[') && host.ends_with(']'))
        host = host.substr(1, host.size() - 2);
    if (host == "localhost")
        host = "127.0.0.1";
    const auto port = static_cast<unsigned short>(std::stoul(settings_.listen.substr(colon + 1)));
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(host, ec);
    if (ec)
        throw std::runtime_error("admin.listen: " + host + " is not an IP address");
    loopback_ = addr.is_loopback();
    const tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep, ec);
    if (ec)
        throw std::runtime_error("admin listener " + settings_.listen + ": " + ec.message());
    acceptor_.listen(asio::socket_base::max_listen_connections);
    spdlog::info("admin HTTP on http://{}/ ({})", endpoint(), settings_.token.empty() ? "loopback, no token" : "bearer token required");
    accept();
}

AdminServer::~AdminServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& s : sessions_)
        s->close();
}

std::string AdminServer::endpoint() const {
    boost::system::error_code ec;
    const auto ep = acceptor_.local_endpoint(ec);
    if (ec)
        return settings_.listen;
    const auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

void AdminServer::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted)
            return;
        if (!ec) {
            if (sessions_.size() >= settings_.max_connections) {
                // Full: the oldest connection still sending its request makes room (a slowloris
                // client holds many of those; a working client is never one for long).
                auto victim = std::find_if(sessions_.begin(), sessions_.end(), [](const auto& s) { return s->reading(); });
                if (victim != sessions_.end()) {
                    (*victim)->close();
                    sessions_.erase(victim);
                    ++evicted_;
                }
            }
            if (sessions_.size() < settings_.max_connections) {
                auto s = std::make_shared<AdminSession>(*this, std::move(socket));
                sessions_.push_back(s);
                s->start();
            }
        }
        accept();
    });
}

void AdminServer::forget(AdminSession* s) {
    sessions_.remove_if([s](const auto& p) { return p.get() == s; });
}

}  // namespace rlgate::daemon
