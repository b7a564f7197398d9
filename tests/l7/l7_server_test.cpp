// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7 as a process on loopback, spoken to by a real HTTP client: the
// forward-auth check and the reverse proxy, headers on 200 and 429, waiting
// for Retry-After, tiers and keys (API key, JWT user, client IP), trusted
// proxies, throttles, upstream failures, escalation, reload, bad input.
#include <gtest/gtest.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/un.h>

#include <future>
#include <regex>

#include "support/bpf_env.hpp"  // RLGATE_REQUIRE: skip outside CI, fail under CI=true
#include "support/l7_process.hpp"
#include "support/test_upstream.hpp"

namespace rlgate::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json limit(int n, const char* per, const char* algorithm = "gcra") {
    return {{"limit", n}, {"per", per}, {"algorithm", algorithm}};
}

json forward_auth_config() {
    return {{"mode", "forward_auth"},
            {"api_keys", {{"k-free", "free"}, {"k-premium", "premium"}, {"k-internal", "internal"}}},
            {"anonymous_tier", "anonymous"},
            {"tiers",
             {{"anonymous", {{"limits", {limit(2, "2s")}}}},
              {"free", {{"limits", {limit(3, "1m")}}, {"message", "Upgrade to premium at https://example.com/pricing"}}},
              {"premium", {{"limits", {limit(100, "1m")}}}},
              {"internal", {{"bypass", true}}}}},
            {"escalation", {{"enabled", false}}}};
}

std::string base64url(const unsigned char* data, std::size_t n) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    for (std::size_t i = 0; i < n; i += 3) {
        const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (i + 1 < n ? std::uint32_t{data[i + 1]} << 8 : 0) |
                                (i + 2 < n ? data[i + 2] : 0);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        if (i + 1 < n)
            out += kAlphabet[(v >> 6) & 63];
        if (i + 2 < n)
            out += kAlphabet[v & 63];
    }
    return out;
}
std::string base64url(const std::string& s) { return base64url(reinterpret_cast<const unsigned char*>(s.data()), s.size()); }

std::string hs256_token(const json& claims, const std::string& secret) {
    const auto input = base64url(json{{"alg", "HS256"}, {"typ", "JWT"}}.dump()) + "." + base64url(claims.dump());
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &len);
    return input + "." + base64url(mac, len);
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(ForwardAuth, AnswersWithRateLimitHeadersThen429AndHonoursRetryAfter) {
    L7Process l7("headers");
    l7.write_config(forward_auth_config());
    l7.start();
    const auto first = l7.check("/api/items");
    ASSERT_EQ(first.status, 200) << l7.log_text();
    EXPECT_EQ(first.headers.at("x-ratelimit-limit"), "2");
    EXPECT_EQ(first.headers.at("x-ratelimit-remaining"), "1");
    EXPECT_GE(std::stoll(first.headers.at("x-ratelimit-reset")), unix_now());
    EXPECT_EQ(first.headers.at("ratelimit-policy"), "\"2/2s\";q=2;w=2");
    EXPECT_TRUE(std::regex_match(first.headers.at("ratelimit"), std::regex(R"("2/2s";r=1;t=[12])"))) << first.headers.at("ratelimit");
    EXPECT_FALSE(first.headers.contains("retry-after"));
    EXPECT_EQ(l7.check("/api/items").status, 200);

    const auto refused = l7.check("/api/items");
    ASSERT_EQ(refused.status, 429);
    EXPECT_EQ(refused.headers.at("x-ratelimit-remaining"), "0");
    const auto retry = std::stoi(refused.headers.at("retry-after"));
    EXPECT_GE(retry, 1);
    EXPECT_LE(retry, 2);
    EXPECT_EQ(refused.headers.at("content-type"), "application/json");
    const auto body = json::parse(refused.body);
    EXPECT_EQ(body["error"], "rate_limit_exceeded");
    EXPECT_EQ(body["retry_after"], retry);
    EXPECT_GE(body["reset_at"].get<std::int64_t>(), unix_now());
    EXPECT_FALSE(body["message"].get<std::string>().empty());

    // A client that waits as told gets in.
    std::this_thread::sleep_for(std::chrono::seconds(retry));
    EXPECT_EQ(l7.check("/api/items").status, 200);
}

TEST(ForwardAuth, TiersKeepTheirOwnLimitsAndBypassIsUnlimited) {
    L7Process l7("tiers");
    l7.write_config(forward_auth_config());
    l7.start();
    int free_ok = 0, premium_ok = 0, internal_ok = 0;
    for (int i = 0; i < 6; ++i) {
        free_ok += l7.check("/api/x", {{"X-API-Key", "k-free"}}).status == 200;
        premium_ok += l7.check("/api/x", {{"X-API-Key", "k-premium"}}).status == 200;
        const auto internal = l7.check("/api/x", {{"X-API-Key", "k-internal"}});
        internal_ok += internal.status == 200;
        EXPECT_FALSE(internal.headers.contains("x-ratelimit-limit")) << "bypass: no limit to describe";
    }
    EXPECT_EQ(free_ok, 3);
    EXPECT_EQ(premium_ok, 6);
    EXPECT_EQ(internal_ok, 6);
    // The free tier's 429 names the way up; the key also works as a query parameter.
    const auto refused = l7.check("/api/x?api_key=k-free");
    ASSERT_EQ(refused.status, 429);
    EXPECT_EQ(json::parse(refused.body)["message"], "Upgrade to premium at https://example.com/pricing");
    // An unknown key earns nothing: it is the anonymous caller's address.
    EXPECT_EQ(l7.check("/api/x", {{"X-API-Key", "made-up-1"}}).status, 200);
    EXPECT_EQ(l7.check("/api/x", {{"X-API-Key", "made-up-2"}}).status, 200);
    EXPECT_EQ(l7.check("/api/x", {{"X-API-Key", "made-up-3"}}).status, 429);
}

TEST(ForwardAuth, JwtSubjectsAreUsersAndBadTokensAre401) {
    const std::string secret = "0123456789abcdef0123456789abcdef-test";
    auto cfg = forward_auth_config();
    cfg["identity"] = {{"jwt", {{"algorithm", "HS256"}, {"secret", secret}, {"issuer", "https://auth.example"}}}};
    cfg["users"] = {{"alice", "premium"}};
    cfg["user_tier"] = "free";
    L7Process l7("jwt");
    l7.write_config(cfg);
    l7.start();
    auto bearer = [&](const std::string& sub, std::int64_t exp_in = 600) {
        return std::map<std::string, std::string>{
            {"Authorization", "Bearer " + hs256_token({{"sub", sub}, {"iss", "https://auth.example"}, {"exp", unix_now() + exp_in}}, secret)}};
    };
    int alice = 0, bob = 0;
    for (int i = 0; i < 5; ++i) {
        alice += l7.check("/api/x", bearer("alice")).status == 200;
        bob += l7.check("/api/x", bearer("bob")).status == 200;
    }
    EXPECT_EQ(alice, 5) << "alice is premium";
    EXPECT_EQ(bob, 3) << "bob is a user without a listing: the free tier";

    for (const auto& [name, headers] : std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
             {"wrong secret", {{"Authorization", "Bearer " + hs256_token({{"sub", "alice"}}, secret + "x")}}},
             {"expired", bearer("alice", -3600)},
             {"not a bearer", {{"Authorization", "Basic YWxpY2U6cGFzcw=="}}},
             {"garbage", {{"Authorization", "Bearer not.a.jwt"}}},
             {"alg none", {{"Authorization", "Bearer " + base64url(R"({"alg":"none"})") + "." + base64url(R"({"sub":"alice"})") + "."}}},
             {"wrong issuer", {{"Authorization", "Bearer " + hs256_token({{"sub", "alice"}, {"iss", "evil"}}, secret)}}}}) {
        const auto r = l7.check("/api/x", headers);
        EXPECT_EQ(r.status, 401) << name;
        EXPECT_EQ(json::parse(r.body)["error"], "invalid_token") << name;
    }
}

TEST(ForwardAuth, ForwardedForIsBelievedOnlyFromTrustedProxies) {
    for (const bool trusted : {false, true}) {
        auto cfg = forward_auth_config();
        if (trusted)
            cfg["trusted_proxies"] = {"127.0.0.1/32"};
        L7Process l7(trusted ? "trusted" : "untrusted");
        l7.write_config(cfg);
        l7.start();
        int ok = 0;
        for (int i = 0; i < 3; ++i)  // three "different clients" by their claims
            ok += l7.check("/api/x", {{"X-Forwarded-For", "198.51.100." + std::to_string(i + 1)}}).status == 200;
        if (trusted)
            EXPECT_EQ(ok, 3) << "each forwarded client has its own bucket";
        else
            EXPECT_EQ(ok, 2) << "spoofed headers from an untrusted peer are ignored: one client, 127.0.0.1";
        // Forwarded is not the configured header: proxies pass a client's own through.
        ok = 0;
        for (int i = 0; i < 3; ++i)
            ok += l7.check("/api/y", {{"Forwarded", "for=203.0.113." + std::to_string(i + 1)}}).status == 200;
        EXPECT_EQ(ok, trusted ? 2 : 0) << "all counted as 127.0.0.1";
    }
    auto cfg = forward_auth_config();
    cfg["trusted_proxies"] = {"127.0.0.1/32"};
    cfg["client_ip_header"] = "Forwarded";
    L7Process l7("forwarded");
    l7.write_config(cfg);
    l7.start();
    int ok = 0;
    for (int i = 0; i < 3; ++i)
        ok += l7.check("/api/x", {{"Forwarded", "for=203.0.113." + std::to_string(i + 1)}, {"X-Forwarded-For", "1.1.1.1"}}).status == 200;
    EXPECT_EQ(ok, 3) << "configured: Forwarded names the client, X-Forwarded-For is ignored";
}

TEST(ForwardAuth, OriginalRequestComesFromOneConfiguredHeaderPairOrEnvoysPath) {
    auto cfg = forward_auth_config();
    cfg["endpoints"] = {{{"name", "login"}, {"route", "POST /login"}}};
    cfg["tiers"]["anonymous"]["endpoints"] = {{"login", {limit(1, "1m")}}};
    cfg["tiers"]["anonymous"]["limits"] = {limit(100, "1m")};
    L7Process l7("original");
    l7.write_config(cfg);
    l7.start();
    EXPECT_EQ(l7.check("/login", {}, "POST").status, 200);
    EXPECT_EQ(l7.check("/login", {}, "POST").status, 429);
    const auto dodge = l7.check("/%6Cogin/./", {{"X-Original-URI", "/other"}}, "POST");
    EXPECT_EQ(dodge.status, 429) << "another spelling of the path, and a header this config does not read";
    EXPECT_EQ(dodge.headers.at("x-rlgate-reason"), "rate_limit_exceeded");
    // Envoy ext_authz: the original path follows the check path.
    auto envoy = http_request(l7.port(), "POST", "/check/login?x=1");
    EXPECT_EQ(envoy.status, 429);
    envoy = http_request(l7.port(), "POST", "/check/elsewhere");
    EXPECT_EQ(envoy.status, 200);
    EXPECT_EQ(http_request(l7.port(), "POST", "/checkout").status, 404) << "a prefix of a segment is not under it";
}

TEST(ForwardAuth, ThrottledEndpointsQueueUntilTheirDeadline) {
    auto cfg = forward_auth_config();
    cfg["endpoints"] = {{{"name", "report"}, {"route", "POST /api/report"}, {"throttle", {{"queue", 2}, {"max_wait", "1500ms"}}}}};
    cfg["tiers"]["anonymous"]["endpoints"] = {{"report", {limit(1, "1s")}}};
    cfg["tiers"]["anonymous"]["limits"] = {limit(100, "1m")};
    L7Process l7("throttle");
    l7.write_config(cfg);
    l7.start();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::future<std::pair<int, double>>> calls;
    for (int i = 0; i < 4; ++i) {
        calls.push_back(std::async(std::launch::async, [&] {
            const auto r = l7.check("/api/report", {}, "POST");
            return std::make_pair(r.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }));
        std::this_thread::sleep_for(20ms);  // arrival order
    }
    std::vector<std::pair<int, double>> results;
    for (auto& c : calls)
        results.push_back(c.get());
    int allowed = 0, refused_fast = 0, refused_at_deadline = 0;
    double latest_allowed = 0;
    for (const auto& [status, at] : results) {
        if (status == 200) {
            ++allowed;
            latest_allowed = std::max(latest_allowed, at);
        } else {
            EXPECT_EQ(status, 429);
            (at < 0.5 ? refused_fast : refused_at_deadline)++;
        }
    }
    EXPECT_EQ(allowed, 2) << "one at once, one after waiting for its turn";
    EXPECT_GE(latest_allowed, 0.9) << "the queued request waited for the limit";
    EXPECT_EQ(refused_fast, 1) << "the queue holds two: the fourth is refused at once";
    EXPECT_EQ(refused_at_deadline, 1) << "a wait beyond max_wait is refused, not held";
}

TEST(ForwardAuth, BadInputGetsADefinedAnswerAndNeverACrash) {
    auto cfg = forward_auth_config();
    cfg["trusted_proxies"] = {"127.0.0.1/32"};
    cfg["identity"] = {{"cost_header", "X-RateLimit-Cost"}};
    cfg["limits"] = {{"max_header_bytes", 4096}, {"max_headers", 20}};
    cfg["tiers"]["anonymous"]["limits"] = {limit(10, "1m")};
    L7Process l7("badinput");
    l7.write_config(cfg);
    l7.start();
    auto raw = [&](const std::string& bytes) {
        auto fd = tcp_connect("127.0.0.1", l7.port());
        send_all(fd.get(), bytes);
        return read_response(fd.get());
    };
    EXPECT_EQ(raw("GARBAGE\r\n\r\n").status, 400);
    EXPECT_EQ(raw("GET /check HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n").status, 400);
    EXPECT_EQ(raw("GET /check HTTP/1.1\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n").status, 431);
    std::string many = "GET /check HTTP/1.1\r\nX-Forwarded-Uri: /a\r\n";
    for (int i = 0; i < 50; ++i)
        many += "X-H" + std::to_string(i) + ": v\r\n";
    EXPECT_EQ(raw(many + "\r\n").status, 431);
    EXPECT_EQ(l7.get("/check").status, 400) << "no original URI: a misconfigured proxy, said clearly";
    EXPECT_EQ(l7.get("/elsewhere").status, 404);
    for (const char* cost : {"abc", "0", "-1", "99999999999999999999", "1.5"}) {
        const auto r = l7.check("/api/x", {{"X-RateLimit-Cost", cost}});
        EXPECT_EQ(r.status, 400) << cost;
        EXPECT_EQ(json::parse(r.body)["error"], "bad_cost") << cost;
    }
    const auto impossible = l7.check("/api/x", {{"X-RateLimit-Cost", "1000"}});
    EXPECT_EQ(impossible.status, 429) << "a cost beyond the limit's capacity is never admitted";
    const auto cost3 = l7.check("/api/x", {{"X-RateLimit-Cost", "3"}});
    EXPECT_EQ(cost3.status, 200);
    EXPECT_EQ(cost3.headers.at("x-ratelimit-remaining"), "7") << "the impossible cost charged nothing";
    EXPECT_EQ(l7.check("/api/x", {{"X-API-Key", std::string(300, 'k')}}).status, 400);
    // Still serving, and it says what it saw.
    const auto m = l7.get("/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("rlgate_l7_bad_requests_total 5"), std::string::npos) << m.body;
}


TEST(ForwardAuth, OneClientCannotTakeEveryConnectionNorGuessTokensForFree) {
    const std::string secret = "0123456789abcdef0123456789abcdef-test";
    auto cfg = forward_auth_config();
    cfg["limits"] = {{"max_connections_per_client", 2}};
    cfg["identity"] = {{"jwt", {{"algorithm", "HS256"}, {"secret", secret}}}};
    cfg["per_ip"] = {limit(3, "1m")};
    L7Process l7("perclient");
    l7.write_config(cfg);
    l7.start();
    std::this_thread::sleep_for(300ms);  // start()'s readiness probe has closed and is no longer counted
    {
        auto a = tcp_connect("127.0.0.1", l7.port());
        auto b = tcp_connect("127.0.0.1", l7.port());
        std::this_thread::sleep_for(200ms);
        auto c = tcp_connect("127.0.0.1", l7.port());
        send_all(c.get(), "GET /check HTTP/1.1\r\nX-Forwarded-Uri: /x\r\n\r\n");
        EXPECT_EQ(read_response(c.get()).status, 503) << "the third connection of one client";
    }
    std::this_thread::sleep_for(200ms);  // the two idle ones closed: room again
    // Bad tokens: 401 while the client's per-IP budget lasts, then 429.
    std::vector<int> statuses;
    for (int i = 0; i < 5; ++i) {
        int status = l7.check("/api/x", {{"Authorization", "Bearer not.a.token"}}).status;
        // 503: the server has not yet seen the previous check's connection close (cap 2); again.
        for (int retry = 0; status == 503 && retry < 50; ++retry) {
            std::this_thread::sleep_for(20ms);
            status = l7.check("/api/x", {{"Authorization", "Bearer not.a.token"}}).status;
        }
        statuses.push_back(status);
    }
    EXPECT_EQ(statuses, (std::vector<int>{401, 401, 401, 429, 429}));
    // The server may not have seen the last checks' connections close yet (cap 2): retry.
    HttpResult metrics;
    for (int i = 0; i < 50 && metrics.status != 200; ++i) {
        metrics = l7.get("/metrics");
        if (metrics.status != 200)
            std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(metrics.status, 200);
    const auto& m = metrics.body;
    // At least the third connection (the metrics retries above may have been refused too).
    const auto at = m.find("\nrlgate_l7_connections_refused_per_client_total ");
    ASSERT_NE(at, std::string::npos) << m;
    EXPECT_GE(std::stoull(m.substr(at + 48)), 1U) << m;
}

TEST(Proxy, ForwardsStreamsBodiesPoolsConnectionsAndAnswers429Itself) {
    TestUpstream upstream;
    auto cfg = forward_auth_config();
    cfg["mode"] = "proxy";
    cfg["proxy"] = {{"upstream", "http://127.0.0.1:" + std::to_string(upstream.port())}};
    cfg["tiers"]["anonymous"]["limits"] = {limit(12, "1m")};
    L7Process l7("proxy");
    l7.write_config(cfg);
    l7.start();
    for (int i = 0; i < 8; ++i) {
        const auto r = l7.get("/echo");
        ASSERT_EQ(r.status, 200) << l7.log_text();
        EXPECT_EQ(r.body, "GET /echo len=0 xff=127.0.0.1 expect=");
        EXPECT_EQ(r.headers.at("x-upstream"), "yes");
        EXPECT_EQ(r.headers.at("x-ratelimit-limit"), "12");
        EXPECT_EQ(r.headers.at("x-ratelimit-remaining"), std::to_string(11 - i));
    }
    EXPECT_LE(upstream.connections(), 2) << "keep-alive connections to the upstream are reused";

    const std::string big(8 << 20, 'b');
    const auto post = http_request(l7.port(), "POST", "/upload", {{"Expect", "100-continue"}}, big);
    EXPECT_EQ(post.status, 200);
    EXPECT_EQ(post.body, "POST /upload len=8388608 xff=127.0.0.1 expect=");

    const auto chunked = l7.get("/chunked");
    EXPECT_EQ(chunked.status, 200);
    EXPECT_NE(chunked.body.find("hello"), std::string::npos);
    EXPECT_NE(chunked.body.find("world"), std::string::npos);

    while (l7.get("/echo").status == 200) {
    }
    const int before = upstream.requests();
    const auto refused = l7.get("/echo");
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(json::parse(refused.body)["error"], "rate_limit_exceeded");
    EXPECT_EQ(upstream.requests(), before) << "a refused request never reaches the upstream";
}

// Reads from a raw connection until `marker` arrives or 3 s pass.
std::string read_until(int fd, const std::string& marker) {
    std::string got;
    char buf[4096];
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (got.find(marker) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

TEST(Proxy, FramingCannotBeSmuggledAndInterimOrCloseDelimitedResponsesStayWhole) {
    TestUpstream upstream;
    auto cfg = forward_auth_config();
    cfg["mode"] = "proxy";
    cfg["proxy"] = {{"upstream", "http://127.0.0.1:" + std::to_string(upstream.port())}};
    cfg["tiers"]["anonymous"]["limits"] = {limit(100, "1m")};
    L7Process l7("framing");
    l7.write_config(cfg);
    l7.start();
    // "Connection: Content-Length" must not drop the body's length.
    {
        const std::string inner = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
        auto fd = tcp_connect("127.0.0.1", l7.port());
        send_all(fd.get(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(inner.size()) +
                               "\r\nConnection: keep-alive, Content-Length, Transfer-Encoding\r\n\r\n" + inner);
        const auto got = read_until(fd.get(), "expect=");
        EXPECT_NE(got.find("POST /echo len=" + std::to_string(inner.size())), std::string::npos) << got;
    }
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(upstream.requests(), 1) << "the body reached the upstream as a body, not as a request";
    // An interim 103 is not the answer.
    const auto early = l7.get("/early");
    EXPECT_EQ(early.status, 200);
    EXPECT_EQ(early.body, "final body");
    EXPECT_EQ(l7.get("/echo").body, "GET /echo len=0 xff=127.0.0.1 expect=") << "and the next request gets its own answer";
    // A body that ends with the upstream's close reaches a keep-alive client chunked.
    {
        auto fd = tcp_connect("127.0.0.1", l7.port());
        send_all(fd.get(), "GET /eof HTTP/1.1\r\nHost: x\r\n\r\n");
        const auto got = read_until(fd.get(), "0\r\n\r\n");
        EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got;
        EXPECT_NE(got.find("body until close"), std::string::npos) << got;
        EXPECT_NE(got.find("0\r\n\r\n"), std::string::npos) << "the end is marked, the client does not hang";
    }
    // Transfer codings we will not guess at.
    {
        auto fd = tcp_connect("127.0.0.1", l7.port());
        send_all(fd.get(), "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        EXPECT_EQ(read_response(fd.get()).status, 400);
    }
}

TEST(Proxy, AnEndpointLimitHoldsHoweverThePathIsSpelled) {
    TestUpstream upstream;
    auto cfg = forward_auth_config();
    cfg["mode"] = "proxy";
    cfg["trusted_proxies"] = {"127.0.0.1/32"};
    cfg["proxy"] = {{"upstream", "http://127.0.0.1:" + std::to_string(upstream.port())}};
    cfg["tiers"]["anonymous"]["limits"] = {limit(100, "1m")};
    cfg["endpoints"] = {{{"name", "login"}, {"route", "POST /api/login"}}, {{"name", "page"}, {"route", "GET /page"}}};
    cfg["tiers"]["anonymous"]["endpoints"] = {{"login", {limit(1, "1m")}}, {"page", {limit(1, "1m")}}};
    L7Process l7("spelling");
    l7.write_config(cfg);
    l7.start();
    EXPECT_EQ(http_request(l7.port(), "POST", "/api/login").status, 200);
    for (const char* spelling : {"http://x/api/login", "/api/login;jsessionid=1", "/api/%6Cogin", "/api\\login", "/api/./login"})
        EXPECT_EQ(http_request(l7.port(), "POST", spelling).status, 429) << spelling;
    EXPECT_EQ(http_request(l7.port(), "GET", "/page").status, 200);
    const auto head = http_request(l7.port(), "HEAD", "/page");
    EXPECT_EQ(head.status, 429) << "HEAD is served by the GET route";
    EXPECT_TRUE(head.body.empty()) << "and a HEAD answer has no body";
    EXPECT_EQ(http_request(l7.port(), "OPTIONS", "*").status, 400);
    // A proxy's own X-Forwarded-For line after a forged one: the list is both.
    int ok = 0;
    for (int i = 0; i < 3; ++i) {
        auto fd = tcp_connect("127.0.0.1", l7.port());
        send_all(fd.get(), "POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n"
                           "X-Forwarded-For: 10.9.9." + std::to_string(i) + "\r\nX-Forwarded-For: 198.51.100.77\r\n\r\n");
        ok += read_response(fd.get()).status == 200;
    }
    EXPECT_EQ(ok, 1) << "all counted as 198.51.100.77, the address the last proxy added";
}

TEST(Proxy, UpstreamDownIs502AndSlowIs504) {
    TestUpstream upstream;
    auto cfg = forward_auth_config();
    cfg["mode"] = "proxy";
    cfg["tiers"]["anonymous"]["limits"] = {limit(100, "1m")};
    cfg["proxy"] = {{"upstream", "http://127.0.0.1:" + std::to_string(free_port())}, {"connect_timeout", "1s"}};
    {
        L7Process l7("down");
        l7.write_config(cfg);
        l7.start();
        const auto r = l7.get("/echo");
        EXPECT_EQ(r.status, 502);
        EXPECT_EQ(json::parse(r.body)["error"], "bad_gateway");
    }
    cfg["proxy"] = {{"upstream", "http://127.0.0.1:" + std::to_string(upstream.port())}, {"timeout", "500ms"}};
    L7Process l7("slow");
    l7.write_config(cfg);
    l7.start();
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = l7.get("/slow");
    EXPECT_EQ(r.status, 504);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
    EXPECT_EQ(l7.get("/echo").status, 200) << "and the next request is served";
    const auto m = l7.get("/metrics").body;
    EXPECT_NE(m.find("rlgate_l7_upstream_errors_total{kind=\"timeout\"} 1"), std::string::npos) << m;
}

TEST(Proxy, ConcurrencyThrottleQueuesInFlightRequests) {
    TestUpstream upstream;
    auto cfg = forward_auth_config();
    cfg["mode"] = "proxy";
    cfg["proxy"] = {{"upstream", "http://127.0.0.1:" + std::to_string(upstream.port())}};
    cfg["tiers"]["anonymous"]["limits"] = {limit(100, "1m")};
    cfg["endpoints"] = {{{"name", "export"},
                         {"route", "GET /sleep300"},
                         {"throttle", {{"concurrency", 1}, {"queue", 2}, {"max_wait", "2s"}}}}};
    L7Process l7("concurrency");
    l7.write_config(cfg);
    l7.start();
    std::vector<std::future<int>> calls;
    for (int i = 0; i < 4; ++i) {
        calls.push_back(std::async(std::launch::async, [&] { return l7.get("/sleep300").status; }));
        std::this_thread::sleep_for(30ms);
    }
    std::vector<int> statuses;
    for (auto& c : calls)
        statuses.push_back(c.get());
    EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 3) << "one in flight, two queued and served in turn";
    EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 429), 1) << "the queue is full for the fourth";
}

// A stand-in for rlgated's escalation socket: records what arrives.
class FakeEscalationSocket {
public:
    explicit FakeEscalationSocket(const std::filesystem::path& path) : path_(path.string()) {
        fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
        if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_.get(), 16) != 0)
            throw std::runtime_error("fake escalation socket");
        ::chmod(path_.c_str(), 0666);  // rlgate-l7 runs as nobody
        thread_ = std::thread([this] {
            while (!stop_) {
                pollfd p{fd_.get(), POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0)
                    continue;
                UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
                std::string line;
                char ch;
                while (::recv(c.get(), &ch, 1, 0) == 1 && ch != '\n')
                    line += ch;
                const auto req = json::parse(line, nullptr, false);
                send_all(c.get(), json{{"v", 1}, {"id", req.value("id", 0)}, {"ok", true}, {"result", json::object()}}.dump() + "\n");
                std::lock_guard lock(mu_);
                requests_.push_back(req);
            }
        });
    }
    ~FakeEscalationSocket() {
        stop_ = true;
        thread_.join();
    }
    std::vector<json> requests(const std::string& cmd) {
        std::lock_guard lock(mu_);
        std::vector<json> out;
        for (const auto& r : requests_)
            if (r.value("cmd", "") == cmd)
                out.push_back(r);
        return out;
    }

private:
    std::string path_;
    UniqueFd fd_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<json> requests_;
    std::thread thread_;
};

TEST(Escalation, PersistentAbusersAreReportedToRlgatedOnceAndCountsFlow) {
    L7Process l7("escalation");
    FakeEscalationSocket daemon(l7.dir() / "escalate.sock");
    auto cfg = forward_auth_config();
    cfg["trusted_proxies"] = {"127.0.0.1/32"};
    cfg["escalation"] = {{"socket", (l7.dir() / "escalate.sock").string()},
                         {"after", 5},
                         {"window", "1m"},
                         {"ban", "10m"},
                         {"report_interval", "1s"}};
    l7.write_config(cfg);
    l7.start();
    for (int i = 0; i < 20; ++i)
        l7.check("/api/x", {{"X-Forwarded-For", "198.51.100.7"}});
    for (int i = 0; i < 3; ++i)
        l7.check("/api/x", {{"X-Forwarded-For", "198.51.100.8"}});  // refused once: below the threshold
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline && daemon.requests("report").empty())
        std::this_thread::sleep_for(50ms);
    const auto escalations = daemon.requests("escalate");
    ASSERT_EQ(escalations.size(), 1U) << "one escalation per ban length, not one per refusal\n" << l7.log_text();
    EXPECT_EQ(escalations[0]["args"]["source"], "198.51.100.7");
    EXPECT_EQ(escalations[0]["args"]["ttl_s"], 600);
    ASSERT_FALSE(daemon.requests("report").empty());
    const auto report = daemon.requests("report")[0]["args"];
    EXPECT_EQ(report["redis"], "unused");
    std::uint64_t limited = 0;
    for (const auto& d : report["decisions"])
        if (d["verdict"] == "limited")
            limited += d["count"].get<std::uint64_t>();
    EXPECT_EQ(limited, 19U);
}

TEST(Escalation, WithoutRlgatedItOnlyLogs) {
    L7Process l7("nodaemon");
    auto cfg = forward_auth_config();
    cfg["escalation"] = {{"socket", (l7.dir() / "nobody-here.sock").string()}, {"after", 2}};
    l7.write_config(cfg);
    l7.start();
    for (int i = 0; i < 6; ++i)
        l7.check("/api/x");
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(l7.check("/api/x").status, 429) << "still deciding";
    EXPECT_NE(l7.log_text().find("the escalation is only logged"), std::string::npos) << l7.log_text();
}

TEST(Lifecycle, ReloadAppliesAGoodConfigAndKeepsTheRunningOneOnABadOne) {
    L7Process l7("reload");
    auto cfg = forward_auth_config();
    l7.write_config(cfg);
    l7.start();
    EXPECT_EQ(l7.check("/api/x", {{"X-API-Key", "k-free"}}).headers.at("x-ratelimit-limit"), "3");
    cfg["tiers"]["free"]["limits"] = {limit(7, "1m")};
    l7.write_config(cfg);
    l7.signal(SIGHUP);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(l7.check("/api/x", {{"X-API-Key", "k-free"}}).headers.at("x-ratelimit-limit"), "7");
    l7.write_raw_config("{ \"tiers\": ");
    l7.signal(SIGHUP);
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(l7.check("/api/x", {{"X-API-Key", "k-free"}}).headers.at("x-ratelimit-limit"), "7");
    EXPECT_NE(l7.log_text().find("reload rejected, the running policy stays"), std::string::npos);
}

TEST(Lifecycle, KillNineUnderLoadLosesOnlyInFlightRequestsAndARestartServesAtOnce) {
    L7Process l7("kill9");
    l7.write_config(forward_auth_config());
    l7.start();
    // Four clients hammer /check (premium: answered 200, then 429 once its 100/min are spent).
    std::atomic<bool> stop{false};
    std::atomic<int> answered{0}, refused_connections{0}, other_status{0}, slow{0};
    auto client = [&] {
        while (!stop.load()) {
            const auto t0 = std::chrono::steady_clock::now();
            try {
                const auto r = l7.check("/api/items", {{"X-API-Key", "k-premium"}});
                if (r.status == 200 || r.status == 429)
                    ++answered;
                else if (r.status != 0)  // 0: the connection died mid-request (the kill)
                    ++other_status;
            } catch (const std::runtime_error&) {
                ++refused_connections;  // nobody listening: the moments between kill and restart
                std::this_thread::sleep_for(5ms);
            }
            if (std::chrono::steady_clock::now() - t0 > 2s)
                ++slow;
        }
    };
    std::vector<std::thread> clients;
    for (int i = 0; i < 4; ++i)
        clients.emplace_back(client);
    std::this_thread::sleep_for(300ms);
    const int before_kill = answered.load();
    l7.stop();  // SIGKILL
    std::this_thread::sleep_for(200ms);
    const int refused_while_down = refused_connections.load();
    l7.start();  // same port, at once
    const int at_restart = answered.load();
    std::this_thread::sleep_for(300ms);
    stop = true;
    for (auto& t : clients)
        t.join();
    EXPECT_GT(before_kill, 0);
    EXPECT_GT(refused_while_down, 0) << "connections were refused while nothing listened";
    EXPECT_GT(answered.load(), at_restart) << "the restarted instance serves the same port at once";
    EXPECT_EQ(other_status.load(), 0) << "every answer is a verdict (200/429), never an error status";
    EXPECT_EQ(slow.load(), 0) << "no request hung on the killed process";
    // Its state was in memory: the restart starts every client afresh (docs/operations.md).
    EXPECT_EQ(l7.check("/api/items", {{"X-API-Key", "k-free"}}).headers.at("x-ratelimit-remaining"), "2");
}

TEST(Lifecycle, RunsWithoutRoot) {
    RLGATE_REQUIRE(geteuid() == 0, "needs root to show that rlgate-l7 refuses it and drops it");
    L7Process refused("root");
    refused.write_config(forward_auth_config());
    EXPECT_EQ(refused.run_expecting_exit(false), 1);
    EXPECT_NE(refused.log_text().find("refusing to run as root"), std::string::npos);

    L7Process l7("nobody");
    l7.write_config(forward_auth_config());
    l7.start();
    std::ifstream status("/proc/" + std::to_string(l7.pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Uid:", 0) == 0) {
            EXPECT_EQ(line.find("\t0"), std::string::npos) << line;
        }
    }
    std::ifstream caps("/proc/" + std::to_string(l7.pid()) + "/status");
    while (std::getline(caps, line)) {
        if (line.rfind("CapEff:", 0) == 0) {
            EXPECT_EQ(line, "CapEff:\t0000000000000000");
        }
    }
}

}  // namespace
}  // namespace rlgate::testing
