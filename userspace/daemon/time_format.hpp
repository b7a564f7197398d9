// SPDX-License-Identifier: BSD-2-Clause
// Times in replies and logs: UTC, ISO 8601, second precision.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace rlgate::daemon {

inline std::string iso8601_ms(std::int64_t unix_ms) {
    const auto secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

inline std::string iso8601(std::chrono::system_clock::time_point t) {
    return iso8601_ms(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

}  // namespace rlgate::daemon
