// SPDX-License-Identifier: BSD-2-Clause
// rlgated: the rlgate daemon. See README.md, docs/config.md and `rlgated --help`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <csignal>
#include <filesystem>
#include <cstdio>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

#include "core/config/config.hpp"
#include "daemon/atomic_file.hpp"
#include "daemon/daemon.hpp"

namespace {

using rlgate::daemon::Daemon;

void use_logger(std::shared_ptr<spdlog::logger> logger, const std::string& level) {
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
}

// Classic daemonisation, with the parent waiting until the child is ready so
// that `rlgated` returns 0 only once enforcement runs (and 1 with the reason
// otherwise). Returns the write end of the readiness pipe in the child.
int daemonize() {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
        std::perror("rlgated: pipe");
        std::exit(1);
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("rlgated: fork");
        std::exit(1);
    }
    if (pid > 0) {
        ::close(pipefd[1]);
        std::string msg;
        char buf[512];
        ssize_t n;
        while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0)
            msg.append(buf, static_cast<std::size_t>(n));
        if (msg == "ok")
            std::exit(0);
        std::fprintf(stderr, "rlgated: %s\n", msg.empty() ? "exited during startup" : msg.c_str());
        std::exit(1);
    }
    ::close(pipefd[0]);
    ::setsid();
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
        if (devnull > 2)
            ::close(devnull);
    }
    return pipefd[1];
}

void report(int fd, const std::string& msg) {
    if (fd < 0)
        return;
    [[maybe_unused]] auto n = ::write(fd, msg.data(), msg.size());
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"rlgated: rate-limits traffic at the XDP hook and serves rlctl"};
    rlgate::daemon::DaemonOptions options;
    bool foreground = false, cleanup = false, check = false;
    std::string log_level;
    app.add_option("-c,--config", options.config_path, "config file (JSON with comments)")->capture_default_str();
    app.add_flag("-f,--foreground", foreground, "stay in the foreground and log to stderr (systemd runs it so)");
    app.add_option("--log-level", log_level, "trace|debug|info|warn|error (overrides the config)")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    app.add_flag("--check", check, "validate the config file and exit");
    app.add_flag("--cleanup", cleanup,
                 "detach every interface and remove the pinned maps and links, then exit (buckets and counters are "
                 "lost; bans come back from state_dir/bans.json at the next start)");
    app.set_version_flag("--version", RLGATE_VERSION);
    CLI11_PARSE(app, argc, argv);
    if (!log_level.empty())
        options.log_level = log_level;
    // The daemon watches and re-reads this path long after its start directory is gone.
    std::error_code path_error;
    if (auto abs = std::filesystem::absolute(options.config_path, path_error); !path_error)
        options.config_path = abs.lexically_normal().string();

    use_logger(spdlog::stderr_logger_mt("rlgated"), log_level.empty() ? "info" : log_level);
    rlgate::config::Config config;
    try {
        config = rlgate::config::parse_config(rlgate::daemon::read_file(options.config_path), options.config_path);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rlgated: %s\n", e.what());
        return 1;
    }
    if (check) {
        std::printf("%s: OK\n", options.config_path.c_str());
        return 0;
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "rlgated: must run as root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN for bpffs)\n");
        return 1;
    }
    const std::string level = options.log_level.value_or(config.daemon.log_level);
    spdlog::set_level(spdlog::level::from_str(level));
    if (cleanup) {
        if (::access(config.daemon.socket_path.c_str(), F_OK) == 0) {
            // A live daemon would keep serving without a dataplane: have it clean up and stop instead.
            boost::asio::io_context io;
            boost::asio::local::stream_protocol::socket s(io);
            boost::system::error_code ec;
            s.connect(boost::asio::local::stream_protocol::endpoint(config.daemon.socket_path), ec);
            if (!ec) {
                std::fprintf(stderr, "rlgated: a daemon is running on %s: use `rlctl detach` to stop it and clean up\n",
                             config.daemon.socket_path.c_str());
                return 1;
            }
        }
        const auto removed = Daemon::cleanup(config);
        std::printf("removed %zu pinned objects under %s\n", removed, config.daemon.pin_dir.c_str());
        return 0;
    }

    int ready_fd = -1;
    if (!foreground) {
        ready_fd = daemonize();
        use_logger(spdlog::syslog_logger_mt("rlgated-syslog", "rlgated", LOG_PID, LOG_DAEMON), level);
    }
    std::signal(SIGPIPE, SIG_IGN);
    try {
        boost::asio::io_context io;
        Daemon daemon(io, options, std::move(config));
        report(ready_fd, "ok");
        return daemon.run();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        report(ready_fd, e.what());
        return 1;
    }
}
