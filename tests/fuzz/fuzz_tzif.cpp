// SPDX-License-Identifier: BSD-2-Clause
// TZif bytes (a config names the zone, the file could be anything): a zone or
// std::invalid_argument, and any zone gives sane calendar windows.
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "core/ratelimit/algorithms.hpp"
#include "core/ratelimit/time_zone.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rlgate::ratelimit;
    try {
        const auto z = TimeZone::from_tzif(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
        for (std::int64_t t : {0LL, 1'700'000'000LL, 4'000'000'000LL, -2'000'000'000LL}) {
            const auto off = z.offset_at(t);
            if (off < -25 * 3600 || off > 26 * 3600)
                __builtin_trap();
            const auto w = calendar_window(Calendar::day, t * 1'000'000'000LL, &z);
            if (w.start > t * 1'000'000'000LL || w.end <= t * 1'000'000'000LL - 0 || w.end - w.start > 2 * 86'400'000'000'000LL)
                __builtin_trap();
        }
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
