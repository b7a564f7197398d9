// SPDX-License-Identifier: BSD-2-Clause
// The policy the benchmarks load: 10,000 allow/deny/tier prefixes (v4 and
// v6), a few L4 rules and a global limit, built deterministically.
#pragma once

#include "core/policy/policy.hpp"

namespace rlgate::bench {

// Sources the scenarios use, chosen outside every generated prefix.
inline constexpr const char* kUnderSource = "192.0.2.10";   // tier "internal": 1e9 pps
inline constexpr const char* kOverSource = "192.0.2.200";   // tier "strict": 1 pps, burst 1
inline constexpr const char* kBannedSource = "198.18.7.7";  // inside the banned 198.18.0.0/16
inline constexpr const char* kBannedPrefix = "198.18.0.0/16";
inline constexpr const char* kV6UnderSource = "2001:db8:10::10";  // tier "internal"
inline constexpr std::uint32_t kChurnBase = 0x0b000000;  // 11.0.0.0: default tier

policy::Policy realistic_policy(std::size_t prefixes = 10'000);

}  // namespace rlgate::bench
