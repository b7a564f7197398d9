// SPDX-License-Identifier: BSD-2-Clause
// From a request to what must be decided: who the caller is (bypass, JWT
// subject, trusted user header, API key, or an anonymous client IP), its
// tier, the endpoint class and cost, and the keys whose limits apply (the
// caller's, the caller's per endpoint, the global, the client IP's). A bad
// credential or cost is an error answer, not a crash. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/l7/l7_config.hpp"
#include "core/l7/shared_policy.hpp"
#include "core/ratelimit/memory_store.hpp"

namespace rlgate::l7 {

struct RequestView {
    std::string_view method;
    std::string_view target;  // origin-form "/path?query"
    net::IpAddress peer;      // the TCP peer
    // A request header's value ("" when absent); the first if repeated.
    std::function<std::string_view(std::string_view name)> header;
};

struct Evaluation {
    enum class Kind { limit, bypass, reject };
    Kind kind = Kind::limit;
    unsigned status = 0;          // reject: 400 (bad cost) or 401 (bad credential)
    std::string error, message;   // reject: machine code and a sentence
    const Tier* tier = nullptr;
    std::string caller_kind;      // "api_key", "user", "anonymous", "bypass"
    net::IpAddress client;
    const Endpoint* endpoint = nullptr;
    std::uint64_t cost = 1;
    // Up to kMaxKeys keys with their limits (never an empty list).
    std::array<std::string, ratelimit::MemoryStore::kMaxKeys> keys;
    std::array<std::span<const ratelimit::LimitSpec>, ratelimit::MemoryStore::kMaxKeys> specs{};
    std::size_t key_count = 0;

    // Views for MemoryStore::decide_keys; valid while this object is.
    using Keyed = std::array<ratelimit::MemoryStore::KeyedLimits, ratelimit::MemoryStore::kMaxKeys>;
    [[nodiscard]] Keyed keyed() const {
        Keyed k{};
        for (std::size_t i = 0; i < key_count; ++i)
            k[i] = {keys[i], specs[i]};
        return k;
    }
    // The spec the headers describe, from a decision over keyed().
    [[nodiscard]] const ratelimit::LimitSpec& spec_of(const ratelimit::Decision& d) const {
        return specs[d.tightest_group][d.tightest_index];
    }
};

// The result points into `config` (tiers, endpoints, limits): keep it alive.
// `shared`: rlgated's allowlist and tier prefixes, used as config.from_rlgated says.
Evaluation evaluate(const L7Config& config, const RequestView& request, std::int64_t now_unix_s,
                    const SharedPolicy* shared = nullptr);

// The key of a client address in L7 limits and escalations: IPv4 as is, an
// IPv6 client as its /64 (one host owns at least that much).
std::string client_key(const net::IpAddress& a);

// The query parameter `name` of `target`, percent-decoded; "" when absent.
std::string query_parameter(std::string_view target, std::string_view name);

}  // namespace rlgate::l7
