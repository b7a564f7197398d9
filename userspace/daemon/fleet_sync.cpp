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
constexpr const char* kPublishUnban =
    "redis.call('HDEL', KEYS[1], ARGV[1]) return redis.call('PUBLISH', ARGV[3], ARGV[2])";
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
                     std::string password, Apply apply)
    : io_(io),
      settings_(settings),
      host_(std::move(host)),
      apply_(std::move(apply)),
      bans_key_(settings.redis.prefix + "fleet:bans"),
      peers_key_(settings.redis.prefix + "fleet:peers"),
      channel_(settings.redis.prefix + "fleet:bans"),
      commands_(io, options_of(settings.redis, password, 1)),
      subscriber_(io, options_of(settings.redis, password, 1)),
      budget_(settings.publish_per_sec, settings.publish_burst),
      outbox_wake_(io),
      heartbeat_wake_(io) {
    subscriber_.subscribe({.channels = {channel_},
                           .on_subscribed =
                               [this, alive = alive_] {
                                   if (*alive)
                                       asio::co_spawn(io_, resync(alive), asio::detached);
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
        if (std::chrono::steady_clock::now() - last_drop_log_ > std::chrono::seconds(10)) {
            last_drop_log_ = std::chrono::steady_clock::now();
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
        const std::string payload = bans::encode(m);
        const bool ban = m.op == bans::FleetMessage::Op::ban;
        std::vector<std::string> cmd = {"EVAL", ban ? kPublishBan : kPublishUnban, "1", self->bans_key_,
                                        m.prefix.to_string(), payload, self->channel_};
        const redis::RedisResult r = co_await self->commands_.call(cmd);
        if (!*alive)
            co_return;
        if (const auto error = reply_error(r)) {
            ++self->counts_.publish_failed;
            spdlog::warn("fleet: publishing the {} of {} failed ({}); retrying", ban ? "ban" : "unban",
                         m.prefix.to_string(), *error);
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

asio::awaitable<void> FleetSync::resync(std::shared_ptr<bool> alive) {
    std::vector<std::string> cmd = {"HGETALL", bans_key_};
    const redis::RedisResult r = co_await commands_.call(cmd);
    if (!*alive)
        co_return;
    if (const auto error = reply_error(r)) {
        spdlog::warn("fleet: loading the fleet's bans failed ({}); next try on reconnection", *error);
        co_return;
    }
    const auto& reply = std::get<redis::RedisReply>(r);
    std::size_t loaded = 0;
    std::vector<std::pair<std::string, std::string>> expired;
    const auto now = now_ms();
    for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
        const auto& field = reply.elements[i].text;
        const auto& value = reply.elements[i + 1].text;
        std::string why;
        const auto m = bans::decode_fleet_message(value, &why);
        if (m && m->expires_ms && m->expires_ms <= now) {
            expired.emplace_back(field, value);
            continue;
        }
        receive(value, true);
        ++loaded;
    }
    bans_in_redis_ = loaded;
    for (const auto& [field, value] : expired) {
        std::vector<std::string> forget = {"EVAL", kForgetIfSame, "1", bans_key_, field, value};
        co_await commands_.call(forget);
        if (!*alive)
            co_return;
    }
    ++counts_.resyncs;
    last_sync_ = std::chrono::system_clock::now();
    spdlog::info("fleet: {} ban{} of the fleet loaded from redis ({} expired entries removed)", loaded,
                 loaded == 1 ? "" : "s", expired.size());
}

void FleetSync::receive(const std::string& payload, bool from_resync) {
    ++counts_.received;
    std::string why;
    const auto m = bans::decode_fleet_message(payload, &why);
    if (!m) {
        ++counts_.invalid;
        spdlog::debug("fleet: a message that is not ours ignored: {}", why);
        return;
    }
    if (!from_resync)
        last_message_ = std::chrono::system_clock::now();
    if (m->host == host_) {  // our own, back from Redis
        ++counts_.ignored;
        return;
    }
    ++counts_.applied;
    apply_(*m);
}

asio::awaitable<void> FleetSync::heartbeat_loop(FleetSync* self, std::shared_ptr<bool> alive) {
    const auto started = self->now_ms();
    while (*alive) {
        if (self->commands_.up()) {
            const json beat{{"last_seen_ms", self->now_ms()},
                            {"started_ms", started},
                            {"version", RLGATE_VERSION},
                            {"published", self->counts_.published},
                            {"applied", self->counts_.applied}};
            std::vector<std::string> set = {"HSET", self->peers_key_, self->host_, beat.dump()};
            co_await self->commands_.call(set);
            if (!*alive)
                co_return;
            std::vector<std::string> get = {"HGETALL", self->peers_key_};
            const redis::RedisResult r = co_await self->commands_.call(get);
            if (!*alive)
                co_return;
            if (!reply_error(r)) {
                const auto& reply = std::get<redis::RedisReply>(r);
                json peers = json::array();
                const auto now = self->now_ms();
                for (std::size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
                    const auto& name = reply.elements[i].text;
                    const json p = json::parse(reply.elements[i + 1].text, nullptr, false);
                    if (!p.is_object() || !p.contains("last_seen_ms") || !p["last_seen_ms"].is_number_integer())
                        continue;
                    const auto seen = p["last_seen_ms"].get<std::int64_t>();
                    if (now - seen > kPeerForgetMs) {
                        std::vector<std::string> del = {"HDEL", self->peers_key_, name};
                        co_await self->commands_.call(del);
                        if (!*alive)
                            co_return;
                        continue;
                    }
                    peers.push_back({{"host", name},
                                     {"self", name == self->host_},
                                     {"last_seen", iso8601_ms(seen)},
                                     {"age_s", static_cast<double>(std::max<std::int64_t>(0, now - seen)) / 1e3},
                                     {"version", p.value("version", "")},
                                     {"published", p.value("published", 0)},
                                     {"applied", p.value("applied", 0)}});
                }
                self->peers_ = std::move(peers);
            }
        }
        self->heartbeat_wake_.expires_after(kHeartbeat);
        [[maybe_unused]] auto [ec] = co_await self->heartbeat_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
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
            {"peers", peers_}};
}

}  // namespace rlgate::daemon
