// SPDX-License-Identifier: BSD-2-Clause
#include "daemon/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <deque>
#include <filesystem>
#include <spdlog/spdlog.h>

namespace rlgate::daemon {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;
using nlohmann::json;

class ControlSession : public std::enable_shared_from_this<ControlSession> {
public:
    ControlSession(ControlServer& server, local::socket socket) : server_(server), socket_(std::move(socket)) {}

    void start(bool admitted, const std::string& refusal, const ucred& peer) {
        peer_ = peer;
        if (!admitted) {
            send(control::make_error(nullptr, control::code::forbidden, refusal));
            closing_ = true;
            return;
        }
        read();
    }

    void send(const json& message) {
        if (queue_.size() >= ControlServer::kMaxQueuedLines) {
            ++dropped_;
            return;
        }
        queue_.push_back(message.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
        if (queue_.size() == 1)
            write();
    }

    [[nodiscard]] bool subscribed() const { return subscribed_; }

private:
    void read() {
        auto self = shared_from_this();
        socket_.async_read_some(asio::buffer(buf_), [this, self](boost::system::error_code ec, std::size_t n) {
            if (ec) {
                finish();
                return;
            }
            lines_.feed(std::string_view(buf_.data(), n));
            process();
        });
    }

    // Serves buffered requests one at a time, in order. Each reply schedules
    // the next request through the event loop, so a client pipelining
    // thousands of requests never deepens the stack.
    void process() {
        while (!busy_ && !closing_ && !subscribed_) {
            std::string line;
            switch (lines_.next(line)) {
            case control::LineSplitter::Status::need_more:
                read();
                return;
            case control::LineSplitter::Status::oversized:
                send(control::make_error(nullptr, control::code::too_large,
                                         "request longer than " + std::to_string(control::kMaxLineBytes) + " bytes"));
                continue;
            case control::LineSplitter::Status::line: break;
            }
            control::Request req;
            try {
                req = control::parse_request(line);
            } catch (const control::ProtocolError& e) {
                send(control::make_error(nullptr, e.code(), e.what()));
                continue;
            }
            dispatch(req);
            return;
        }
    }

    void dispatch(const control::Request& req) {
        busy_ = true;
        auto self = shared_from_this();
        auto replied = std::make_shared<bool>(false);
        ControlServer::Reply reply = [this, self, replied](json message) {
            if (*replied)
                return;
            *replied = true;
            send(message);
            busy_ = false;
            asio::post(server_.io_, [self] { self->process(); });
        };
        auto subscribe = [this, self] {
            if (!subscribed_) {
                subscribed_ = true;
                watch_for_close();
            }
        };
        try {
            server_.handler_(req, reply, subscribe, peer_);
        } catch (const control::ProtocolError& e) {
            reply(control::make_error(req.id, e.code(), e.what(), e.details()));
        } catch (const std::exception& e) {
            reply(control::make_error(req.id, control::code::failed, e.what()));
        }
    }

    // A subscriber sends nothing more; reading only notices when it leaves.
    void watch_for_close() {
        auto self = shared_from_this();
        socket_.async_read_some(asio::buffer(buf_), [this, self](boost::system::error_code ec, std::size_t) {
            if (ec)
                finish();
            else
                watch_for_close();
        });
    }

    void write() {
        auto self = shared_from_this();
        asio::async_write(socket_, asio::buffer(queue_.front()), [this, self](boost::system::error_code ec, std::size_t) {
            if (ec) {
                finish();
                return;
            }
            queue_.pop_front();
            if (!queue_.empty())
                write();
            else if (closing_)
                finish();
        });
    }

    void finish() {
        boost::system::error_code ignored;
        socket_.close(ignored);
        server_.forget(shared_from_this());
    }

    ControlServer& server_;
    local::socket socket_;
    std::array<char, 65536> buf_{};
    control::LineSplitter lines_;
    std::deque<std::string> queue_;
    ucred peer_{};
    bool busy_ = false;
    bool subscribed_ = false;
    bool closing_ = false;
    std::uint64_t dropped_ = 0;
};

namespace {

// Refuses to unlink the socket of a daemon that still answers.
void claim_socket_path(asio::io_context& io, const std::string& path) {
    if (!std::filesystem::exists(path))
        return;
    local::socket probe(io);
    boost::system::error_code ec;
    probe.connect(local::endpoint(path), ec);
    if (!ec)
        throw std::runtime_error("another rlgated is serving " + path);
    std::filesystem::remove(path);
}

}  // namespace

std::string ControlServer::root_only(const ucred& peer) {
    if (peer.uid == 0 || peer.uid == ::geteuid())
        return {};
    return "permission denied: the control socket admits root only (uid " + std::to_string(peer.uid) + ")";
}

ControlServer::ControlServer(asio::io_context& io, std::string path, Handler handler, Admission admit, unsigned mode,
                             int gid)
    : io_(io), path_(std::move(path)), handler_(std::move(handler)), admit_(std::move(admit)), acceptor_(io) {
    // The directory is created by the daemon's instance lock; the socket's own mode guards it.
    claim_socket_path(io_, path_);
    const mode_t old_umask = ::umask(0177);  // the socket is born 0600: no window with wider rights
    boost::system::error_code ec;
    acceptor_.open(local(), ec);
    if (!ec)
        acceptor_.bind(local::endpoint(path_), ec);
    ::umask(old_umask);
    if (ec)
        throw std::system_error(ec, "bind control socket " + path_);
    if (gid >= 0 && ::chown(path_.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0)
        throw std::system_error(errno, std::generic_category(), "chown " + path_);
    if (mode != 0600 && ::chmod(path_.c_str(), mode) != 0)
        throw std::system_error(errno, std::generic_category(), "chmod " + path_);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    spdlog::info("control socket listening on {}", path_);
    accept();
}

ControlServer::~ControlServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    std::filesystem::remove(path_, ec);
}

void ControlServer::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, local::socket socket) {
        if (ec == asio::error::operation_aborted)
            return;
        if (!ec) {
            ucred cred{};
            socklen_t len = sizeof cred;
            bool admitted = false;
            std::string refusal;
            if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
                refusal = "cannot read peer credentials";
            } else if (refusal = admit_(cred); !refusal.empty()) {
                spdlog::warn("{}: refused uid {} pid {}", path_, cred.uid, cred.pid);
            } else if (sessions_.size() >= kMaxSessions) {
                refusal = "too many control connections";
            } else {
                admitted = true;
            }
            auto session = std::make_shared<ControlSession>(*this, std::move(socket));
            sessions_.insert(session);
            session->start(admitted, refusal, cred);
        }
        accept();
    });
}

void ControlServer::broadcast(const json& event) {
    for (const auto& s : sessions_)
        if (s->subscribed())
            s->send(event);
}

}  // namespace rlgate::daemon
