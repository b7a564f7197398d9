// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/headers.hpp"

#include <limits>
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

namespace {

// `q` units per `w` seconds must be the limit's sustained rate. A bucket (token
// bucket, GCRA) announces its capacity as q, so w is the time it takes to refill
// it: 10/s with burst 20 is q=20;w=2, not q=20;w=1 (twice the real rate).
std::int64_t policy_window_ns(const ratelimit::LimitSpec& spec, std::uint64_t quota) {
    const bool bucket = spec.algorithm == ratelimit::Algorithm::token_bucket ||
                        spec.algorithm == ratelimit::Algorithm::gcra;
    if (!bucket || spec.limit == 0 || quota == spec.limit)
        return static_cast<std::int64_t>(spec.period_ns);
    const long double ns = static_cast<long double>(spec.period_ns) * static_cast<long double>(quota) /
                           static_cast<long double>(spec.limit);
    return ns >= static_cast<long double>(std::numeric_limits<std::int64_t>::max())
               ? std::numeric_limits<std::int64_t>::max()
               : static_cast<std::int64_t>(ns);
}

// Every field once, in a fixed order, through `emit(name, value)`.
template <class Emit>
void emit_rate_limit_headers(const ratelimit::LimitSpec& spec, const ratelimit::Decision& d, std::int64_t now_unix_s,
                             HeaderStyle style, Emit&& emit) {
    const auto& v = d.tightest;
    const auto reset_s = ceil_seconds(v.reset_ns);
    if (!d.allowed)
        emit("Retry-After", std::to_string(retry_after_seconds(d)));
    if (style != HeaderStyle::ietf) {
        emit("X-RateLimit-Limit", std::to_string(v.limit));
        emit("X-RateLimit-Remaining", std::to_string(v.remaining));
        emit("X-RateLimit-Reset", std::to_string(now_unix_s + reset_s));
    }
    if (style != HeaderStyle::legacy) {
        const auto window_s = std::max<std::int64_t>(1, ceil_seconds(policy_window_ns(spec, v.limit)));
        const auto name = sf_string(spec.name.empty() ? "default" : spec.name);
        emit("RateLimit-Policy", name + ";q=" + std::to_string(v.limit) + ";w=" + std::to_string(window_s));
        emit("RateLimit", name + ";r=" + std::to_string(v.remaining) + ";t=" + std::to_string(reset_s));
    }
}

}  // namespace

HeaderList rate_limit_headers(const ratelimit::LimitSpec& spec, const ratelimit::Decision& d, std::int64_t now_unix_s,
                              HeaderStyle style) {
    HeaderList h;
    emit_rate_limit_headers(spec, d, now_unix_s, style,
                            [&](std::string_view name, std::string value) { h.emplace_back(name, std::move(value)); });
    return h;
}

void append_rate_limit_headers(std::string& out, const ratelimit::LimitSpec& spec, const ratelimit::Decision& d,
                               std::int64_t now_unix_s, HeaderStyle style) {
    emit_rate_limit_headers(spec, d, now_unix_s, style, [&](std::string_view name, const std::string& value) {
        out.append(name).append(": ").append(value).append("\r\n");
    });
}

std::string too_many_requests_body(const ratelimit::Decision& d, std::int64_t now_unix_s, const std::string& message,
                                   const std::string& upgrade_url) {
    // By hand, in nlohmann's key order: this body is written for every refused request.
    std::string out;
    out.reserve(96 + message.size());
    out.append(R"({"error":"rate_limit_exceeded","message":)");
    out.append(nlohmann::json(message).dump());  // escaped as JSON requires
    out.append(R"(,"reset_at":)").append(std::to_string(now_unix_s + ceil_seconds(d.tightest.reset_ns)));
    out.append(R"(,"retry_after":)").append(std::to_string(retry_after_seconds(d)));
    if (!upgrade_url.empty())
        out.append(R"(,"upgrade_url":)").append(nlohmann::json(upgrade_url).dump());
    out.append("}");
    return out;
}

}  // namespace rlgate::l7
