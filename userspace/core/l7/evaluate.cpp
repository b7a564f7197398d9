// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/evaluate.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/l7/client_ip.hpp"
#include "core/l7/route.hpp"  // hex_digit

namespace rlgate::l7 {
namespace {

bool any_contains(const std::vector<net::Cidr>& list, const net::IpAddress& a) {
    return std::any_of(list.begin(), list.end(), [&](const net::Cidr& c) { return c.contains(a); });
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
            i += 2;
        } else {
            out += s[i] == '+' ? ' ' : s[i];
        }
    }
    return out;
}

Evaluation reject(Evaluation e, unsigned status, std::string error, std::string message) {
    e.kind = Evaluation::Kind::reject;
    e.status = status;
    e.error = std::move(error);
    e.message = std::move(message);
    return e;
}

}  // namespace

std::string client_key(const net::IpAddress& a) {
    if (a.v4)
        return a.to_string();
    return net::Cidr{net::mask_address(a, 64), 64}.to_string();
}

std::string query_parameter(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos || name.empty())
        return {};
    auto query = target.substr(q + 1);
    if (const auto hash = query.find('#'); hash != std::string_view::npos)
        query = query.substr(0, hash);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        const auto eq = pair.find('=');
        if (percent_decode(pair.substr(0, eq)) == name)
            return eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    }
    return {};
}

Evaluation evaluate(const L7Config& config, const RequestView& request, std::int64_t now_unix_s, const SharedPolicy* shared) {
    Evaluation e;
    const bool from_trusted_proxy = any_contains(config.trusted_proxies, request.peer);
    const bool xff = config.client_ip_header == ClientIpHeader::x_forwarded_for;
    e.client = client_ip(request.peer, xff ? request.header("X-Forwarded-For") : std::string_view{},
                         xff ? std::string_view{} : request.header("Forwarded"), config.trusted_proxies);
    if (any_contains(config.bypass, e.client) || (shared && config.from_rlgated.allowlist && shared->allows(e.client))) {
        e.kind = Evaluation::Kind::bypass;
        e.caller_kind = "bypass";
        return e;
    }
    std::string_view raw_path = request.target;
    if (const auto q = raw_path.find('?'); q != std::string_view::npos)
        raw_path = raw_path.substr(0, q);
    // As the application will see it: "/%6Cogin" and "/a/../login" are "/login".
    const std::string path = normalize_path(raw_path);
    const Route* route = match(config.routes, request.method, path);
    if (!route && request.method == "HEAD")  // served by the GET handler in most frameworks
        route = match(config.routes, "GET", path);
    if (route)
        e.endpoint = &config.endpoints[static_cast<std::size_t>(route - config.routes.data())];
    e.cost = e.endpoint ? e.endpoint->cost : 1;
    if (!config.identity.cost_header.empty() && from_trusted_proxy) {
        if (const auto text = request.header(config.identity.cost_header); !text.empty()) {
            std::uint64_t cost = 0;
            const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), cost);
            if (ec != std::errc{} || ptr != text.data() + text.size() || cost == 0 || cost > 1'000'000)
                return reject(std::move(e), 400, "bad_cost",
                              config.identity.cost_header + " must be an integer 1..1000000");
            e.cost = cost;
        }
    }

    // Who is calling: a verified JWT subject, a user named by our auth proxy,
    // an API key, or else an anonymous client address.
    std::string id;
    std::string tier_name;
    auto user_tier = [&](const std::string& user) {
        if (auto it = config.users.find(user); it != config.users.end())
            return it->second;
        return config.user_tier.empty() ? config.anonymous_tier : config.user_tier;
    };
    if (config.identity.jwt) {
        if (const auto auth = request.header(config.identity.jwt->header); !auth.empty()) {
            constexpr std::string_view kBearer = "bearer ";
            if (auth.size() <= kBearer.size() || !iequals(auth.substr(0, kBearer.size()), kBearer))
                return reject(std::move(e), 401, "invalid_token", "expected \"Authorization: Bearer <JWT>\"");
            auto token = auth.substr(kBearer.size());
            while (!token.empty() && token.front() == ' ')
                token.remove_prefix(1);
            const auto r = verify(config.identity.jwt->verifier, token, now_unix_s);
            if (!r.ok)
                return reject(std::move(e), 401, "invalid_token", "the bearer token was refused: " + r.error);
            e.caller_kind = "user";
            id = "u:" + r.subject;
            tier_name = user_tier(r.subject);
        }
    }
    if (id.empty() && !config.identity.user_header.empty() && from_trusted_proxy) {
        if (const auto user = request.header(config.identity.user_header); !user.empty()) {
            if (user.size() > 256)
                return reject(std::move(e), 400, "bad_user", config.identity.user_header + " is longer than 256 bytes");
            e.caller_kind = "user";
            id = "u:" + std::string(user);
            tier_name = user_tier(id.substr(2));
        }
    }
    if (id.empty()) {
        std::string key(request.header(config.identity.api_key_header));
        if (key.empty() && !config.identity.api_key_query.empty())
            key = query_parameter(request.target, config.identity.api_key_query);
        if (key.size() > 256)
            return reject(std::move(e), 400, "bad_api_key", "API keys are at most 256 bytes");
        if (!key.empty()) {
            if (auto it = config.api_keys.find(key); it != config.api_keys.end()) {
                tier_name = it->second;
            } else if (!config.user_tier.empty()) {
                tier_name = config.user_tier;
            } else {
                key.clear();  // an unknown key earns nothing: counted as its address, so spraying keys gains nothing
            }
            if (!key.empty()) {
                e.caller_kind = "api_key";
                id = "k:" + key;
            }
        }
    }
    if (id.empty()) {
        e.caller_kind = "anonymous";
        id = "ip:" + client_key(e.client);
        tier_name = config.anonymous_tier;
        // A prefix rlgated puts in a tier gets the L7 tier of that name, if there is one.
        if (shared && config.from_rlgated.tiers)
            if (const std::string* t = shared->tier_of(e.client); t && config.tiers.contains(*t))
                tier_name = *t;
    }
    e.tier = &config.tiers.at(tier_name);
    if (e.tier->bypass) {
        e.kind = Evaluation::Kind::bypass;
        return e;
    }

    auto add = [&](std::string key, const std::vector<ratelimit::LimitSpec>& specs) {
        if (specs.empty())
            return;
        e.keys[e.key_count] = std::move(key);
        e.specs[e.key_count] = specs;
        ++e.key_count;
    };
    const std::string caller = tier_name + "|" + id;
    add(caller, e.tier->limits);
    if (e.endpoint)
        if (auto it = e.tier->endpoint_limits.find(e.endpoint->name); it != e.tier->endpoint_limits.end())
            add(caller + "|" + e.endpoint->name, it->second);
    add("global", config.global_limits);
    add("client|" + client_key(e.client), config.per_ip_limits);
    return e;
}

}  // namespace rlgate::l7
