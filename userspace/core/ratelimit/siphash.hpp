// SPDX-License-Identifier: BSD-2-Clause
// SipHash-1-3 with a secret key: the 64-bit identity of a client key in the
// limiter's table. Keyed, so nobody can craft two API keys that share one
// quota (with an unkeyed hash an attacker could drain a victim's quota).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace rlgate::ratelimit {

inline std::uint64_t siphash13(std::string_view data, std::uint64_t k0, std::uint64_t k1) {
    auto rotl = [](std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
    std::uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    std::uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    auto round = [&] {
        v0 += v1;
        v1 = rotl(v1, 13);
        v1 ^= v0;
        v0 = rotl(v0, 32);
        v2 += v3;
        v3 = rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = rotl(v1, 17);
        v1 ^= v2;
        v2 = rotl(v2, 32);
    };
    const std::size_t n = data.size();
    const char* p = data.data();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t m;
        std::memcpy(&m, p + i, 8);  // little-endian hosts
        v3 ^= m;
        round();
        v0 ^= m;
    }
    std::uint64_t last = static_cast<std::uint64_t>(n) << 56;
    for (std::size_t j = 0; i + j < n; ++j)
        last |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i + j])) << (8 * j);
    v3 ^= last;
    round();
    v0 ^= last;
    v2 ^= 0xff;
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace rlgate::ratelimit
