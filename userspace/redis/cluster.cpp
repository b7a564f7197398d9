// SPDX-License-Identifier: BSD-2-Clause
#include "redis/cluster.hpp"

#include <charconv>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace rlgate::redis {

namespace asio = boost::asio;

namespace {

constexpr auto kMapPeriod = std::chrono::seconds(5);
constexpr auto kMapRetry = std::chrono::milliseconds(250);  // while the map is incomplete
constexpr int kMaxRedirects = 3;

std::uint16_t crc16_xmodem(std::string_view data) {
    std::uint16_t crc = 0;
    for (const unsigned char byte : data) {
        crc ^= static_cast<std::uint16_t>(byte << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021) : static_cast<std::uint16_t>(crc << 1);
    }
    return crc;
}

std::string address(const std::string& host, std::uint16_t port) { return host + ":" + std::to_string(port); }

template <typename Int>
bool parse_int(std::string_view s, Int& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::uint16_t key_slot(std::string_view key) {
    const auto open = key.find('{');
    if (open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16_xmodem(key) % kClusterSlots);
}

std::optional<Redirect> parse_redirect(std::string_view error) {
    Redirect r;
    if (error.starts_with("MOVED "))
        error.remove_prefix(6);
    else if (error.starts_with("ASK ")) {
        r.ask = true;
        error.remove_prefix(4);
    } else
        return std::nullopt;
    const auto space = error.find(' ');
    if (space == std::string_view::npos || !parse_int(error.substr(0, space), r.slot) || r.slot >= kClusterSlots)
        return std::nullopt;
    const auto where = error.substr(space + 1);
    const auto colon = where.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || !parse_int(where.substr(colon + 1), r.port) || r.port == 0)
        return std::nullopt;
    auto host = where.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')  // an IPv6 address
        host = host.substr(1, host.size() - 2);
    r.host = std::string(host);
    return r;
}

std::optional<std::vector<SlotRange>> parse_cluster_slots(const RedisReply& reply, const std::string& asked_host,
                                                          std::string* error) {
    const auto bad = [&](const std::string& why) -> std::optional<std::vector<SlotRange>> {
        if (error)
            *error = "CLUSTER SLOTS: " + why;
        return std::nullopt;
    };
    if (reply.is_error())
        return bad(reply.text);
    if (reply.type != RedisReply::Type::array)
        return bad("not an array");
    std::vector<SlotRange> out;
    for (const auto& range : reply.elements) {
        // [first, last, [host, port, id, ...], replicas...]
        if (range.type != RedisReply::Type::array || range.elements.size() < 3)
            return bad("a range is not [first, last, master, ...]");
        const auto& first = range.elements[0];
        const auto& last = range.elements[1];
        const auto& master = range.elements[2];
        if (first.type != RedisReply::Type::integer || last.type != RedisReply::Type::integer || first.integer < 0 ||
            last.integer < first.integer || last.integer >= static_cast<long long>(kClusterSlots))
            return bad("bad slot numbers");
        if (master.type != RedisReply::Type::array || master.elements.size() < 2 ||
            master.elements[1].type != RedisReply::Type::integer || master.elements[1].integer <= 0 ||
            master.elements[1].integer > 65535)
            return bad("bad master address");
        SlotRange r{.first = static_cast<std::uint16_t>(first.integer),
                    .last = static_cast<std::uint16_t>(last.integer),
                    .host = master.elements[0].text.empty() || master.elements[0].text == "?" ? asked_host
                                                                                             : master.elements[0].text,
                    .port = static_cast<std::uint16_t>(master.elements[1].integer)};
        out.push_back(std::move(r));
    }
    return out;
}

RedisCluster::RedisCluster(asio::io_context& io, RedisOptions node,
                           std::vector<std::pair<std::string, std::uint16_t>> more_seeds)
    : io_(io), node_options_(std::move(node)), strand_(asio::make_strand(io)), refresh_(strand_) {
    seeds_.emplace_back(node_options_.host, node_options_.port);
    for (auto& s : more_seeds)
        seeds_.push_back(std::move(s));
}

RedisCluster::~RedisCluster() { stop(); }

void RedisCluster::start() {
    for (const auto& [host, port] : seeds_)
        node(host, port);
    asio::co_spawn(strand_, keep_map(shared_from_this()), asio::detached);
}

void RedisCluster::stop() {
    if (stopped_.exchange(true))
        return;
    asio::post(strand_, [self = weak_from_this()] {
        if (auto s = self.lock())
            s->refresh_.cancel();
    });
    std::lock_guard lock(mu_);
    for (auto& [name, client] : nodes_)
        client->stop();
}

std::shared_ptr<RedisClient> RedisCluster::node(const std::string& host, std::uint16_t port) {
    std::lock_guard lock(mu_);
    auto& client = nodes_[address(host, port)];
    if (!client) {
        auto options = node_options_;
        options.host = host;
        options.port = port;
        client = std::make_shared<RedisClient>(io_, options);
        if (!stopped_)
            client->start();
    }
    return client;
}

std::shared_ptr<RedisClient> RedisCluster::owner(std::uint16_t slot) const {
    std::lock_guard lock(mu_);
    return slots_[slot % kClusterSlots];
}

bool RedisCluster::up() const {
    std::lock_guard lock(mu_);
    return complete_ && std::all_of(masters_.begin(), masters_.end(), [](const auto& c) { return c->up(); });
}

RedisCluster::Stats RedisCluster::stats() const {
    Stats s{.moved = moved_.load(), .ask = ask_.load(), .map_reads = map_reads_.load()};
    std::lock_guard lock(mu_);
    s.masters = masters_.size();
    for (const auto& [name, client] : nodes_) {
        const auto c = client->stats();
        s.calls.calls += c.calls;
        s.calls.failures += c.failures;
        s.calls.timeouts += c.timeouts;
        s.calls.reconnects += c.reconnects;
    }
    return s;
}

void RedisCluster::refresh_soon() {
    asio::post(strand_, [self = weak_from_this()] {
        if (auto s = self.lock(); s && !s->stopped_)
            s->refresh_.cancel();
    });
}

asio::awaitable<void> RedisCluster::keep_map(std::shared_ptr<RedisCluster> self) {
    while (!self->stopped_) {
        const bool complete = co_await self->read_map();
        if (self->stopped_)
            break;
        self->refresh_.expires_after(complete ? std::chrono::duration_cast<std::chrono::milliseconds>(kMapPeriod)
                                              : kMapRetry);
        [[maybe_unused]] auto [ec] = co_await self->refresh_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

// Asks the known nodes, seeds first, until one answers; true if the map covers every slot.
asio::awaitable<bool> RedisCluster::read_map() {
    std::vector<std::pair<std::string, std::shared_ptr<RedisClient>>> candidates;
    {
        std::lock_guard lock(mu_);
        for (const auto& [host, port] : seeds_)
            if (auto it = nodes_.find(address(host, port)); it != nodes_.end())
                candidates.emplace_back(host, it->second);
        for (const auto& [name, client] : nodes_)
            candidates.emplace_back(client->options().host, client);
    }
    std::string why = "no node connected";
    for (const auto& [host, client] : candidates) {
        if (!client->up())
            continue;
        std::vector<std::string> cmd = {"CLUSTER", "SLOTS"};
        RedisResult result = co_await client->call(cmd);
        const auto* reply = std::get_if<RedisReply>(&result);
        if (!reply) {
            why = std::get<RedisCallFailed>(result).reason;
            continue;
        }
        auto ranges = parse_cluster_slots(*reply, host, &why);
        if (!ranges)
            continue;
        ++map_reads_;
        std::vector<std::pair<SlotRange, std::shared_ptr<RedisClient>>> owners;
        for (const auto& r : *ranges)
            owners.emplace_back(r, node(r.host, r.port));
        std::lock_guard lock(mu_);
        slots_.fill(nullptr);
        for (const auto& [r, c] : owners)
            for (std::size_t s = r.first; s <= r.last; ++s)
                slots_[s] = c;
        complete_ = std::all_of(slots_.begin(), slots_.end(), [](const auto& c) { return c != nullptr; });
        masters_.clear();
        for (const auto& [r, c] : owners)
            if (std::find(masters_.begin(), masters_.end(), c) == masters_.end())
                masters_.push_back(c);
        if (!complete_)
            spdlog::warn("redis cluster: CLUSTER SLOTS from {} leaves slots without a master", client->options().host);
        co_return complete_;
    }
    spdlog::debug("redis cluster: slot map not read: {}", why);
    co_return false;
}

asio::awaitable<RedisResult> RedisCluster::call_every_node(std::vector<std::string> args) {
    std::vector<std::shared_ptr<RedisClient>> all;
    {
        std::lock_guard lock(mu_);
        for (const auto& [name, client] : nodes_)
            all.push_back(client);
    }
    // Every node that is up; one that is down now gets it on its first NOSCRIPT later.
    std::optional<RedisResult> ok, failed;
    for (const auto& client : all) {
        if (!client->up())
            continue;
        RedisResult r = co_await client->call(args);
        const auto* reply = std::get_if<RedisReply>(&r);
        if (reply && !reply->is_error())
            ok = std::move(r);
        else if (!failed)
            failed = std::move(r);
    }
    if (ok)
        co_return *ok;
    if (failed)
        co_return *failed;
    RedisResult none = RedisCallFailed{"no node up"};
    co_return none;
}

asio::awaitable<RedisResult> RedisCluster::call(std::uint16_t slot, std::vector<std::string> args) {
    auto client = owner(slot);
    bool asking = false;
    for (int redirects = 0;; ++redirects) {
        if (!client) {
            RedisResult failed = RedisCallFailed{"no master known for slot " + std::to_string(slot)};
            co_return failed;
        }
        RedisResult result;
        if (asking)
            result = co_await client->call_asking(args);
        else
            result = co_await client->call(args);
        const auto* reply = std::get_if<RedisReply>(&result);
        if (!reply || !reply->is_error() || redirects == kMaxRedirects)
            co_return result;
        const auto redirect = parse_redirect(reply->text);
        if (!redirect)
            co_return result;
        client = node(redirect->host, redirect->port);
        asking = redirect->ask;
        // A node first heard of here: give it the connect timeout to come up.
        if (!client->up()) {
            asio::steady_timer wait(co_await asio::this_coro::executor);
            const auto deadline = std::chrono::steady_clock::now() + node_options_.connect_timeout;
            while (!client->up() && std::chrono::steady_clock::now() < deadline) {
                wait.expires_after(std::chrono::milliseconds(5));
                [[maybe_unused]] auto [ec] = co_await wait.async_wait(asio::as_tuple(asio::use_awaitable));
            }
        }
        if (redirect->ask) {
            ++ask_;  // one call goes there; the slot still belongs to its owner
        } else {
            ++moved_;
            {
                std::lock_guard lock(mu_);
                slots_[redirect->slot] = client;
            }
            refresh_soon();
        }
    }
}

}  // namespace rlgate::redis
