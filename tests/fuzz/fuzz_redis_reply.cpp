// SPDX-License-Identifier: BSD-2-Clause
// The decide script's reply as Redis hands it over (a Redis that is not ours,
// a proxy that mangles, a bug): decode_replies() answers a BatchReply or
// nothing, never a decision that points outside its call's limits. The first
// byte picks how many decisions the calls had (1 to 4, of 1 to 3 limits).
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/ratelimit/redis_script.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace rlgate::ratelimit;
    if (size < 1)
        return 0;
    static const std::vector<LimitSpec> one = {{.name = "a", .algorithm = Algorithm::gcra, .limit = 10, .period_ns = 1'000'000'000}};
    static const std::vector<LimitSpec> two = {
        {.name = "a", .algorithm = Algorithm::token_bucket, .limit = 5, .period_ns = 1'000'000'000},
        {.name = "b", .algorithm = Algorithm::sliding_window, .limit = 50, .period_ns = 60'000'000'000}};
    static const std::array<redis::KeyedLimits, 2> keyed = {redis::KeyedLimits{"k", two}, redis::KeyedLimits{"g", one}};
    std::vector<redis::Call> calls;
    const unsigned n = 1 + data[0] % 4;
    for (unsigned i = 0; i < n; ++i)
        calls.push_back(redis::build_call(std::span(keyed.data(), 1 + (data[0] >> 2 >> i) % 2), 1, "f:", 0));
    const std::string_view reply(reinterpret_cast<const char*>(data + 1), size - 1);
    const auto decoded = redis::decode_replies(calls, reply, nullptr);
    if (!decoded)
        return 0;
    if (decoded->decisions.size() != calls.size() || decoded->errors.size() != calls.size() || decoded->server_time_ns < 0)
        __builtin_trap();
    for (std::size_t i = 0; i < calls.size(); ++i) {
        const auto& d = decoded->decisions[i];
        if (d.has_value() == !decoded->errors[i].empty())
            __builtin_trap();  // a decision, or why there is none: exactly one
        if (!d)
            continue;
        const auto& pos = calls[i].positions;
        const bool known = std::any_of(pos.begin(), pos.end(), [&](const auto& p) {
            return p.first == d->tightest_group && p.second == d->tightest_index;
        });
        if (!known || d->tightest.reset_ns < 0 || d->tightest.retry_after_ns < 0 || d->tightest.allowed != d->allowed)
            __builtin_trap();
    }
    return 0;
}
