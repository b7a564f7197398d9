// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7 started by a test on a free loopback port with the test's
// config (as `nobody` when the test runs as root: it refuses root), its log
// kept for failure messages, killed when the test ends however it ends.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"

namespace rlgate::testing {

// A port nobody listens on right now (the kernel's pick for port 0).
inline std::uint16_t free_port() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

class L7Process {
public:
    explicit L7Process(const std::string& tag) {
        dir_ = std::filesystem::temp_directory_path() / ("rlgate-l7-" + tag + "-" + std::to_string(getpid()));
        std::filesystem::create_directories(dir_);
        std::filesystem::permissions(dir_, std::filesystem::perms::all);  // readable by `nobody`
        config_path_ = (dir_ / "l7.json").string();
        port_ = free_port();
    }
    ~L7Process() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    L7Process(const L7Process&) = delete;
    L7Process& operator=(const L7Process&) = delete;

    // "listen" is filled in (unless given); the rest comes from the test.
    void write_config(nlohmann::json config) {
        if (!config.contains("listen"))
            config["listen"] = "127.0.0.1:" + std::to_string(port_);
        write_raw_config(config.dump(2));
    }
    void write_raw_config(const std::string& text) {
        const auto tmp = config_path_ + ".new";
        std::ofstream(tmp) << text;
        std::filesystem::permissions(tmp, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                              std::filesystem::perms::others_read | std::filesystem::perms::group_read);
        std::filesystem::rename(tmp, config_path_);
    }

    void start(bool as_nobody_if_root = true) {
        const std::string log = (dir_ / "l7.log").string();
        const auto log_start = log_text().size();  // a restart appends: look at its own lines only
        pid_ = fork();
        if (pid_ == 0) {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            if (geteuid() == 0 && as_nobody_if_root)
                execl(RLGATE_L7_PATH, "rlgate-l7", "--config", config_path_.c_str(), "--threads", "2", "--user", "nobody",
                      static_cast<char*>(nullptr));
            else
                execl(RLGATE_L7_PATH, "rlgate-l7", "--config", config_path_.c_str(), "--threads", "2",
                      static_cast<char*>(nullptr));
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                throw std::runtime_error("rlgate-l7 exited during startup: " + log_text());
            }
            // Logged once the port is bound and root is dropped, before serving.
            if (log_text().find(" listening on ", log_start) != std::string::npos) {
                tcp_connect("127.0.0.1", port_);
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error("rlgate-l7 did not listen: " + log_text());
    }

    // Runs to completion (for startup refusals); returns the exit status.
    int run_expecting_exit(bool as_nobody_if_root) {
        try {
            start(as_nobody_if_root);
        } catch (const std::runtime_error&) {
            return exit_status_;
        }
        return -1;
    }

    void signal(int sig) const { ::kill(pid_, sig); }
    void stop() {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    HttpResult get(const std::string& path, const std::map<std::string, std::string>& headers = {}) const {
        return http_request(port_, "GET", path, headers);
    }
    // A forward-auth check for `method uri` as a proxy sends it.
    HttpResult check(const std::string& uri, std::map<std::string, std::string> headers = {},
                     const std::string& method = "GET") const {
        headers["X-Forwarded-Uri"] = uri;
        headers["X-Forwarded-Method"] = method;
        return http_request(port_, "GET", "/check", headers);
    }

    [[nodiscard]] std::string log_text() const {
        std::ifstream in(dir_ / "l7.log");
        return {std::istreambuf_iterator<char>(in), {}};
    }
    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

private:
    std::filesystem::path dir_;
    std::string config_path_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
    int exit_status_ = -1;
};

}  // namespace rlgate::testing
