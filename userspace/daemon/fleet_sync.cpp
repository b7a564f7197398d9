// SPDX-License-Identifier: BSD-2-Clause
#include "daemon/fleet_sync.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "daemon/time_format.hpp"

namespace rlgate::daemon {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

constexpr std::size_t kOutboxMax = 10'000;
constexpr auto kHeartbeat = std::chrono::seconds(2);
constexpr std::int64_t kPeerForgetMs = 86'400'000;  // peers silent for a day leave the list

// One ban: kept for late joiners and told to the others, atomically.
constexpr const char* kPublishBan =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return redis.call('PUBLISH', ARGV[3], ARGV[2])";
constexpr std::int64_t kTombstoneMs = 86'400'000;  // an unban is kept a day for hosts away meanwhile
constexpr auto kFullResync = std::chrono::minutes(5);
// An expired entry goes, unless another host has just replaced it.
constexpr const char* kForgetIfSame =
    "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0";

redis::RedisOptions options_of(const config::RedisSettings& s, std::string password, unsigned connections) {
    return redis::RedisOptions{.host = s.host,
                               .port = s.port,
                               .username = s.username,
                               .password = std::move(password),
                               .tls = s.tls,
                               .tls_ca_file = s.tls_ca_file,
                               .tls_server_name = s.tls_server_name,
                               .connect_timeout = std::chrono::milliseconds(s.connect_timeout_ns / 1'000'000),
                               .timeout = std::chrono::milliseconds(std::max<std::int64_t>(s.timeout_ns / 1'000'000, 1000)),
                               .connections = connections};
}

// True at most once per 10 s for `last`: repeated warnings of a storm stay readable.
bool log_due(std::chrono::steady_clock::time_point& last) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(10))
        return false;
    last = now;
    return true;
}

std::optional<std::string> reply_error(const redis::RedisResult& r) {
    if (const auto* failed = std::get_if<redis::RedisCallFailed>(&r))
        return failed->reason;
    const auto& reply = std::get<redis::RedisReply>(r);
    if (reply.is_error())
        return reply.text;
    return std::nullopt;
}

}  // namespace

FleetSync::FleetSync(asio::io_context& io, const config::FleetSettings& settings, std::string host,
                     std::string password, std::string key, Apply apply)
    : io_(io),
      settings_(settings),
      host_(std::move(host)),
      key_(std::move(key)),
      apply_(std::move(apply)),
      bans_key_(settings.redis.prefix + "fleet:bans"),
      peers_key_(settings.redis.prefix + "fleet:peers"),
      channel_(settings.redis.prefix + "fleet:bans"),
      commands_(io, options_of(settings.redis, password, 1)),
      subscriber_(io, options_of(settings.redis, password, 1)),
      budget_(settings.publish_per_sec, settings.publish_burst),
      apply_budget_(settings.apply_per_sec, settings.apply_burst),
      outbox_wake_(io),
      heartbeat_wake_(io) {
    subscriber_.subscribe({.channels = {channel_},
                           .on_subscribed =
                               [this, alive = alive_] {
                                   if (*alive)
                                       asio::co_spawn(io_, resync(this, alive, ++resync_round_), asio::detached);
                               },
                           .on_message =
                               [this, alive = alive_](const std::string&, const std::string& payload) {
                                   if (*alive)
                                       receive(payload, false);
                               }});
}

FleetSync::~FleetSync() { stop(); }

void FleetSync::start() {
    commands_.start();
    subscriber_.start();
    asio::co_spawn(io_, flush_loop(this, alive_), asio::detached);
    asio::co_spawn(io_, heartbeat_loop(this, alive_), asio::detached);
    spdlog::info("fleet: host {} shares bans through redis {}:{}", host_, settings_.redis.host, settings_.redis.port);
}

void FleetSync::stop() {
    if (stopped_)
        return;
    stopped_ = true;
    *alive_ = false;
    outbox_wake_.cancel();
    heartbeat_wake_.cancel();
    commands_.stop();
    subscriber_.stop();
}

std::int64_t FleetSync::now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void FleetSync::publish(bans::FleetMessage m) {
    if (stopped_)
        return;
    m.host = host_;
    m.at_ms = now_ms();
    // Unbans always go: an operator's correction must reach every host.
    const auto mono = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    if (m.op == bans::FleetMessage::Op::ban && !budget_.try_take(mono)) {
        ++counts_.publish_dropped;
        if (log_due(last_drop_log_)) {
            spdlog::warn("fleet: more than {} bans/s (burst {}): {} applied here only so far", settings_.publish_per_sec,
                         settings_.publish_burst, counts_.publish_dropped);
        }
        return;
    }
    if (outbox_.size() >= kOutboxMax) {
        ++counts_.publish_dropped;
        outbox_.pop_front();  // the oldest goes: the newest bans matter most
    }
    outbox_.push_back(std::move(m));
    outbox_wake_.cancel();
}

asio::awaitable<void> FleetSync::flush_loop(FleetSync* self, std::shared_ptr<bool> alive) {
    while (*alive) {
        if (self->outbox_.empty() || !self->commands_.up()) {
            self->outbox_wake_.expires_after(std::chrono::milliseconds(self->outbox_.empty() ? 60'000 : 200));
            [[maybe_unused]] auto [ec] = co_await self->outbox_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        const auto m = self->outbox_.front();
        const std::string payload = bans::encode(m, self->key_);
        const bool ban = m.op == bans::FleetMessage::Op::ban;
        // An unban replaces the ban in the hash (a tombstone), so hosts away meanwhile lift it too.
        std::vector<std::string> cmd = {"EVAL", kPublishBan, "1", self->bans_key_, m.prefix.to_string(), payload,
                                        self->channel_};
        const redis::RedisResult r = co_await self->commands_.call(cmd);
        if (!*alive)
            co_return;
        if (const auto error = reply_error(r)) {
            ++self->counts_.publish_failed;
            const bool refused = std::holds_alternative<redis::RedisReply>(r);  // an answer: retrying will not help
            if (log_due(self->last_drop_log_)) {
                spdlog::warn("fleet: publishing the {} of {} failed ({}){}", ban ? "ban" : "unban", m.prefix.to_string(),
                             *error, refused ? ": dropped (check the Redis user's rights)" : "; retrying");
            }
            if (refused) {
                if (!self->outbox_.empty() && self->outbox_.front() == m)
                    self->outbox_.pop_front();
                continue;
            }
            self->outbox_wake_.expires_after(std::chrono::milliseconds(500));
            [[maybe_unused]] auto [ec] = co_await self->outbox_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        if (!self->outbox_.empty() && self->outbox_.front() == m)
            self->outbox_.pop_front();
        ++self->counts_.published;
        self->last_publish_ = std::chrono::system_clock::now();
    }
}

asio::awaitable<void> FleetSync::resync(FleetSync* self, std::shared_ptr<bool> alive, std::uint64_t round) {
    asio::steady_timer pause(self->io_);
    while (*alive && round == self->resync_round_) {
        const bool done = co_await self->load_hash(alive);
        if (done || !*alive)
            co_return;
        pause.expires_after(std::chrono::seconds(1));
        [[maybe_unused]] auto [ec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<bool> FleetSync::load_hash(std::shared_ptr<bool> alive) {
    std::vector<std::string> cmd = {"HGETALL", bans_key_};
    const redis::RedisResult r = co_await commands_.call(cmd);
    if (!*alive)
        co_return false;
    if (const auto error = reply_error(r)) {
        spdlog::warn("fleet: loading the fleet's bans failed ({}); trying again", *error);
        co_return false;
    }
    const auto& reply = std::get<redis::RedisReply>(r);
    std::size_t loaded = 0;
    std::vector<std::pair<std::string, std::string>> stale;
    const auto now = now_ms();
    for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
        const auto& field = reply.elements[i].text;
        const auto& value = reply.elements[i + 1].text;
        const auto m = bans::decode_fleet_message(value, nullptr, key_);
        if (m && ((m->op == bans::FleetMessage::Op::ban && m->expires_ms && m->expires_ms <= now) ||
                  (m->op == bans::FleetMessage::Op::unban && now - m->at_ms > kTombstoneMs))) {
            stale.emplace_back(field, value);
            continue;
        }
        receive(value, true);
        loaded += m && m->op == bans::FleetMessage::Op::ban;
    }
    bans_in_redis_ = loaded;
    for (const auto& [field, value] : stale) {
        std::vector<std::string> forget = {"EVAL", kForgetIfSame, "1", bans_key_, field, value};
        [[maybe_unused]] const redis::RedisResult ignored = co_await commands_.call(forget);
        if (!*alive)
            co_return false;
    }
    ++counts_.resyncs;
    last_sync_ = std::chrono::system_clock::now();
    spdlog::info("fleet: {} ban{} of the fleet loaded from redis ({} expired entries removed)", loaded,
                 loaded == 1 ? "" : "s", stale.size());
    co_return true;
}

void FleetSync::receive(const std::string& payload, bool from_resync) {
    ++counts_.received;
    std::string why;
    const auto m = bans::decode_fleet_message(payload, &why, key_);
    if (!m) {
        ++counts_.invalid;
        if (log_due(last_budget_log_)) {
            spdlog::warn("fleet: a message refused ({}); {} so far", why, counts_.invalid);
        }
        return;
    }
    if (!from_resync)
        last_message_ = std::chrono::system_clock::now();
    if (m->host == host_) {  // our own, back from Redis
        ++counts_.ignored;
        return;
    }
    const auto mono = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    if (!apply_budget_.try_take(mono)) {
        ++counts_.over_budget;
        if (log_due(last_budget_log_)) {
            spdlog::warn("fleet: peers send more than {} bans/s (burst {}): {} not applied so far", settings_.apply_per_sec,
                         settings_.apply_burst, counts_.over_budget);
        }
        return;
    }
    ++counts_.applied;
    apply_(*m);
}

asio::awaitable<void> FleetSync::heartbeat_loop(FleetSync* self, std::shared_ptr<bool> alive) {
    const auto started = self->now_ms();
    auto last_full = std::chrono::steady_clock::now();
    while (*alive) {
        if (self->commands_.up()) {
            try {
                co_await self->beat(alive, started);
            } catch (const std::exception& e) {
                spdlog::warn("fleet: heartbeat: {}", e.what());
            }
            if (!*alive)
                co_return;
            if (std::chrono::steady_clock::now() - last_full > kFullResync) {
                last_full = std::chrono::steady_clock::now();
                co_await self->load_hash(alive);  // whatever a silent subscription missed
                if (!*alive)
                    co_return;
            }
        }
        self->heartbeat_wake_.expires_after(kHeartbeat);
        [[maybe_unused]] auto [ec] = co_await self->heartbeat_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> FleetSync::beat(std::shared_ptr<bool> alive, std::int64_t started_ms) {
    const json me{{"last_seen_ms", now_ms()},
                  {"started_ms", started_ms},
                  {"version", RLGATE_VERSION},
                  {"published", counts_.published},
                  {"applied", counts_.applied}};
    std::vector<std::string> set = {"HSET", peers_key_, host_, me.dump()};
    [[maybe_unused]] const redis::RedisResult set_result = co_await commands_.call(set);
    if (!*alive)
        co_return;
    std::vector<std::string> get = {"HGETALL", peers_key_};
    const redis::RedisResult r = co_await commands_.call(get);
    if (!*alive || reply_error(r))
        co_return;
    const auto& reply = std::get<redis::RedisReply>(r);
    json peers = json::array();
    const auto now = now_ms();
    const auto integer = [](const json& p, const char* k) {
        return p.contains(k) && p[k].is_number_integer() ? p[k].get<std::int64_t>() : std::int64_t{0};
    };
    std::vector<std::string> forgotten;
    for (std::size_t i = 0; i + 1 < reply.elements.size() && peers.size() < 1000; i += 2) {
        const auto& name = reply.elements[i].text;
        const json p = json::parse(reply.elements[i + 1].text, nullptr, false);
        if (!p.is_object() || !bans::valid_fleet_host(name))
            continue;
        const auto seen = integer(p, "last_seen_ms");
        if (now - seen > kPeerForgetMs) {
            forgotten.push_back(name);
            continue;
        }
        // Two hosts under one name ignore each other's bans: say so.
        if (name == host_ && integer(p, "started_ms") != started_ms && now - seen < 2 * 2000)
            spdlog::error("fleet: another host calls itself {}: set fleet.host on each host", host_);
        peers.push_back({{"host", name},
                         {"self", name == host_},
                         {"last_seen", iso8601_ms(seen)},
                         {"age_s", static_cast<double>(std::max<std::int64_t>(0, now - seen)) / 1e3},
                         {"version", p.contains("version") && p["version"].is_string() ? p["version"].get<std::string>() : ""},
                         {"published", integer(p, "published")},
                         {"applied", integer(p, "applied")}});
    }
    peers_ = std::move(peers);
    for (const auto& name : forgotten) {
        std::vector<std::string> del = {"HDEL", peers_key_, name};
        [[maybe_unused]] const redis::RedisResult ignored = co_await commands_.call(del);
        if (!*alive)
            co_return;
    }
}

std::size_t FleetSync::peers_seen() const {
    std::size_t n = 0;
    for (const auto& p : peers_)
        n += !p.value("self", false);
    return n;
}

json FleetSync::status() const {
    const auto when = [](const std::optional<std::chrono::system_clock::time_point>& t) {
        return t ? json(iso8601(*t)) : json(nullptr);
    };
    const auto c = commands_.stats();
    return {{"enabled", true},
            {"host", host_},
            {"redis",
             {{"address", settings_.redis.host + ":" + std::to_string(settings_.redis.port)},
              {"up", commands_.up()},
              {"subscribed", subscriber_.up()},
              {"calls", c.calls},
              {"failures", c.failures},
              {"reconnects", c.reconnects + subscriber_.stats().reconnects}}},
            {"last_sync", when(last_sync_)},
            {"last_message", when(last_message_)},
            {"last_publish", when(last_publish_)},
            {"bans_in_redis_at_sync", bans_in_redis_},
            {"outbox", outbox_.size()},
            {"published", counts_.published},
            {"publish_dropped", counts_.publish_dropped},
            {"publish_failed", counts_.publish_failed},
            {"received", counts_.received},
            {"applied", counts_.applied},
            {"invalid", counts_.invalid},
            {"over_budget", counts_.over_budget},
            {"signed", !key_.empty()},
            {"peers", peers_}};
}

}  // namespace rlgate::daemon
