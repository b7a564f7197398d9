// SPDX-License-Identifier: BSD-2-Clause
// rlctl's side of the control socket: one connection, blocking requests.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/control/protocol.hpp"

namespace rlgate::cli {

// An error to show the operator; `daemon_code` is the reply's error code
// when the daemon answered, empty for connection problems.
class CliError : public std::runtime_error {
public:
    CliError(const std::string& message, std::string daemon_code = {}, nlohmann::json details = nullptr)
        : std::runtime_error(message), code_(std::move(daemon_code)), details_(std::move(details)) {}
    [[nodiscard]] const std::string& daemon_code() const { return code_; }
    [[nodiscard]] const nlohmann::json& details() const { return details_; }

private:
    std::string code_;
    nlohmann::json details_;
};

// No line within the timeout.
class TimeoutError : public CliError {
    using CliError::CliError;
};

class ControlClient {
public:
    ControlClient(std::string socket_path, std::chrono::milliseconds timeout);
    ~ControlClient();
    ControlClient(const ControlClient&) = delete;
    ControlClient& operator=(const ControlClient&) = delete;

    // Sends a request and returns its "result"; throws CliError.
    nlohmann::json call(const std::string& command, nlohmann::json args = nlohmann::json::object());

    // After a successful `events.subscribe`: calls `on_event` per line until
    // it returns false, the daemon goes away, or `timeout` passes without a line
    // (zero timeout waits forever).
    void stream(const std::function<bool(const nlohmann::json&)>& on_event, std::chrono::milliseconds timeout);

private:
    std::string read_line(std::chrono::milliseconds timeout);
    int fd_ = -1;
    std::string socket_path_;
    std::chrono::milliseconds timeout_;
    std::string buffer_;
    int next_id_ = 1;
};

}  // namespace rlgate::cli
