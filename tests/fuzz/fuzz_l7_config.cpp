// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's config parser: any bytes get an L7Config or a ConfigError.
#include <cstdint>
#include <string_view>

#include "core/config/json_reader.hpp"
#include "core/l7/l7_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        (void)rlgate::l7::parse_l7_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json",
                                          [](const std::string&) { return std::optional<std::string>{}; });
    } catch (const rlgate::config::ConfigError&) {
    }
    return 0;
}
