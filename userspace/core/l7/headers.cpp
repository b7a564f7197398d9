// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/headers.hpp"

#include <nlohmann/json.hpp>

namespace rlgate::l7 {
namespace {

std::int64_t ceil_seconds(std::int64_t ns) { return ns <= 0 ? 0 : (ns + 999'999'999) / 1'000'000'000; }

// Structured-field string: the policy name, escaped.
std::string sf_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\')
            out += '\\';
        if (c >= 0x20 && c < 0x7f)
            out += c;
    }
    return out + "\"";
}

}  // namespace

std::int64_t retry_after_seconds(const ratelimit::Decision& d) {
    return d.allowed ? 0 : std::max<std::int64_t>(1, ceil_seconds(d.tightest.retry_after_ns));
}

HeaderList rate_limit_headers(const ratelimit::LimitSpec& spec, const ratelimit::Decision& d, std::int64_t now_unix_s,
                              HeaderStyle style) {
    HeaderList h;
    const auto& v = d.tightest;
    const auto reset_s = ceil_seconds(v.reset_ns);
    if (!d.allowed)
        h.emplace_back("Retry-After", std::to_string(retry_after_seconds(d)));
    if (style != HeaderStyle::ietf) {
        h.emplace_back("X-RateLimit-Limit", std::to_string(v.limit));
        h.emplace_back("X-RateLimit-Remaining", std::to_string(v.remaining));
        h.emplace_back("X-RateLimit-Reset", std::to_string(now_unix_s + reset_s));
    }
    if (style != HeaderStyle::legacy) {
        const auto window_s = std::max<std::int64_t>(1, ceil_seconds(static_cast<std::int64_t>(spec.period_ns)));
        const auto name = sf_string(spec.name.empty() ? "default" : spec.name);
        h.emplace_back("RateLimit-Policy", name + ";q=" + std::to_string(v.limit) + ";w=" + std::to_string(window_s));
        h.emplace_back("RateLimit", name + ";r=" + std::to_string(v.remaining) + ";t=" + std::to_string(reset_s));
    }
    return h;
}

std::string too_many_requests_body(const ratelimit::Decision& d, std::int64_t now_unix_s, const std::string& message) {
    const auto retry = retry_after_seconds(d);
    return nlohmann::json{{"error", "rate_limit_exceeded"},
                          {"message", message},
                          {"retry_after", retry},
                          {"reset_at", now_unix_s + ceil_seconds(d.tightest.reset_ns)}}
        .dump();
}

}  // namespace rlgate::l7
