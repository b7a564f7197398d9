// SPDX-License-Identifier: BSD-2-Clause
// The control socket's framing and request parsing: a byte stream in any
// split becomes lines, oversized-line reports and requests or ProtocolErrors.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/control/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    rlgate::control::LineSplitter splitter(256);
    // The first byte picks a chunk size, so splits fall anywhere.
    const std::size_t chunk = size ? 1 + data[0] % 64 : 1;
    std::string line;
    for (std::size_t off = 0; off < bytes.size(); off += chunk) {
        splitter.feed(bytes.substr(off, chunk));
        for (;;) {
            const auto st = splitter.next(line);
            if (st == rlgate::control::LineSplitter::Status::need_more)
                break;
            if (st != rlgate::control::LineSplitter::Status::line)
                continue;
            if (line.size() > 256)
                __builtin_trap();  // the splitter promised at most `max` bytes
            try {
                const auto req = rlgate::control::parse_request(line);
                (void)rlgate::control::arg_optional_string(req.args, "cidr");
                (void)rlgate::control::arg_uint(req.args, "ttl_s", 0);
                (void)rlgate::control::arg_bool(req.args, "json", false);
            } catch (const std::exception&) {
            }
        }
    }
    return 0;
}
