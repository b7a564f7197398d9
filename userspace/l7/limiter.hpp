// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's decisions, shared by both front ends: the policy in force
// (swapped whole on reload, never half-applied), the limiter state (kept
// across reloads), the answer to send (status, headers, body), counters per
// tier x endpoint x verdict, and which client IPs earned an escalation.
// Thread-safe; no I/O: the clock is injected.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/l7/evaluate.hpp"
#include "core/l7/headers.hpp"
#include "core/ratelimit/memory_store.hpp"

namespace rlgate::l7 {

struct Clock {
    std::function<std::int64_t()> monotonic_ns;  // limiter state
    std::function<std::int64_t()> unix_ns;       // calendar windows, X-RateLimit-Reset
};
Clock system_clock();

enum class Verdict { allowed, limited, bypassed, rejected };
const char* to_string(Verdict v);

struct Answer {
    Verdict verdict = Verdict::allowed;
    unsigned status = 200;
    // What the rate-limit headers describe (on 2xx and 429 alike); none when
    // nothing limits the caller. Rendered on demand: see append_headers().
    bool has_limits = false;
    ratelimit::Decision decision;
    const ratelimit::LimitSpec* spec = nullptr;  // valid with `policy`
    std::int64_t unix_s = 0;
    std::string body;          // JSON for 429 / 4xx; empty when allowed
    std::string error;         // rejected: the machine-readable reason (invalid_token, bad_cost ...)
    std::int64_t retry_after_ns = 0;
    std::string tier, endpoint, caller_kind;
    net::IpAddress client;
    const Endpoint* endpoint_config = nullptr;  // throttling; valid with `policy`
    std::shared_ptr<const L7Config> policy;     // the config this answer came from
    bool escalate = false;     // the client crossed the abuse threshold: ask rlgated for a ban

    void append_headers(std::string& out) const;
    [[nodiscard]] HeaderList header_list() const;
};

class Limiter {
public:
    Limiter(std::shared_ptr<const L7Config> config, Clock clock);

    // The decision alone: counts nothing, so a throttled request may be decided again.
    Answer decide(const RequestView& request);

    // The same in steps, for a store elsewhere (Redis): plan() evaluates the
    // request; unless the answer is already known (`needs_store` false), the
    // caller decides `evaluation.keyed()` (decide_local(), or the shared store)
    // and finish() turns that decision into the answer.
    struct Plan {
        Answer answer;
        Evaluation evaluation;
        std::int64_t now_ns = 0;   // the limiter's clock: monotonic, shifted to Unix time
        std::int64_t unix_ns = 0;  // wall clock: calendar windows
        bool needs_store = false;
    };
    Plan plan(const RequestView& request);
    ratelimit::Decision decide_local(const Plan& plan);
    Answer finish(Plan plan, const ratelimit::Decision& decision);
    // The final answer sent: counted per tier x endpoint x verdict, and a
    // refusal counts toward the client's escalation (sets `escalate`).
    void record(Answer& answer);
    // Replaces the policy; state of keys whose limits keep their shape carries over.
    void reload(std::shared_ptr<const L7Config> config);
    [[nodiscard]] std::shared_ptr<const L7Config> config() const { return config_.load(); }
    // rlgated's allowlist and tier prefixes (config.from_rlgated), replaced whole.
    void set_shared_policy(std::shared_ptr<const SharedPolicy> p) { shared_.store(std::move(p)); }
    [[nodiscard]] std::shared_ptr<const SharedPolicy> shared_policy() const { return shared_.load(); }

    struct Count {
        std::string tier, endpoint, verdict;
        std::uint64_t count;
    };
    [[nodiscard]] std::vector<Count> counts() const;
    [[nodiscard]] std::size_t keys() const { return store_.size(); }
    [[nodiscard]] std::uint64_t evictions() const { return store_.evictions(); }
    [[nodiscard]] std::uint64_t escalations() const { return escalations_.load(); }

private:
    void count(const std::string& tier, const std::string& endpoint, Verdict v);
    bool over_abuse_threshold(const L7Config& c, const net::IpAddress& client, std::int64_t now_ns);

    std::atomic<std::shared_ptr<const L7Config>> config_;
    std::atomic<std::shared_ptr<const SharedPolicy>> shared_;
    Clock clock_;
    std::int64_t unix_offset_ns_;
    ratelimit::MemoryStore store_;
    ratelimit::MemoryStore abuse_;  // 429s per client IP, and a cool-down per escalation
    mutable std::mutex counts_mu_;
    std::map<std::tuple<std::string, std::string, Verdict>, std::uint64_t> counts_;
    std::atomic<std::uint64_t> escalations_{0};
};

}  // namespace rlgate::l7
