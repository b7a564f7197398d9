// SPDX-License-Identifier: BSD-2-Clause
// A time zone for calendar windows ("10,000 per day" resetting at local
// midnight): UTC offsets over time, read from a TZif file (RFC 8536, the
// files under /usr/share/zoneinfo). Pure: the caller reads the bytes. Beyond
// the file's last transition (Debian ships them up to 2037) the last offset
// holds; the footer's POSIX rule is not evaluated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rlgate::ratelimit {

class TimeZone {
public:
    // Throws std::invalid_argument on a file that is not TZif version 2 or later.
    static TimeZone from_tzif(std::string_view bytes, std::string name);

    // Seconds east of UTC in force at `unix_s`.
    [[nodiscard]] std::int32_t offset_at(std::int64_t unix_s) const;
    [[nodiscard]] const std::string& name() const { return name_; }

private:
    std::string name_;
    std::vector<std::int64_t> transitions_;  // Unix seconds, ascending
    std::vector<std::int32_t> offsets_;      // in force from transitions_[i]
    std::int32_t initial_ = 0;               // before the first transition
};

}  // namespace rlgate::ratelimit
