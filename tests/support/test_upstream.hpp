// SPDX-License-Identifier: BSD-2-Clause
// A small HTTP/1.1 upstream for proxy tests, on a free loopback port, with
// keep-alive: /echo answers what it received (method, path, body length,
// X-Forwarded-For), /slow waits 2 s first, /chunked answers in three chunks,
// /sleep300 waits 300 ms (throttle tests), /early sends a 103 before its
// answer, /eof ends its body by closing. Counts connections and requests.
#pragma once

#include <poll.h>

#include <atomic>
#include <list>
#include <mutex>
#include <thread>

#include "support/l7_process.hpp"

namespace rlgate::testing {

class TestUpstream {
public:
    TestUpstream() : port_(free_port()) {
        listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int one = 1;
        ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port_);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_.get(), 64) != 0)
            throw std::runtime_error("test upstream: cannot listen");
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~TestUpstream() {
        stop_ = true;
        acceptor_.join();
        for (auto& t : workers_)
            t.join();
    }
    TestUpstream(const TestUpstream&) = delete;
    TestUpstream& operator=(const TestUpstream&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] int connections() const { return connections_.load(); }
    [[nodiscard]] int requests() const { return requests_.load(); }

private:
    void accept_loop() {
        while (!stop_) {
            pollfd p{listener_.get(), POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0)
                continue;
            const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            ++connections_;
            std::lock_guard lock(mu_);
            workers_.emplace_back([this, fd] { serve(UniqueFd(fd)); });
        }
    }

    // Reads until `n` bytes are buffered; false on close, error or stop.
    bool fill(int fd, std::string& buf, std::size_t n) {
        char chunk[65536];
        while (buf.size() < n) {
            pollfd p{fd, POLLIN, 0};
            if (stop_)
                return false;
            if (::poll(&p, 1, 50) <= 0)
                continue;
            const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
            if (got <= 0)
                return false;
            buf.append(chunk, static_cast<std::size_t>(got));
        }
        return true;
    }

    void serve(UniqueFd fd) {
        std::string buf;
        while (!stop_) {
            std::size_t end;
            while ((end = buf.find("\r\n\r\n")) == std::string::npos)
                if (!fill(fd.get(), buf, buf.size() + 1))
                    return;
            const std::string head = buf.substr(0, end + 4);
            buf.erase(0, end + 4);
            auto header = [&](std::string name) -> std::string {
                std::string lower = head;
                for (auto& c : lower)
                    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                for (auto& c : name)
                    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                const auto at = lower.find("\r\n" + name + ":");
                if (at == std::string::npos)
                    return {};
                auto v = head.substr(at + name.size() + 3);
                v = v.substr(0, v.find("\r\n"));
                while (!v.empty() && v.front() == ' ')
                    v.erase(0, 1);
                return v;
            };
            std::size_t body = 0;
            if (const auto cl = header("Content-Length"); !cl.empty())
                body = std::stoul(cl);
            // Bodies are counted, not kept.
            std::size_t received = 0;
            while (received < body) {
                if (buf.empty() && !fill(fd.get(), buf, 1))
                    return;
                const auto take = std::min(buf.size(), body - received);
                buf.erase(0, take);
                received += take;
            }
            ++requests_;
            const auto sp1 = head.find(' ');
            const auto sp2 = head.find(' ', sp1 + 1);
            const std::string method = head.substr(0, sp1), path = head.substr(sp1 + 1, sp2 - sp1 - 1);
            std::string reply;
            if (path == "/early") {
                reply = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfinal body";
            } else if (path == "/eof") {
                send_all(fd.get(), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close");
                return;  // the close ends the body
            } else if (path == "/chunked") {
                reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Upstream: yes\r\n\r\n"
                        "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
            } else {
                if (path == "/slow")
                    std::this_thread::sleep_for(std::chrono::seconds(2));
                if (path == "/sleep300")
                    std::this_thread::sleep_for(std::chrono::milliseconds(300));
                const std::string text = method + " " + path + " len=" + std::to_string(received) +
                                         " xff=" + header("X-Forwarded-For") + " expect=" + header("Expect");
                reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: yes\r\nContent-Length: " +
                        std::to_string(text.size()) + "\r\n\r\n" + text;
            }
            send_all(fd.get(), reply);
        }
    }

    std::uint16_t port_;
    UniqueFd listener_;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0}, requests_{0};
    std::mutex mu_;
    std::list<std::thread> workers_;
    std::thread acceptor_;
};

}  // namespace rlgate::testing
