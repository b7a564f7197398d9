// SPDX-License-Identifier: BSD-2-Clause
// A redis-server started by a test on a free loopback port, in a temporary
// directory, without persistence; killed and removed when the object goes,
// however the test ends. kill()/start() restart it on the same port;
// pause()/resume() stop and continue it (SIGSTOP/SIGCONT). Options: more
// redis-server arguments (e.g. --requirepass), the password redis-cli uses,
// and TLS only (a throwaway CA and a certificate for 127.0.0.1 and localhost,
// made with the openssl CLI in that directory; the port is then --tls-port).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/bpf_env.hpp"
#include "support/l7_process.hpp"  // free_port(), tcp_connect()
#include "support/netns.hpp"       // shell()

namespace rlgate::testing {

struct RedisServerOptions {
    std::vector<std::string> args;  // appended to redis-server's command line, e.g. {"--requirepass", "pw"}
    std::string cli_password;       // redis-cli authenticates with it (as the default user)
    bool tls = false;               // TLS only: --port 0 --tls-port <port>, server certificate from ca_file()
    std::uint16_t port = 0;         // 0: a free one
    std::string netns;              // run (and reach with redis-cli) inside this network namespace
    std::string bind = "127.0.0.1"; // its addresses, space-separated; redis-cli uses the first
};

// A word for /bin/sh, quoted.
inline std::string sh_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

class RedisServer {
public:
    explicit RedisServer(RedisServerOptions options = {})
        : options_(std::move(options)), port_(options_.port ? options_.port : free_port()) {
        dir_ = std::filesystem::temp_directory_path() / ("rlgate-redis-" + std::to_string(getpid()) + "-" + std::to_string(port_));
        std::filesystem::create_directories(dir_);
        using std::filesystem::perms;
        std::filesystem::permissions(dir_, perms::owner_all | perms::group_read | perms::group_exec | perms::others_read |
                                               perms::others_exec);  // ca.crt readable by `nobody`
        try {
            if (options_.tls)
                make_certificates();
            start();
        } catch (...) {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
            throw;
        }
    }
    ~RedisServer() {
        kill();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    static bool available() { return shell("command -v redis-server") != "" && shell("command -v redis-cli") != ""; }
    // The openssl CLI, to make the certificates of a TLS server.
    static bool openssl_available() { return shell("command -v openssl") != ""; }

    void start() {
        std::vector<std::string> argv = {"redis-server", "--bind"};
        for (std::size_t at = 0; at < options_.bind.size();) {  // each address its own word
            const auto end = std::min(options_.bind.find(' ', at), options_.bind.size());
            argv.push_back(options_.bind.substr(at, end - at));
            at = end + 1;
        }
        argv.insert(argv.end(), {"--save", "", "--appendonly", "no",
                                         "--dir", dir_.string(), "--logfile", (dir_ / "redis.log").string(),
                                         "--daemonize", "no"});
        if (options_.tls)
            argv.insert(argv.end(), {"--port", "0", "--tls-port", std::to_string(port_), "--tls-cert-file",
                                     (dir_ / "server.crt").string(), "--tls-key-file", (dir_ / "server.key").string(),
                                     "--tls-ca-cert-file", ca_file(), "--tls-auth-clients", "no"});
        else
            argv.insert(argv.end(), {"--port", std::to_string(port_)});
        argv.insert(argv.end(), options_.args.begin(), options_.args.end());
        if (!options_.netns.empty())
            argv.insert(argv.begin(), {"ip", "netns", "exec", options_.netns});  // which execs redis-server: same pid
        std::vector<char*> cargv;
        for (auto& a : argv)
            cargv.push_back(a.data());
        cargv.push_back(nullptr);
        const std::string out = (dir_ / "redis.out").string();  // what it says before its log opens
        pid_ = fork();
        if (pid_ == 0) {
            const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            execvp(cargv[0], cargv.data());
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            if (cli("PING") == "PONG\n")
                return;
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("redis-server exited: " + log_text());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        kill();
        throw std::runtime_error("redis-server did not answer on port " + std::to_string(port_) + ": " + log_text());
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
    // redis-cli against this server (over TLS, with the password, as configured); its output.
    // `args` go through /bin/sh: quote what it must not interpret (sh_quote).
    [[nodiscard]] std::string cli(const std::string& args) const {
        std::string cmd = (options_.netns.empty() ? std::string() : "ip netns exec " + options_.netns + " ") +
                          "redis-cli -h " + host() + " -p " + std::to_string(port_);
        if (options_.tls)
            cmd += " --tls --cacert " + sh_quote(ca_file());
        if (!options_.cli_password.empty())
            cmd += " --no-auth-warning -a " + sh_quote(options_.cli_password);
        return shell(cmd + " " + args + " 2>&1");
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
    [[nodiscard]] std::string host() const { return options_.bind.substr(0, options_.bind.find(' ')); }
    // The CA that signed the server's certificate (TLS only).
    [[nodiscard]] std::string ca_file() const { return (dir_ / "ca.crt").string(); }
    // Its output (startup errors such as a bad directive), then its log.
    [[nodiscard]] std::string log_text() const {
        std::string text;
        for (const char* name : {"redis.out", "redis.log"}) {
            std::ifstream in(dir_ / name);
            text.append(std::istreambuf_iterator<char>(in), {});
        }
        return text;
    }

private:
    // A CA and, signed by it, a certificate for IP 127.0.0.1 and DNS localhost (P-256: fast to make).
    void make_certificates() {
        const std::string d = sh_quote(dir_.string());
        const std::string script =
            "set -e; cd " + d +
            "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt"
            " -days 2 -subj /CN=rlgate-test-ca"
            "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr"
            " -subj /CN=localhost"
            "; printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext"
            "; openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext"
            " -out server.crt; chmod 644 ca.crt; echo certificates-made";
        const auto out = shell("sh -c " + sh_quote(script));
        if (out.find("certificates-made") == std::string::npos)
            throw std::runtime_error("openssl could not make the test certificates: " + out);
    }

    RedisServerOptions options_;
    std::uint16_t port_;
    std::filesystem::path dir_;
    pid_t pid_ = -1;
    bool paused_ = false;
};

}  // namespace rlgate::testing
