// SPDX-License-Identifier: BSD-2-Clause
// A deliberately small blocking HTTP/1.1 client for tests: one request per
// connection, raw bytes in and out, so tests can also send what no real
// client would.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include "dataplane/unique_fd.hpp"

namespace rlgate::testing {

struct HttpResult {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

inline UniqueFd tcp_connect(const std::string& ip, std::uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("connect " + ip + ":" + std::to_string(port) + ": " + std::strerror(errno));
    timeval tv{10, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

inline void send_all(int fd, const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;  // a signal to the test (SIGCHLD of a server it paused), not an answer
        if (n <= 0)
            return;  // the server may close early (e.g. after 431): the reply is what counts
        done += static_cast<std::size_t>(n);
    }
}

inline HttpResult read_response(int fd) {
    std::string raw;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        raw.append(buf, static_cast<std::size_t>(n));
        // Interim responses (100 Continue) precede the real one.
        while (raw.rfind("HTTP/1.1 1", 0) == 0 && raw.find("\r\n\r\n") != std::string::npos)
            raw.erase(0, raw.find("\r\n\r\n") + 4);
        const auto end = raw.find("\r\n\r\n");
        if (end == std::string::npos)
            continue;
        const auto cl = raw.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) {
            const auto len = std::stoul(raw.substr(cl + 16));
            if (raw.size() >= end + 4 + len)
                break;
        }
    }
    HttpResult r;
    const auto end = raw.find("\r\n\r\n");
    if (raw.size() < 12 || end == std::string::npos)
        return r;
    r.status = std::stoi(raw.substr(9, 3));
    std::size_t pos = raw.find("\r\n") + 2;
    while (pos < end) {
        const auto eol = raw.find("\r\n", pos);
        const auto line = raw.substr(pos, eol - pos);
        const auto colon = line.find(':');
        std::string name = line.substr(0, colon);
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = line.substr(colon + 2);
        pos = eol + 2;
    }
    r.body = raw.substr(end + 4);
    return r;
}

inline HttpResult http_request(std::uint16_t port, const std::string& method, const std::string& path,
                               const std::map<std::string, std::string>& headers = {}, const std::string& body = {},
                               const std::string& ip = "127.0.0.1") {
    auto fd = tcp_connect(ip, port);
    std::string req = method + " " + path + " HTTP/1.1\r\nConnection: close\r\n";
    if (!headers.contains("Host"))
        req += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
    for (const auto& [k, v] : headers)
        req += k + ": " + v + "\r\n";
    if (!body.empty() || method == "POST")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    send_all(fd.get(), req);
    return read_response(fd.get());
}

}  // namespace rlgate::testing
