// SPDX-License-Identifier: BSD-2-Clause
// The response fields of a rate-limit decision: Retry-After, the classic
// X-RateLimit-* trio, the IETF RateLimit-Policy / RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers: structured-field lists,
// `"name";q=quota;w=window` and `"name";r=remaining;t=reset`), and the JSON
// body of a 429. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/ratelimit/decision.hpp"

namespace rlgate::l7 {

enum class HeaderStyle { both, ietf, legacy };

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// `now_unix_s` dates X-RateLimit-Reset (Unix seconds, as most APIs use).
HeaderList rate_limit_headers(const ratelimit::LimitSpec& tightest_spec, const ratelimit::Decision& d,
                              std::int64_t now_unix_s, HeaderStyle style);

// The same fields appended to `out` as "Name: value\r\n" lines: the hot
// path of the forward-auth answer, without a list to build first.
void append_rate_limit_headers(std::string& out, const ratelimit::LimitSpec& tightest_spec, const ratelimit::Decision& d,
                               std::int64_t now_unix_s, HeaderStyle style);

// {"error":"rate_limit_exceeded","message":...,"retry_after":...,"reset_at":...}
// With an `upgrade_url` (the tier's: how to get a higher tier), an "upgrade_url" field too.
std::string too_many_requests_body(const ratelimit::Decision& d, std::int64_t now_unix_s, const std::string& message,
                                   const std::string& upgrade_url = {});

// Seconds for Retry-After: rounded up, at least 1 when refused.
std::int64_t retry_after_seconds(const ratelimit::Decision& d);

}  // namespace rlgate::l7
