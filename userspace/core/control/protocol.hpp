// SPDX-License-Identifier: BSD-2-Clause
// The control-socket protocol between rlgated and its clients: one JSON
// object per line each way, versioned. Pure: framing and envelopes only.
//
//   request:  {"v":1,"id":7,"cmd":"status","args":{}}
//   reply:    {"v":1,"id":7,"ok":true,"result":{...}}
//   error:    {"v":1,"id":7,"ok":false,"error":{"code":"not_found","message":"..."}}
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rlgate::control {

using nlohmann::json;

inline constexpr int kProtocolVersion = 1;
inline constexpr std::size_t kMaxLineBytes = 1U << 20;  // policies with 10k prefixes fit

// Error codes carried in replies (stable, documented in docs/control-protocol.md).
namespace code {
inline constexpr const char* bad_json = "bad_json";
inline constexpr const char* bad_request = "bad_request";
inline constexpr const char* unsupported_version = "unsupported_version";
inline constexpr const char* unknown_command = "unknown_command";
inline constexpr const char* too_large = "too_large";
inline constexpr const char* forbidden = "forbidden";
inline constexpr const char* invalid_argument = "invalid_argument";
inline constexpr const char* invalid_config = "invalid_config";
inline constexpr const char* not_found = "not_found";
inline constexpr const char* failed = "failed";
inline constexpr const char* rate_limited = "rate_limited";  // escalation socket: too many reports
}  // namespace code

// A request that cannot be served; becomes an error reply.
class ProtocolError : public std::runtime_error {
public:
    ProtocolError(std::string code, const std::string& message, json details = nullptr)
        : std::runtime_error(message), code_(std::move(code)), details_(std::move(details)) {}
    [[nodiscard]] const std::string& code() const { return code_; }
    [[nodiscard]] const json& details() const { return details_; }

private:
    std::string code_;
    json details_;
};

struct Request {
    json id;  // echoed back; null when absent
    std::string command;
    json args = json::object();
};

// Parses one line; throws ProtocolError (bad_json, bad_request, unsupported_version).
Request parse_request(std::string_view line);

json make_request(const std::string& command, json args = json::object(), json id = 1);
json make_result(const json& id, json result);
json make_error(const json& id, const std::string& code, const std::string& message, json details = nullptr);

// Argument accessors that throw ProtocolError(invalid_argument) naming the field.
std::string arg_string(const json& args, const char* name);
std::optional<std::string> arg_optional_string(const json& args, const char* name);
std::uint64_t arg_uint(const json& args, const char* name, std::uint64_t fallback);
bool arg_bool(const json& args, const char* name, bool fallback);

// Splits a byte stream into lines of at most `max` bytes. A longer line is
// reported once as oversized and skipped up to its newline.
class LineSplitter {
public:
    explicit LineSplitter(std::size_t max = kMaxLineBytes) : max_(max) {}
    enum class Status { line, oversized, need_more };
    void feed(std::string_view bytes) { pending_.append(bytes); }
    // Next complete line (without '\n') in `out`, or a status.
    Status next(std::string& out);

private:
    std::size_t max_;
    std::string pending_;
    bool discarding_ = false;
};

}  // namespace rlgate::control
