// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's limits shared by a fleet through Redis: each decision is made
// atomically by a Lua script (core/ratelimit/redis_script) run by EVALSHA on
// the server's clock, reloaded on NOSCRIPT. On a standalone Redis, decisions
// that arrive while a call is in flight wait and go together in the next call
// (up to `batch`), each still decided as if alone: a call goes out when Redis
// has nothing in flight or a whole batch waits. With Redis Cluster, a decision whose
// keys live in several slots is judged in each slot (a dry run) and charged
// in each only if all admit it. Keys known to be over their limit are
// refused from a local cache until their retry time, so a flood from one key
// costs Redis one call. When Redis cannot answer within the timeout, the
// configured fallback decides: local limits (divided by the fleet size),
// admit, or refuse. With lease_size N > 1, a decision repeated within
// lease_ttl (a hot caller) is charged N times in one call and the other N-1
// are handed out here: Redis sees 1/N of the calls; nothing is admitted past
// a limit (the units are charged before they are used), but units a host
// leased and did not use before lease_ttl are lost: a hot caller may get up to
// (N-1) x cost fewer per host and lease_ttl than its limit.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "core/l7/l7_config.hpp"
#include "core/ratelimit/memory_store.hpp"
#include "core/ratelimit/redis_script.hpp"
#include "redis/client.hpp"
#include "redis/cluster.hpp"

namespace rlgate::l7 {

class RedisStore {
public:
    enum class Source { redis, cache, local, open, closed };

    RedisStore(boost::asio::io_context& io, const RedisStoreSettings& settings, std::size_t local_max_keys);
    ~RedisStore();
    RedisStore(const RedisStore&) = delete;
    RedisStore& operator=(const RedisStore&) = delete;
    void start();
    void stop();

    // `now_ns`: the caller's limiter clock, for the cache and the local
    // fallback; `unix_ns`: its wall clock, for calendar windows.
    boost::asio::awaitable<ratelimit::Decision> decide(std::span<const ratelimit::MemoryStore::KeyedLimits> keyed,
                                                       std::uint64_t cost, std::int64_t now_ns, std::int64_t unix_ns);

    [[nodiscard]] bool up() const { return cluster_ ? cluster_->up() : single_->up(); }
    struct Stats {
        std::uint64_t redis = 0, cache = 0, lease = 0, local = 0, open = 0, closed = 0;  // decisions by source
        std::uint64_t leases = 0;  // leases granted by Redis
        std::uint64_t noscript = 0;
        std::uint64_t batches = 0, batched = 0;  // batched EVALSHA calls and the decisions they carried
        std::uint64_t script_errors = 0;         // calls or decisions the script refused (or replies not its own)
        redis::RedisClient::Stats client;  // summed over a cluster's masters
        std::uint64_t moved = 0, ask = 0;  // Cluster redirections followed
    };
    [[nodiscard]] Stats stats() const;

private:
    using Keyed = ratelimit::MemoryStore::KeyedLimits;
    // EVALSHA on the node of `slot` (any node without Cluster), SCRIPT LOAD on NOSCRIPT;
    // nullopt when Redis gave no decision.
    boost::asio::awaitable<std::optional<ratelimit::Decision>> run_script(std::span<const Keyed> keyed,
                                                                           std::uint64_t cost, std::int64_t unix_ns,
                                                                           bool dry_run, std::uint16_t slot);
    // The decisions in one EVALSHA on the node of `slot`; one answer (or none) per decision.
    boost::asio::awaitable<std::vector<std::optional<ratelimit::Decision>>> run_calls(
        std::uint16_t slot, std::span<const ratelimit::redis::Call> decisions);
    boost::asio::awaitable<redis::RedisResult> call(std::uint16_t slot, std::vector<std::string> args);

    // Batching (standalone Redis): a decision waits in queue_ while a batch is
    // in flight and fewer than settings_.batch wait (or every connection is
    // busy); flush() sends what waits, up to settings_.batch at a time. All of
    // it on batch_strand_.
    struct Waiting {
        Waiting(boost::asio::strand<boost::asio::io_context::executor_type>& strand, ratelimit::redis::Call p)
            : part(std::move(p)), timer(strand) {}
        ratelimit::redis::Call part;
        boost::asio::steady_timer timer;  // cancelled when decided
        std::optional<ratelimit::Decision> decision;
        bool done = false, abandoned = false;
    };
    boost::asio::awaitable<std::optional<ratelimit::Decision>> enqueue(std::shared_ptr<Waiting> waiting);
    boost::asio::awaitable<void> flush();
    void script_error(const std::string& why);
    [[nodiscard]] unsigned max_batches_in_flight() const { return std::max(1U, settings_.connections); }
    // A call goes out when Redis would otherwise idle (nothing in flight) or a
    // whole batch waits; while a call is in flight, a part batch waits for it.
    [[nodiscard]] bool may_send() const {
        return !queue_.empty() && batches_in_flight_ < max_batches_in_flight() &&
               (batches_in_flight_ == 0 || queue_.size() >= settings_.batch);
    }
    // Cluster: the decision judged in each slot of its keys, then charged in each.
    boost::asio::awaitable<std::optional<ratelimit::Decision>> across_slots(std::span<const Keyed> keyed,
                                                                             std::uint64_t cost, std::int64_t unix_ns);
    ratelimit::Decision fallback(std::span<const ratelimit::MemoryStore::KeyedLimits> keyed, std::uint64_t cost,
                                 std::int64_t now_ns);
    std::optional<ratelimit::Decision> cached_refusal(std::span<const ratelimit::MemoryStore::KeyedLimits> keyed,
                                                      std::uint64_t cost, std::int64_t now_ns);
    void remember_refusal(std::span<const ratelimit::MemoryStore::KeyedLimits> keyed, const ratelimit::Decision& d,
                          std::uint64_t cost, std::int64_t now_ns);

    // A lease of the decision `signature`: its units left, until when, and the decision it copies.
    std::optional<ratelimit::Decision> from_lease(const std::string& signature, std::int64_t now_ns, bool& hot);
    struct Lease {
        std::int64_t until_ns = 0;
        std::uint64_t left = 0;  // decisions
        std::uint64_t cost = 0;
        ratelimit::Decision granted;
    };
    std::mutex lease_mu_;
    std::unordered_map<std::string, Lease> leases_;
    std::unordered_map<std::string, std::int64_t> last_seen_;  // signature -> last decision, limiter clock

    RedisStoreSettings settings_;
    std::unique_ptr<redis::RedisClient> single_;     // standalone Redis
    std::shared_ptr<redis::RedisCluster> cluster_;  // or Redis Cluster
    std::string sha_;
    ratelimit::MemoryStore local_;

    struct Refusal {
        std::int64_t until_ns = 0;
        std::uint64_t cost = 0;
        ratelimit::Decision decision;
    };
    std::mutex cache_mu_;
    std::unordered_map<std::string, Refusal> cache_;  // key -> refused until (limiter clock)

    boost::asio::strand<boost::asio::io_context::executor_type> batch_strand_;
    std::deque<std::shared_ptr<Waiting>> queue_;
    unsigned batches_in_flight_ = 0;
    std::atomic<std::uint64_t> batches_{0}, batched_decisions_{0}, script_errors_{0};
    std::mutex log_mu_;
    std::optional<std::chrono::steady_clock::time_point> last_script_log_;
    std::uint64_t unlogged_script_errors_ = 0;
    std::atomic<std::uint64_t> by_lease_{0}, leases_granted_{0};
    std::atomic<std::uint64_t> by_redis_{0}, by_cache_{0}, by_local_{0}, by_open_{0}, by_closed_{0}, noscript_{0};
};

}  // namespace rlgate::l7
