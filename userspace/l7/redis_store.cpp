// SPDX-License-Identifier: BSD-2-Clause
#include "l7/redis_store.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/ratelimit/redis_script.hpp"

namespace rlgate::l7 {

namespace {

constexpr std::size_t kMaxCachedRefusals = 100'000;

using redis::RedisClient;
using redis::RedisOptions;
using redis::RedisReply;
using redis::RedisResult;
using redis::RedisCallFailed;

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

}  // namespace

RedisStore::RedisStore(boost::asio::io_context& io, const RedisStoreSettings& settings, std::size_t local_max_keys)
    : settings_(settings),
      sha_(ratelimit::redis::script_sha1()),
      local_(local_max_keys),
      batch_strand_(boost::asio::make_strand(io)) {
    if (settings_.cluster)
        cluster_ = std::make_shared<redis::RedisCluster>(io, client_options(settings_), settings_.seeds);
    else
        single_ = std::make_unique<RedisClient>(io, client_options(settings_));
}

RedisStore::~RedisStore() { stop(); }

void RedisStore::start() {
    if (cluster_)
        cluster_->start();
    else
        single_->start();
}

void RedisStore::stop() {
    if (cluster_)
        cluster_->stop();
    else
        single_->stop();
}

boost::asio::awaitable<RedisResult> RedisStore::call(std::uint16_t slot, std::vector<std::string> args) {
    if (cluster_) {
        RedisResult r = co_await cluster_->call(slot, std::move(args));
        co_return r;
    }
    RedisResult r = co_await single_->call(std::move(args));
    co_return r;
}

boost::asio::awaitable<std::vector<std::optional<ratelimit::Decision>>> RedisStore::run_calls(
    std::uint16_t slot, std::span<const ratelimit::redis::Call> decisions) {
    const auto args = ratelimit::redis::evalsha_command(sha_, decisions);
    RedisResult result = co_await call(slot, args);
    if (auto* reply = std::get_if<RedisReply>(&result); reply && reply->is_error() && reply->text.starts_with("NOSCRIPT")) {
        // A restarted or flushed Redis (or a Cluster node never used) has no script: load it, then once more.
        ++noscript_;
        std::vector<std::string> load = {"SCRIPT", "LOAD", std::string(ratelimit::redis::decide_script())};
        RedisResult loaded;
        if (cluster_)
            loaded = co_await cluster_->call_every_node(load);
        else
            loaded = co_await call(slot, load);
        if (std::holds_alternative<RedisReply>(loaded) && !std::get<RedisReply>(loaded).is_error())
            result = co_await call(slot, args);
        else
            result = loaded;
    }
    std::vector<std::optional<ratelimit::Decision>> out(decisions.size());
    const auto* reply = std::get_if<RedisReply>(&result);
    if (!reply) {
        co_return out;  // no answer (down, timeout): the client counted and logged it
    }
    std::string error;
    if (reply->is_error()) {
        // Not ours to retry: an ACL without a command the script needs (NOPERM), a Redis
        // older than 6.2 (KEEPTTL, PXAT), a Lua error. Every decision of the call falls back.
        error = "redis refused the decide script: " + reply->text;
    } else if (reply->type != RedisReply::Type::string) {
        error = "redis decide reply: not a string";
    } else if (auto decoded = ratelimit::redis::decode_replies(decisions, reply->text, &error)) {
        out = std::move(decoded->decisions);
        for (const auto& e : decoded->errors)
            if (!e.empty()) {
                error = e;  // one decision refused by the script: the first says why
                break;
            }
    }
    if (!error.empty())
        script_error(error);
    co_return out;
}

void RedisStore::script_error(const std::string& why) {
    ++script_errors_;
    // Logged at most every 10 s (a broken setup fails every request), with what was not.
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(log_mu_);
    if (last_script_log_ && now - *last_script_log_ < std::chrono::seconds(10)) {
        ++unlogged_script_errors_;
        return;
    }
    if (unlogged_script_errors_)
        spdlog::error("{} (and {} more since the last such line)", why, unlogged_script_errors_);
    else
        spdlog::error("{}", why);
    last_script_log_ = now;
    unlogged_script_errors_ = 0;
}

boost::asio::awaitable<std::optional<ratelimit::Decision>> RedisStore::run_script(std::span<const Keyed> keyed,
                                                                                  std::uint64_t cost,
                                                                                  std::int64_t unix_ns, bool dry_run,
                                                                                  std::uint16_t slot) {
    // Each key in a slot of its own: a "global" key is one count for every caller.
    auto part = ratelimit::redis::build_call(keyed, cost, settings_.prefix, unix_ns,
                                             ratelimit::redis::Tagging::per_key, dry_run);
    if (!cluster_ && settings_.batch > 1) {
        auto waiting = std::make_shared<Waiting>(batch_strand_, std::move(part));
        auto d = co_await boost::asio::co_spawn(batch_strand_, enqueue(waiting), boost::asio::use_awaitable);
        co_return d;
    }
    const std::array one = {std::move(part)};
    auto decided = co_await run_calls(slot, one);
    co_return decided.front();
}

boost::asio::awaitable<std::optional<ratelimit::Decision>> RedisStore::enqueue(std::shared_ptr<Waiting> waiting) {
    // No later than a call of its own would answer: a request never waits on a queue past
    // the timeout. Set first: flush() may run (and finish, if no connection is up) at once.
    waiting->timer.expires_after(std::chrono::nanoseconds(settings_.timeout_ns));
    queue_.push_back(waiting);
    if (may_send())
        boost::asio::co_spawn(batch_strand_, flush(), boost::asio::detached);
    if (!waiting->done) {
        [[maybe_unused]] auto [ec] = co_await waiting->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    if (!waiting->done)
        waiting->abandoned = true;  // flush() skips it if it is still queued
    co_return waiting->decision;
}

boost::asio::awaitable<void> RedisStore::flush() {
    while (may_send()) {
        std::vector<std::shared_ptr<Waiting>> batch;
        while (!queue_.empty() && batch.size() < settings_.batch) {
            auto w = std::move(queue_.front());
            queue_.pop_front();
            if (!w->abandoned)
                batch.push_back(std::move(w));
        }
        if (batch.empty())
            continue;
        std::vector<ratelimit::redis::Call> parts;
        parts.reserve(batch.size());
        for (auto& w : batch)
            parts.push_back(std::move(w->part));
        ++batches_in_flight_;
        std::vector<std::optional<ratelimit::Decision>> decided;
        try {
            decided = co_await run_calls(0, parts);
        } catch (...) {
            decided.assign(batch.size(), std::nullopt);  // no decision: each request falls back
        }
        --batches_in_flight_;
        ++batches_;
        batched_decisions_ += batch.size();
        for (std::size_t i = 0; i < batch.size(); ++i) {
            batch[i]->decision = decided.at(i);
            batch[i]->done = true;
            batch[i]->timer.cancel();
        }
    }
}

boost::asio::awaitable<std::optional<ratelimit::Decision>> RedisStore::across_slots(std::span<const Keyed> keyed,
                                                                                    std::uint64_t cost,
                                                                                    std::int64_t unix_ns) {
    // The keys of each slot, in decision order; a key's slot is that of its hash tag.
    struct Group {
        std::uint16_t slot = 0;
        std::vector<std::size_t> members;  // indices into `keyed`
        std::vector<Keyed> keyed;
    };
    std::vector<Group> groups;
    for (std::size_t i = 0; i < keyed.size(); ++i) {
        const auto one = ratelimit::redis::build_call(keyed.subspan(i, 1), cost, settings_.prefix, unix_ns,
                                                      ratelimit::redis::Tagging::per_key);
        const auto slot = one.keys.empty() ? std::uint16_t{0} : redis::key_slot(one.keys.front());
        auto it = std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.slot == slot; });
        if (it == groups.end())
            it = groups.insert(groups.end(), Group{.slot = slot});
        it->members.push_back(i);
        it->keyed.push_back(keyed[i]);
    }
    if (groups.size() == 1) {
        auto d = co_await run_script(keyed, cost, unix_ns, false, groups.front().slot);
        co_return d;
    }
    // Judged everywhere first: a refused decision charges nothing. Then charged everywhere: a
    // race with another host between the two may refuse it in one slot after others were
    // charged (stricter, never looser, than one atomic decision).
    static constexpr std::array<bool, 2> kPhases = {true, false};  // judge, then charge
    std::optional<ratelimit::Decision> result;
    for (const bool dry : kPhases) {
        std::optional<ratelimit::Decision> combined;
        for (const auto& g : groups) {
            auto d = co_await run_script(g.keyed, cost, unix_ns, dry, g.slot);
            if (!d) {
                std::optional<ratelimit::Decision> none;
                co_return none;
            }
            d->tightest_group = g.members.at(std::min(d->tightest_group, g.members.size() - 1));
            if (!combined) {
                combined = d;
            } else {
                if (ratelimit::is_tighter(d->tightest, combined->tightest)) {
                    const bool allowed = combined->allowed && d->allowed;
                    combined = d;
                    combined->allowed = allowed;
                } else {
                    combined->allowed = combined->allowed && d->allowed;
                }
            }
            if (!d->allowed)
                break;
        }
        result = combined;
        if (!result || !result->allowed)
            break;
    }
    co_return result;
}

std::optional<ratelimit::Decision> RedisStore::from_lease(const std::string& signature, std::int64_t now_ns, bool& hot) {
    std::lock_guard lock(lease_mu_);
    if (auto it = leases_.find(signature); it != leases_.end()) {
        auto& l = it->second;
        if (l.until_ns > now_ns && l.left == 0 && l.cost == 0) {  // a lease was refused lately: ask singly
            hot = false;
            return std::nullopt;
        }
        if (l.until_ns > now_ns && l.left > 0) {
            --l.left;
            auto d = l.granted;
            d.tightest.remaining += l.left * l.cost;  // what this host still holds for the caller
            return d;
        }
        leases_.erase(it);
    }
    // Hot: decided before within lease_ttl. Both maps stay bounded under a key-spraying flood.
    if (last_seen_.size() >= kMaxCachedRefusals) {
        std::erase_if(last_seen_, [&](const auto& e) { return now_ns - e.second > settings_.lease_ttl_ns; });
        if (last_seen_.size() >= kMaxCachedRefusals)
            last_seen_.clear();
    }
    if (leases_.size() >= kMaxCachedRefusals)
        std::erase_if(leases_, [&](const auto& e) { return e.second.until_ns <= now_ns; });
    auto [seen, fresh] = last_seen_.try_emplace(signature, now_ns);
    hot = !fresh && now_ns - seen->second <= settings_.lease_ttl_ns && leases_.size() < kMaxCachedRefusals;
    seen->second = now_ns;
    return std::nullopt;
}

boost::asio::awaitable<ratelimit::Decision> RedisStore::decide(std::span<const Keyed> keyed, std::uint64_t cost,
                                                               std::int64_t now_ns, std::int64_t unix_ns) {
    // Leased units first: they are paid for, whatever Redis or the cache say now.
    const std::uint64_t n = settings_.lease_size;
    const bool leasing = n > 1 && cost > 0 && cost <= std::numeric_limits<std::uint64_t>::max() / n;
    std::string signature;
    bool hot = false;
    if (leasing) {
        signature = std::to_string(cost);
        for (const auto& k : keyed)
            signature.append("\x1f").append(k.key);
        if (auto leased = from_lease(signature, now_ns, hot)) {
            ++by_lease_;
            co_return *leased;
        }
    }
    if (auto refused = cached_refusal(keyed, cost, now_ns)) {
        ++by_cache_;
        co_return *refused;
    }
    if (!up()) {
        auto d = fallback(keyed, cost, now_ns);
        co_return d;
    }
    if (hot) {
        std::optional<ratelimit::Decision> granted;
        if (cluster_)
            granted = co_await across_slots(keyed, cost * n, unix_ns);
        else
            granted = co_await run_script(keyed, cost * n, unix_ns, false, 0);
        if (granted && granted->allowed) {
            ++by_redis_;
            ++leases_granted_;
            std::uint64_t held = n - 1;
            ratelimit::Decision basis = *granted;
            {
                std::lock_guard lock(lease_mu_);
                auto& l = leases_[signature];
                if (l.until_ns > now_ns && l.cost == cost) {
                    held += l.left;  // a lease taken meanwhile by another request keeps its units
                    // Answers can arrive in another order than Redis charged them: the one that
                    // left the least is the later charge, the one the units held add to.
                    if (l.granted.tightest.remaining < basis.tightest.remaining)
                        basis = l.granted;
                }
                l = Lease{.until_ns = now_ns + settings_.lease_ttl_ns, .left = held, .cost = cost, .granted = basis};
            }
            basis.tightest.remaining += held * cost;
            co_return basis;
        }
        // Not N units left (or no answer): decide this one alone, and do not ask for a lease
        // again before lease_ttl (it would cost Redis two calls per request near the limit).
        std::lock_guard lock(lease_mu_);
        auto& l = leases_[signature];
        if (l.until_ns <= now_ns || l.left == 0)
            l = Lease{.until_ns = now_ns + settings_.lease_ttl_ns, .left = 0, .cost = 0, .granted = {}};
    }
    std::optional<ratelimit::Decision> d;
    if (cluster_)
        d = co_await across_slots(keyed, cost, unix_ns);
    else
        d = co_await run_script(keyed, cost, unix_ns, false, 0);
    if (d) {
        ++by_redis_;
        if (!d->allowed)
            remember_refusal(keyed, *d, cost, now_ns);
        co_return *d;
    }
    auto local = fallback(keyed, cost, now_ns);
    co_return local;
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
            .lease = by_lease_.load(),
            .local = by_local_.load(),
            .open = by_open_.load(),
            .closed = by_closed_.load(),
            .leases = leases_granted_.load(),
            .noscript = noscript_.load(),
            .batches = batches_.load(),
            .batched = batched_decisions_.load(),
            .script_errors = script_errors_.load(),
            .client = cluster_ ? cluster_->stats().calls : single_->stats(),
            .moved = cluster_ ? cluster_->stats().moved : 0,
            .ask = cluster_ ? cluster_->stats().ask : 0};
}

}  // namespace rlgate::l7
