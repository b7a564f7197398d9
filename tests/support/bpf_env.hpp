// SPDX-License-Identifier: BSD-2-Clause
// Gate for tests that need root and a BPF-capable kernel. Outside CI a missing
// prerequisite skips with the reason; under CI=true it fails.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace rlgate::testing {

inline bool running_in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
}

// Use as: RLGATE_REQUIRE(condition, "reason") inside a test or SetUp().
#define RLGATE_REQUIRE(cond, reason)                                                          \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            if (::rlgate::testing::running_in_ci())                                           \
                GTEST_FAIL() << "prerequisite missing under CI=true: " << (reason);           \
            else                                                                              \
                GTEST_SKIP() << "skipped: " << (reason);                                      \
        }                                                                                     \
    } while (0)

}  // namespace rlgate::testing
