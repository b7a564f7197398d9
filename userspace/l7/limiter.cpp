// SPDX-License-Identifier: BSD-2-Clause
#include "l7/limiter.hpp"

#include <array>
#include <chrono>

#include <nlohmann/json.hpp>

namespace rlgate::l7 {
namespace {

constexpr std::size_t kAbuseKeys = 100'000;
constexpr std::size_t kMaxCountSeries = 4096;  // tier x endpoint x verdict; more folds into "other"

std::int64_t to_ns(auto d) { return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(); }

}  // namespace

Clock system_clock() {
    return Clock{.monotonic_ns = [] { return to_ns(std::chrono::steady_clock::now().time_since_epoch()); },
                 .unix_ns = [] { return to_ns(std::chrono::system_clock::now().time_since_epoch()); }};
}

const char* to_string(Verdict v) {
    switch (v) {
    case Verdict::allowed: return "allowed";
    case Verdict::limited: return "limited";
    case Verdict::bypassed: return "bypassed";
    case Verdict::rejected: return "rejected";
    }
    return "unknown";
}

Limiter::Limiter(std::shared_ptr<const L7Config> config, Clock clock)
    : config_(config),
      clock_(std::move(clock)),
      unix_offset_ns_(clock_.unix_ns() - clock_.monotonic_ns()),
      store_(config->store_max_keys),
      abuse_(kAbuseKeys, 16) {}

void Limiter::reload(std::shared_ptr<const L7Config> config) { config_.store(std::move(config)); }

Answer Limiter::decide(const RequestView& request) {
    Plan p = plan(request);
    if (!p.needs_store)
        return std::move(p.answer);
    const auto d = decide_local(p);
    return finish(std::move(p), d);
}

ratelimit::Decision Limiter::decide_local(const Plan& p) {
    const auto keyed = p.evaluation.keyed();
    return store_.decide_keys(std::span(keyed.data(), p.evaluation.key_count), p.now_ns, p.evaluation.cost);
}

Answer Limiter::finish(Plan p, const ratelimit::Decision& d) {
    Answer& a = p.answer;
    const L7Config& c = *a.policy;
    const auto& e = p.evaluation;
    a.has_limits = true;
    a.decision = d;
    a.spec = &e.spec_of(d);
    a.unix_s = p.unix_ns / 1'000'000'000LL;
    if (d.allowed)
        return std::move(a);
    a.verdict = Verdict::limited;
    a.status = c.deny_status;
    a.retry_after_ns = std::max<std::int64_t>(d.tightest.retry_after_ns, 1);
    a.body = too_many_requests_body(d, a.unix_s, e.tier && !e.tier->message.empty() ? e.tier->message : c.message,
                                    e.tier ? e.tier->upgrade_url : std::string());
    return std::move(a);
}

Limiter::Plan Limiter::plan(const RequestView& request) {
    Plan p;
    Answer& a = p.answer;
    a.policy = config_.load();
    const L7Config& c = *a.policy;
    const std::int64_t unix_ns = clock_.unix_ns();
    const std::int64_t unix_s = unix_ns / 1'000'000'000LL;
    const auto shared = c.from_rlgated.any() ? shared_.load() : nullptr;
    auto e = evaluate(c, request, unix_s, shared.get());
    a.client = e.client;
    a.caller_kind = e.caller_kind;
    a.tier = e.tier ? e.tier->name : "";
    a.endpoint = e.endpoint ? e.endpoint->name : "";
    a.endpoint_config = e.endpoint;
    switch (e.kind) {
    case Evaluation::Kind::reject: {
        a.verdict = Verdict::rejected;
        a.status = e.status;
        a.body = nlohmann::json{{"error", e.error}, {"message", e.message}}.dump();
        a.error = e.error;
        // A refused credential still costs its client: charged to `per_ip`,
        // so a stream of bad tokens is throttled like any other (and cheap).
        if (c.per_ip_limits.empty())
            return p;
        const std::string key = "client|" + client_key(a.client);
        const std::array keyed = {ratelimit::MemoryStore::KeyedLimits{key, c.per_ip_limits}};
        const auto d = store_.decide_keys(keyed, clock_.monotonic_ns() + unix_offset_ns_, 1);
        if (d.allowed)
            return p;
        a.verdict = Verdict::limited;
        a.status = c.deny_status;
        a.error.clear();
        a.has_limits = true;
        a.decision = d;
        a.spec = &c.per_ip_limits[d.tightest_index];
        a.unix_s = unix_s;
        a.retry_after_ns = std::max<std::int64_t>(d.tightest.retry_after_ns, 1);
        a.body = too_many_requests_body(d, unix_s, c.message);
        return p;
    }
    case Evaluation::Kind::bypass:
        a.verdict = Verdict::bypassed;
        return p;
    case Evaluation::Kind::limit:
        break;
    }
    if (e.key_count == 0)  // nothing limits this caller here
        return p;
    // One clock for every limit: monotonic (no jumps), shifted to Unix time
    // at start so calendar windows fall on UTC boundaries.
    p.now_ns = clock_.monotonic_ns() + unix_offset_ns_;
    p.unix_ns = unix_ns;
    p.evaluation = std::move(e);
    p.needs_store = true;
    return p;
}

void Answer::append_headers(std::string& out) const {
    if (has_limits)
        append_rate_limit_headers(out, *spec, decision, unix_s, policy->headers);
}

HeaderList Answer::header_list() const {
    return has_limits ? rate_limit_headers(*spec, decision, unix_s, policy->headers) : HeaderList{};
}

void Limiter::record(Answer& a) {
    count(a.tier, a.endpoint, a.verdict);
    // Refused credentials count toward escalation too: a client guessing tokens is abusive.
    if ((a.verdict != Verdict::limited && a.verdict != Verdict::rejected) || !a.policy || !a.policy->escalation.enabled)
        return;
    a.escalate = over_abuse_threshold(*a.policy, a.client, clock_.monotonic_ns());
    if (a.escalate)
        ++escalations_;
}

bool Limiter::over_abuse_threshold(const L7Config& c, const net::IpAddress& client, std::int64_t now_ns) {
    const ratelimit::LimitSpec refusals{.name = "abuse",
                                        .algorithm = ratelimit::Algorithm::sliding_window,
                                        .limit = c.escalation.after,
                                        .period_ns = static_cast<std::uint64_t>(c.escalation.window_ns)};
    const auto key = client_key(client);  // an IPv6 client is its /64, as in its limits
    if (abuse_.decide("refusals|" + key, std::span(&refusals, 1), now_ns, 1).allowed)
        return false;
    // Over the threshold: one escalation per ban length, not one per refusal.
    const ratelimit::LimitSpec once{.name = "cool-down",
                                    .algorithm = ratelimit::Algorithm::fixed_window,
                                    .limit = 1,
                                    .period_ns = static_cast<std::uint64_t>(c.escalation.ban_ns)};
    return abuse_.decide("escalated|" + key, std::span(&once, 1), now_ns, 1).allowed;
}

void Limiter::count(const std::string& tier, const std::string& endpoint, Verdict v) {
    std::lock_guard lock(counts_mu_);
    auto key = std::make_tuple(tier, endpoint, v);
    if (auto it = counts_.find(key); it != counts_.end()) {
        ++it->second;
        return;
    }
    if (counts_.size() >= kMaxCountSeries)
        key = std::make_tuple(std::string("other"), std::string("other"), v);
    ++counts_[key];
}

std::vector<Limiter::Count> Limiter::counts() const {
    std::lock_guard lock(counts_mu_);
    std::vector<Count> out;
    out.reserve(counts_.size());
    for (const auto& [k, n] : counts_)
        out.push_back({std::get<0>(k), std::get<1>(k), to_string(std::get<2>(k)), n});
    return out;
}

}  // namespace rlgate::l7
