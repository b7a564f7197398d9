// SPDX-License-Identifier: BSD-2-Clause
// rlgated's config parser and validator: any bytes get a Config or a ConfigError.
#include <cstdint>
#include <string_view>

#include "core/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        (void)rlgate::config::parse_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json");
    } catch (const rlgate::config::ConfigError&) {
    }
    return 0;
}
