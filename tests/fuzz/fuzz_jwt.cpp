// SPDX-License-Identifier: BSD-2-Clause
// JWT verification on hostile tokens: never throws, never accepts an
// unsigned or wrongly signed token (the fuzzer cannot forge HMAC-SHA256).
#include <cstdint>
#include <string_view>

#include "core/l7/jwt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto verifier = [] {
        auto v = rlgate::l7::JwtVerifier::hs256("fuzzing-secret-fuzzing-secret-0123456789");
        v.issuer = "https://issuer.example";
        v.audience = "api";
        return v;
    }();
    const std::string_view token(reinterpret_cast<const char*>(data), size);
    const auto r = rlgate::l7::verify(verifier, token, 1'800'000'000);
    if (r.ok)
        __builtin_trap();  // a forged token was accepted
    return 0;
}
