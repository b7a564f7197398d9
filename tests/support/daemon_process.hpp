// SPDX-License-Identifier: BSD-2-Clause
// A real rlgated started by a test inside a namespace of its own, with its
// own pin directory, socket and state: killed and cleaned up when the object
// dies, also when the test fails.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>

#include "cli/client.hpp"
#include "support/netns.hpp"

namespace rlgate::testing {

class DaemonProcess {
public:
    // `netns`: where the daemon runs (entered with nsenter, so bpffs stays the host's).
    DaemonProcess(std::string netns, const std::string& tag) : netns_(std::move(netns)) {
        const auto id = tag + "-" + std::to_string(getpid());
        dir_ = std::filesystem::temp_directory_path() / ("rlgate-" + id);
        std::filesystem::create_directories(dir_);
        pin_dir_ = "/sys/fs/bpf/rlgate-" + id;
        run_dir_ = "/run/rlgate-" + id;
        config_path_ = (dir_ / "rlgate.json").string();
    }
    ~DaemonProcess() {
        kill9();
        // A config of our own: the test's may have been left broken on purpose.
        const auto cleanup = (dir_ / "cleanup.json").string();
        std::ofstream(cleanup) << nlohmann::json{{"tiers", {{"d", {{"pps", 1}, {"burst", 1}}}}},
                                                 {"daemon", {{"pin_dir", pin_dir_}, {"socket", socket()}}}}
                                      .dump();
        shell(std::string(RLGATED_PATH) + " --cleanup --config " + cleanup);
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        std::filesystem::remove_all(run_dir_, ec);
    }
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    // The "daemon" section is filled in; the rest comes from the test.
    void write_config(nlohmann::json config) {
        config["daemon"].update({{"pin_dir", pin_dir_},
                                 {"socket", socket()},
                                 {"escalation_socket", escalation_socket()},
                                 {"state_dir", state_dir()},
                                 {"log_level", "debug"}});
        write_raw_config(config.dump(2));
    }
    // Written next to the file and renamed over it, as config managers do.
    void write_raw_config(const std::string& text) {
        const auto tmp = config_path_ + ".new";
        std::ofstream(tmp) << text;
        std::filesystem::rename(tmp, config_path_);
    }

    void start() {
        const std::string log = (dir_ / "rlgated.log").string();
        pid_ = fork();
        if (pid_ == 0) {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            dup2(fd, 1);
            dup2(fd, 2);
            const std::string net = "--net=/run/netns/" + netns_;
            for (const auto& [k, v] : env_)
                ::setenv(k.c_str(), v.c_str(), 1);
            if (private_bpffs_) {
                // A mount namespace of its own with a bpffs of its own on /sys/fs/bpf,
                // which a test may unmount without touching the host's pins.
                const std::string script = "mount -t bpf bpf /sys/fs/bpf && exec /usr/bin/nsenter " + net + " " +
                                           RLGATED_PATH + " --foreground --config " + config_path_;
                execl("/usr/bin/unshare", "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                      script.c_str(), static_cast<char*>(nullptr));
            } else {
                execl("/usr/bin/nsenter", "nsenter", net.c_str(), RLGATED_PATH, "--foreground", "--config",
                      config_path_.c_str(), static_cast<char*>(nullptr));
            }
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("rlgated exited during startup: " + log_text());
            }
            try {
                cli::ControlClient probe(socket(), std::chrono::seconds(5));
                probe.call("version");
                return;
            } catch (const cli::CliError&) {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
        throw std::runtime_error("rlgated did not open its socket: " + log_text());
    }

    // Environment of the next start() (e.g. LD_PRELOAD of libfaketime).
    void set_env(const std::string& key, const std::string& value) { env_[key] = value; }
    // The next start() runs the daemon in a private mount namespace with its own bpffs.
    void use_private_bpffs() { private_bpffs_ = true; }
    // Runs a shell command in the daemon's mount namespace (its private bpffs).
    std::string in_daemon_mounts(const std::string& cmd, int* status = nullptr) const {
        return shell("nsenter --mount=/proc/" + std::to_string(pid_) + "/ns/mnt sh -c '" + cmd + "'", status);
    }

    void kill9() {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    nlohmann::json call(const std::string& cmd, nlohmann::json args = nlohmann::json::object()) {
        cli::ControlClient c(socket(), std::chrono::seconds(20));
        return c.call(cmd, std::move(args));
    }

    [[nodiscard]] std::string log_text() const {
        std::ifstream in(dir_ / "rlgated.log");
        return {std::istreambuf_iterator<char>(in), {}};
    }
    [[nodiscard]] std::string socket() const { return run_dir_ + "/rlgated.sock"; }
    [[nodiscard]] std::string escalation_socket() const { return run_dir_ + "/escalate.sock"; }
    [[nodiscard]] std::string state_dir() const { return (dir_ / "state").string(); }
    [[nodiscard]] const std::string& pin_dir() const { return pin_dir_; }
    [[nodiscard]] const std::string& config_path() const { return config_path_; }
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
    [[nodiscard]] pid_t pid() const { return pid_; }

private:
    std::string netns_;
    std::filesystem::path dir_;
    std::string pin_dir_, run_dir_, config_path_;
    pid_t pid_ = -1;
    bool private_bpffs_ = false;
    std::map<std::string, std::string> env_;
};

}  // namespace rlgate::testing
