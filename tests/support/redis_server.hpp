// SPDX-License-Identifier: BSD-2-Clause
// A redis-server started by a test on a free loopback port, in a temporary
// directory, without persistence; killed and removed when the object goes,
// however the test ends. kill()/start() restart it on the same port;
// pause()/resume() stop and continue it (SIGSTOP/SIGCONT).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/bpf_env.hpp"
#include "support/l7_process.hpp"  // free_port(), tcp_connect()
#include "support/netns.hpp"       // shell()

namespace rlgate::testing {

class RedisServer {
public:
    RedisServer() : port_(free_port()) {
        dir_ = std::filesystem::temp_directory_path() / ("rlgate-redis-" + std::to_string(getpid()) + "-" + std::to_string(port_));
        std::filesystem::create_directories(dir_);
        start();
    }
    ~RedisServer() {
        kill();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    static bool available() { return shell("command -v redis-server") != "" && shell("command -v redis-cli") != ""; }

    void start() {
        const std::string port = std::to_string(port_), log = (dir_ / "redis.log").string();
        pid_ = fork();
        if (pid_ == 0) {
            execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", dir_.c_str(), "--logfile", log.c_str(), "--daemonize", "no",
                   static_cast<char*>(nullptr));
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            if (cli("PING") == "PONG\n")
                return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error("redis-server did not answer on port " + port);
    }
    void kill() {
        if (pid_ <= 0)
            return;
        if (paused_)
            resume();
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    void pause() {
        ::kill(pid_, SIGSTOP);
        paused_ = true;
    }
    void resume() {
        ::kill(pid_, SIGCONT);
        paused_ = false;
    }
    // redis-cli against this server; its output.
    [[nodiscard]] std::string cli(const std::string& args) const {
        return shell("redis-cli -p " + std::to_string(port_) + " " + args + " 2>&1");
    }
    // A field of INFO (e.g. "cmdstat_evalsha"), "" if absent.
    [[nodiscard]] std::string info_field(const std::string& section, const std::string& field) const {
        const auto text = cli("INFO " + section);
        const auto at = text.find(field + ":");
        if (at == std::string::npos)
            return "";
        const auto end = text.find_first_of("\r\n", at);
        return text.substr(at + field.size() + 1, end - at - field.size() - 1);
    }
    [[nodiscard]] std::uint16_t port() const { return port_; }

private:
    std::uint16_t port_;
    std::filesystem::path dir_;
    pid_t pid_ = -1;
    bool paused_ = false;
};

}  // namespace rlgate::testing
