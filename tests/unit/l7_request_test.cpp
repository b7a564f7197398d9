// SPDX-License-Identifier: BSD-2-Clause
// What the L7 limiter reads from a request and writes into the response:
// the client address behind trusted proxies, endpoint classes, headers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/l7/client_ip.hpp"
#include "core/l7/evaluate.hpp"
#include "core/l7/headers.hpp"
#include "core/l7/route.hpp"

namespace rlgate::l7 {
namespace {

net::IpAddress ip(const char* s) { return *net::IpAddress::parse(s); }
const std::vector<net::Cidr> kProxies = {*net::Cidr::parse("10.0.0.0/8"), *net::Cidr::parse("fd00::/8")};

TEST(ClientIp, AnUntrustedPeerIsTheClientWhateverItClaims) {
    EXPECT_EQ(client_ip(ip("203.0.113.9"), "1.2.3.4", "", kProxies), ip("203.0.113.9"));
    EXPECT_EQ(client_ip(ip("203.0.113.9"), "", "for=1.2.3.4", kProxies), ip("203.0.113.9"));
}

TEST(ClientIp, TrustedProxiesAreWalkedFromTheRight) {
    // The client may prepend anything; only what our proxies appended counts.
    EXPECT_EQ(client_ip(ip("10.0.0.2"), "6.6.6.6, 198.51.100.7, 10.0.0.1", "", kProxies), ip("198.51.100.7"));
    EXPECT_EQ(client_ip(ip("10.0.0.2"), "198.51.100.7:5555", "", kProxies), ip("198.51.100.7"));
    EXPECT_EQ(client_ip(ip("10.0.0.2"), "10.0.0.5, 10.0.0.1", "", kProxies), ip("10.0.0.5")) << "all trusted: the leftmost";
    EXPECT_EQ(client_ip(ip("10.0.0.2"), "", "", kProxies), ip("10.0.0.2"));
    EXPECT_EQ(client_ip(ip("10.0.0.2"), "garbage, 198.51.100.7", "", kProxies), ip("198.51.100.7"));
    EXPECT_EQ(client_ip(ip("10.0.0.2"), "198.51.100.7, garbage", "", kProxies), ip("10.0.0.2"))
        << "unparsable from a trusted hop: no further";
}

TEST(ClientIp, ForwardedHeaderWithQuotesPortsAndIpv6) {
    EXPECT_EQ(client_ip(ip("10.0.0.2"), "9.9.9.9", R"(for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711")",
                        kProxies),
              ip("2001:db8:cafe::17")) << "Forwarded wins over X-Forwarded-For";
    EXPECT_EQ(client_ip(ip("fd00::1"), "", R"(For="_hidden", for=198.51.100.3)", kProxies), ip("198.51.100.3"));
}

// A caller's IP key: an IPv4 address, or the /64 of an IPv6 one (its owner's
// usual allocation), in the text Redis key digests were made from.
TEST(ClientIp, AnIpv6ClientIsKeyedByItsSlash64) {
    EXPECT_EQ(client_key(ip("192.0.2.7")), "192.0.2.7");
    EXPECT_EQ(client_key(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
    EXPECT_EQ(client_key(ip("2001:db8:1:2::9")), client_key(ip("2001:db8:1:2:ffff::1")));
    EXPECT_NE(client_key(ip("2001:db8:1:2::9")), client_key(ip("2001:db8:1:3::9")));
}

TEST(Routes, MethodsParametersAndWildcards) {
    std::vector<Route> routes;
    for (const auto& [name, pattern] : std::vector<std::pair<std::string, std::string>>{
             {"loans.update", "POST /api/loans/{id}"}, {"loans.read", "GET /api/loans/{id}"},
             {"static", "* /static/*"}, {"root", "GET /"}}) {
        std::string err;
        auto r = parse_route(name, pattern, &err);
        ASSERT_TRUE(r) << err;
        routes.push_back(*r);
    }
    EXPECT_EQ(match(routes, "POST", "/api/loans/42")->name, "loans.update");
    EXPECT_EQ(match(routes, "GET", "/api/loans/42?x=1")->name, "loans.read");
    EXPECT_EQ(match(routes, "DELETE", "/api/loans/42"), nullptr);
    EXPECT_EQ(match(routes, "GET", "/api/loans/42/extra"), nullptr);
    EXPECT_EQ(match(routes, "GET", "/api/loans/"), nullptr) << "an empty parameter is no match";
    EXPECT_EQ(match(routes, "PUT", "/static/css/a.css")->name, "static");
    EXPECT_EQ(match(routes, "GET", "/")->name, "root");
    EXPECT_EQ(match(routes, "GET", "//api//loans//7")->name, "loans.read") << "repeated slashes collapse";
    std::string err;
    EXPECT_FALSE(parse_route("x", "/no/method", &err));
    EXPECT_FALSE(parse_route("x", "get /lower", &err));
    EXPECT_FALSE(parse_route("x", "GET /a/*/b", &err));
    EXPECT_FALSE(parse_route("x", "GET /a/{id", &err));
}

TEST(Headers, AllowedAndRefusedResponsesCarryTheFields) {
    const ratelimit::LimitSpec spec{.name = "10/min", .algorithm = ratelimit::Algorithm::gcra, .limit = 10,
                                    .period_ns = 60'000'000'000ULL, .burst = 0, .calendar = ratelimit::Calendar::none};
    ratelimit::Decision ok{.allowed = true, .tightest = {true, 10, 7, 18'000'000'001, 0}, .tightest_index = 0};
    auto h = rate_limit_headers(spec, ok, 1'700'000'000, HeaderStyle::both);
    const HeaderList expected_ok = {{"X-RateLimit-Limit", "10"}, {"X-RateLimit-Remaining", "7"},
                                    {"X-RateLimit-Reset", "1700000019"}, {"RateLimit-Policy", "\"10/min\";q=10;w=60"},
                                    {"RateLimit", "\"10/min\";r=7;t=19"}};
    EXPECT_EQ(h, expected_ok);
    ratelimit::Decision no{.allowed = false, .tightest = {false, 10, 0, 60'000'000'000, 5'500'000'000}, .tightest_index = 0};
    h = rate_limit_headers(spec, no, 1'700'000'000, HeaderStyle::ietf);
    ASSERT_EQ(h.size(), 3U);
    EXPECT_EQ(h[0], (std::pair<std::string, std::string>{"Retry-After", "6"})) << "rounded up";
    EXPECT_EQ(h[2].second, "\"10/min\";r=0;t=60");
    const auto body = nlohmann::json::parse(too_many_requests_body(no, 1'700'000'000, "slow down"));
    EXPECT_EQ(body["error"], "rate_limit_exceeded");
    EXPECT_EQ(body["retry_after"], 6);
    EXPECT_EQ(body["reset_at"], 1'700'000'060);
    EXPECT_FALSE(body.contains("upgrade_url"));
    const auto upgrade = nlohmann::json::parse(
        too_many_requests_body(no, 1'700'000'000, "Free tier: 10/min. Premium: 1000/min.", "https://example.com/pricing"));
    EXPECT_EQ(upgrade["upgrade_url"], "https://example.com/pricing") << "how to get a higher tier";
    no.tightest.retry_after_ns = 1;
    EXPECT_EQ(retry_after_seconds(no), 1) << "never Retry-After: 0 on a refusal";
}

TEST(Headers, ABucketsPolicyWindowIsTheTimeToRefillItsCapacity) {
    // 10/s with burst 20: q=20 per 2 s is the sustained 10/s; q=20;w=1 would claim twice that.
    const ratelimit::LimitSpec bucket{.name = "free", .algorithm = ratelimit::Algorithm::token_bucket, .limit = 10,
                                      .period_ns = 1'000'000'000ULL, .burst = 20, .calendar = ratelimit::Calendar::none};
    const ratelimit::Decision d{.allowed = true, .tightest = {true, 20, 19, 100'000'000, 0}, .tightest_index = 0};
    EXPECT_EQ(rate_limit_headers(bucket, d, 0, HeaderStyle::ietf)[0].second, "\"free\";q=20;w=2");
    auto gcra = bucket;
    gcra.algorithm = ratelimit::Algorithm::gcra;
    gcra.burst = 0;  // capacity = limit: the window is the period
    const ratelimit::Decision g{.allowed = true, .tightest = {true, 10, 9, 100'000'000, 0}, .tightest_index = 0};
    EXPECT_EQ(rate_limit_headers(gcra, g, 0, HeaderStyle::ietf)[0].second, "\"free\";q=10;w=1");
    auto window = bucket;
    window.algorithm = ratelimit::Algorithm::sliding_window;  // windows count per period, burst or not
    EXPECT_EQ(rate_limit_headers(window, d, 0, HeaderStyle::ietf)[0].second, "\"free\";q=20;w=1");
}

TEST(Route, PathsAreMatchedAsTheApplicationResolvesThem) {
    EXPECT_EQ(normalize_path("/%6Cogin"), "/login");
    EXPECT_EQ(normalize_path("/a/./b/../login"), "/a/login");
    EXPECT_EQ(normalize_path("//login///"), "/login/");
    EXPECT_EQ(normalize_path("/../../login"), "/login");
    EXPECT_EQ(normalize_path("/a%2Fb"), "/a%2Fb") << "an encoded slash stays part of its segment";
    EXPECT_EQ(normalize_path("/%zz/%4"), "/%zz/%4");
    EXPECT_EQ(normalize_path(""), "/");
}

}  // namespace
}  // namespace rlgate::l7
