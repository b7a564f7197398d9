// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's request path without sockets: the bytes a client sends are
// parsed as the server parses them (Beast, the same header limits), then
// evaluated and decided against a config with every identity source (API
// key, JWT, trusted user and cost headers, forwarded client IP), endpoints
// and limits, and the answer's headers and body are built.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "core/l7/evaluate.hpp"
#include "core/l7/headers.hpp"
#include "core/l7/l7_config.hpp"
#include "core/ratelimit/memory_store.hpp"

namespace {

using namespace rlgate;
namespace http = boost::beast::http;

const l7::L7Config& fuzz_config() {
    static const auto c = l7::parse_l7_config(R"({
      "trusted_proxies": ["127.0.0.0/8", "::1/128"],
      "identity": {"user_header": "X-User", "cost_header": "X-Cost",
                   "jwt": {"algorithm": "HS256", "secret": "fuzzing-secret-fuzzing-secret-0123456789"}},
      "api_keys": {"k1": "free", "k2": "premium", "ops": "internal"},
      "users": {"alice": "premium"}, "user_tier": "free", "anonymous_tier": "anon",
      "tiers": {
        "anon": {"limits": [{"limit": 5, "per": "1m"}]},
        "free": {"limits": [{"limit": 10, "per": "1m", "algorithm": "token_bucket"},
                            {"limit": 100, "per": "1h", "algorithm": "sliding_log"}],
                 "endpoints": {"upload": [{"limit": 2, "per": "1m", "algorithm": "fixed_window", "name": "u"}]}},
        "premium": {"limits": [{"limit": 1000, "per": "1m", "algorithm": "sliding_window"}]},
        "internal": {"bypass": true}},
      "endpoints": [{"name": "upload", "route": "POST /files/{id}", "cost": 3},
                    {"name": "any", "route": "* /static/*"}],
      "global": [{"limit": 100000, "per": "1s"}],
      "per_ip": [{"limit": 50, "algorithm": "fixed_window", "calendar": "minute"}]
    })", "fuzz.json", [](const std::string&) { return std::optional<std::string>{}; });
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static ratelimit::MemoryStore store(1024, 4, 1);
    static std::int64_t now = 1'800'000'000'000'000'000LL;
    if (size < 1)
        return 0;
    // First byte: the peer (trusted or not, v4 or v6); the rest: the request.
    static const char* const kPeers[] = {"127.0.0.1", "203.0.113.7", "::1", "2001:db8::5"};
    const auto peer = *net::IpAddress::parse(kPeers[data[0] % 4]);
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(64 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(data + 1, size - 1), ec);
    if (ec || !parser.is_header_done())
        return 0;
    const auto& req = parser.get();
    const std::string method(req.method_string());
    const std::string target(req.target());
    const l7::RequestView view{.method = method,
                               .target = target,
                               .peer = peer,
                               .header = [&req](std::string_view n) -> std::string_view { return req[n]; }};
    const auto e = l7::evaluate(fuzz_config(), view, now / 1'000'000'000LL);
    now += 1'000'000;
    if (e.kind != l7::Evaluation::Kind::limit || e.key_count == 0)
        return 0;
    if (e.key_count > ratelimit::MemoryStore::kMaxKeys || e.cost == 0)
        __builtin_trap();
    const auto keyed = e.keyed();
    const auto d = store.decide_keys(std::span(keyed.data(), e.key_count), now, e.cost);
    std::string out;
    l7::append_rate_limit_headers(out, e.spec_of(d), d, now / 1'000'000'000LL, l7::HeaderStyle::both);
    // Exactly the fields we mean to send: nothing from the request can add a line.
    const auto lines = std::count(out.begin(), out.end(), '\n');
    if (lines != (d.allowed ? 5 : 6) || std::count(out.begin(), out.end(), '\r') != lines)
        __builtin_trap();
    if (!d.allowed)
        (void)l7::too_many_requests_body(d, now / 1'000'000'000LL, e.tier ? e.tier->message : "");
    return 0;
}
