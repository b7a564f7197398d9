// SPDX-License-Identifier: BSD-2-Clause
#include "cli/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rlgate::cli {

using nlohmann::json;

ControlClient::ControlClient(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof addr.sun_path)
        throw CliError("socket path too long: " + socket_path_);
    std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
        throw CliError(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd_);
        fd_ = -1;
        if (err == ENOENT || err == ECONNREFUSED)
            throw CliError("rlgated is not running (nothing listens on " + socket_path_ + ")");
        if (err == EACCES || err == EPERM)
            throw CliError("permission denied on " + socket_path_ + ": rlctl must run as root");
        throw CliError("cannot connect to " + socket_path_ + ": " + std::strerror(err));
    }
}

ControlClient::~ControlClient() {
    if (fd_ >= 0)
        ::close(fd_);
}

std::string ControlClient::read_line(std::chrono::milliseconds timeout) {
    for (;;) {
        if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        pollfd p{fd_, POLLIN, 0};
        const int r = ::poll(&p, 1, timeout.count() > 0 ? static_cast<int>(timeout.count()) : -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            throw TimeoutError("rlgated did not answer within " + std::to_string(timeout.count()) + " ms");
        char buf[65536];
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw CliError("rlgated closed the connection");
        buffer_.append(buf, static_cast<std::size_t>(n));
    }
}

json ControlClient::call(const std::string& command, json args) {
    const std::string line = control::make_request(command, std::move(args), next_id_++).dump() + "\n";
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw CliError(std::string("sending to rlgated: ") + std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    const json reply = json::parse(read_line(timeout_), nullptr, false);
    if (reply.is_discarded() || !reply.is_object())
        throw CliError("rlgated sent a malformed reply");
    if (!reply.value("ok", false)) {
        const auto& err = reply.contains("error") ? reply["error"] : json::object();
        throw CliError(err.value("message", "request failed"), err.value("code", "failed"),
                       err.contains("details") ? err["details"] : json(nullptr));
    }
    return reply.contains("result") ? reply["result"] : json::object();
}

void ControlClient::stream(const std::function<bool(const json&)>& on_event, std::chrono::milliseconds timeout) {
    for (;;) {
        std::string line;
        try {
            line = read_line(timeout);
        } catch (const TimeoutError&) {
            return;  // quiet period over
        }
        const json ev = json::parse(line, nullptr, false);
        if (ev.is_discarded())
            continue;
        if (!on_event(ev))
            return;
    }
}

}  // namespace rlgate::cli
