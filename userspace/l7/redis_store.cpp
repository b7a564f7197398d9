// SPDX-License-Identifier: BSD-2-Clause
#include "l7/redis_store.hpp"

#include <algorithm>
#include <vector>

#include "core/ratelimit/redis_script.hpp"

namespace rlgate::l7 {

namespace {

constexpr std::size_t kMaxCachedRefusals = 100'000;

RedisOptions client_options(const RedisStoreSettings& s) {
    return RedisOptions{.host = s.host,
                        .port = s.port,
                        .username = s.username,
                        .password = s.password,
                        .tls = s.tls,
                        .tls_ca_file = s.tls_ca_file,
                        .tls_server_name = s.tls_server_name,
                        .connect_timeout = std::chrono::milliseconds(s.connect_timeout_ns / 1'000'000),
                        .timeout = std::chrono::milliseconds(s.timeout_ns / 1'000'000),
                        .connections = s.connections};
}

// Flattens an array reply of integers; nullopt if it is anything else.
std::optional<std::vector<long long>> integers(const RedisReply& r) {
    if (r.type != RedisReply::Type::array)
        return std::nullopt;
    std::vector<long long> out;
    out.reserve(r.elements.size());
    for (const auto& e : r.elements) {
        if (e.type != RedisReply::Type::integer)
            return std::nullopt;
        out.push_back(e.integer);
    }
    return out;
}

}  // namespace

RedisStore::RedisStore(boost::asio::io_context& io, const RedisStoreSettings& settings, std::size_t local_max_keys)
    : settings_(settings),
      client_(io, client_options(settings)),
      sha_(ratelimit::redis::script_sha1()),
      local_(local_max_keys) {}

boost::asio::awaitable<ratelimit::Decision> RedisStore::decide(
    std::span<const ratelimit::MemoryStore::KeyedLimits> keyed, std::uint64_t cost, std::int64_t now_ns,
    std::int64_t unix_ns) {
    if (auto refused = cached_refusal(keyed, cost, now_ns)) {
        ++by_cache_;
        co_return *refused;
    }
    if (!client_.up()) {
        auto d = fallback(keyed, cost, now_ns);
        co_return d;
    }
    // Each key in a slot of its own: a "global" key is one count for every caller (standalone
    // Redis; a Cluster client would need per-slot calls).
    const auto call = ratelimit::redis::build_call(keyed, cost, settings_.prefix, unix_ns, ratelimit::redis::Tagging::per_key);
    std::vector<std::string> args;
    args.reserve(3 + call.keys.size() + call.args.size());
    args.emplace_back("EVALSHA");
    args.push_back(sha_);
    args.push_back(std::to_string(call.keys.size()));
    args.insert(args.end(), call.keys.begin(), call.keys.end());
    args.insert(args.end(), call.args.begin(), call.args.end());
    RedisResult result = co_await client_.call(args);
    if (auto* reply = std::get_if<RedisReply>(&result); reply && reply->is_error() && reply->text.starts_with("NOSCRIPT")) {
        // A restarted or flushed Redis has forgotten the script: load it, then once more.
        ++noscript_;
        std::vector<std::string> load = {"SCRIPT", "LOAD", std::string(ratelimit::redis::decide_script())};
        RedisResult loaded = co_await client_.call(load);
        if (std::holds_alternative<RedisReply>(loaded) && !std::get<RedisReply>(loaded).is_error())
            result = co_await client_.call(args);
        else
            result = loaded;
    }
    if (auto* reply = std::get_if<RedisReply>(&result); reply && !reply->is_error()) {
        const auto values = integers(*reply);
        std::string error;
        std::optional<ratelimit::Decision> d;
        if (values)
            d = ratelimit::redis::decode_reply(*values, &error);
        if (d) {
            ++by_redis_;
            if (!d->allowed)
                remember_refusal(keyed, *d, cost, now_ns);
            co_return *d;
        }
    }
    auto d = fallback(keyed, cost, now_ns);
    co_return d;
}

ratelimit::Decision RedisStore::fallback(std::span<const ratelimit::MemoryStore::KeyedLimits> keyed,
                                         std::uint64_t cost, std::int64_t now_ns) {
    ratelimit::Decision d;
    switch (settings_.on_failure) {
    case RedisFailure::open:
        ++by_open_;
        d.allowed = true;
        d.tightest = {.allowed = true, .limit = 0, .remaining = 0, .reset_ns = 0, .retry_after_ns = 0};
        if (!keyed.empty() && !keyed.front().specs.empty())
            d.tightest.limit = d.tightest.remaining = keyed.front().specs.front().limit;
        return d;
    case RedisFailure::closed:
        ++by_closed_;
        d.allowed = false;
        d.tightest = {.allowed = false, .limit = 0, .remaining = 0, .reset_ns = 1'000'000'000, .retry_after_ns = 1'000'000'000};
        if (!keyed.empty() && !keyed.front().specs.empty())
            d.tightest.limit = keyed.front().specs.front().limit;
        return d;
    case RedisFailure::local: break;
    }
    ++by_local_;
    if (settings_.fleet_size <= 1)
        return local_.decide_keys(keyed, now_ns, cost);
    // This host's share of each limit while the fleet cannot agree.
    std::vector<std::vector<ratelimit::LimitSpec>> shares(keyed.size());
    std::vector<ratelimit::MemoryStore::KeyedLimits> shared_keyed(keyed.size());
    for (std::size_t i = 0; i < keyed.size(); ++i) {
        for (auto spec : keyed[i].specs) {
            spec.limit = std::max<std::uint64_t>(1, spec.limit / settings_.fleet_size);
            if (spec.burst)
                spec.burst = std::max<std::uint64_t>(1, spec.burst / settings_.fleet_size);
            shares[i].push_back(spec);
        }
        shared_keyed[i] = {keyed[i].key, shares[i]};
    }
    return local_.decide_keys(shared_keyed, now_ns, cost);
}

std::optional<ratelimit::Decision> RedisStore::cached_refusal(
    std::span<const ratelimit::MemoryStore::KeyedLimits> keyed, std::uint64_t cost, std::int64_t now_ns) {
    std::lock_guard lock(cache_mu_);
    if (cache_.empty())
        return std::nullopt;
    for (std::size_t i = 0; i < keyed.size(); ++i) {
        const auto it = cache_.find(std::string(keyed[i].key));
        if (it == cache_.end())
            continue;
        if (it->second.until_ns <= now_ns) {
            cache_.erase(it);
            continue;
        }
        if (cost < it->second.cost)  // a smaller request might fit: ask Redis
            continue;
        auto d = it->second.decision;
        const auto left = it->second.until_ns - now_ns;
        d.tightest_group = i;
        d.tightest.retry_after_ns = left;
        d.tightest.reset_ns = std::max(d.tightest.reset_ns - (d.tightest.retry_after_ns - left), left);
        d.tightest.remaining = 0;
        return d;
    }
    return std::nullopt;
}

void RedisStore::remember_refusal(std::span<const ratelimit::MemoryStore::KeyedLimits> keyed,
                                  const ratelimit::Decision& d, std::uint64_t cost, std::int64_t now_ns) {
    if (d.tightest_group >= keyed.size() || d.tightest.retry_after_ns <= 0)
        return;
    std::lock_guard lock(cache_mu_);
    if (cache_.size() >= kMaxCachedRefusals) {
        std::erase_if(cache_, [&](const auto& e) { return e.second.until_ns <= now_ns; });
        if (cache_.size() >= kMaxCachedRefusals)
            return;  // full of live refusals: Redis answers the rest
    }
    cache_[std::string(keyed[d.tightest_group].key)] =
        Refusal{.until_ns = now_ns + d.tightest.retry_after_ns, .cost = cost, .decision = d};
}

RedisStore::Stats RedisStore::stats() const {
    return {.redis = by_redis_.load(),
            .cache = by_cache_.load(),
            .local = by_local_.load(),
            .open = by_open_.load(),
            .closed = by_closed_.load(),
            .noscript = noscript_.load(),
            .client = client_.stats()};
}

}  // namespace rlgate::l7
