// SPDX-License-Identifier: BSD-2-Clause
#include "redis/client.hpp"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <deque>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace rlgate::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr auto kReconnectPause = std::chrono::milliseconds(500);

RedisReply convert(const redisReply* r) {
    RedisReply out;
    switch (r->type) {
    case REDIS_REPLY_STRING:
        out.type = RedisReply::Type::string;
        out.text.assign(r->str, r->len);
        break;
    case REDIS_REPLY_STATUS:
        out.type = RedisReply::Type::status;
        out.text.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        out.type = RedisReply::Type::error;
        out.text.assign(r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        out.type = RedisReply::Type::integer;
        out.integer = r->integer;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = RedisReply::Type::array;
        out.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i)
            out.elements.push_back(convert(r->element[i]));
        break;
    default: out.type = RedisReply::Type::nil; break;
    }
    return out;
}

// hiredis's reply parser, owned.
class ReplyReader {
public:
    ReplyReader() : reader_(redisReaderCreate()) {}
    ~ReplyReader() { redisReaderFree(reader_); }
    ReplyReader(const ReplyReader&) = delete;
    ReplyReader& operator=(const ReplyReader&) = delete;
    bool feed(const char* data, std::size_t n) { return redisReaderFeed(reader_, data, n) == REDIS_OK; }
    // A complete reply, nullopt when more bytes are needed; throws on a protocol error.
    std::optional<RedisReply> next() {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_, &raw) != REDIS_OK)
            throw std::runtime_error(std::string("RESP protocol error: ") + reader_->errstr);
        if (!raw)
            return std::nullopt;
        auto reply = convert(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        return reply;
    }

private:
    redisReader* reader_;
};

}  // namespace

std::string encode_command(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args)
        out.append("$").append(std::to_string(a.size())).append("\r\n").append(a).append("\r\n");
    return out;
}

// One connection, all of its work on its strand: callers queue commands, one
// writer flushes them, one reader hands replies out in order.
class RedisClient::Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(asio::io_context& io, RedisClient& owner)
        : owner_(owner), strand_(asio::make_strand(io)), wake_(strand_) {}

    [[nodiscard]] auto strand() const { return strand_; }
    [[nodiscard]] bool connected() const { return connected_.load(); }

    void start() { asio::co_spawn(strand_, maintain(shared_from_this()), asio::detached); }
    void stop() {
        asio::post(strand_, [self = shared_from_this()] {
            self->stopping_ = true;
            self->break_connection("client stopped");
            self->wake_.cancel();
        });
    }

    // `skipped_replies`: commands at the head of `encoded` whose replies are dropped (ASKING).
    asio::awaitable<RedisResult> call(std::string encoded, unsigned skipped_replies) {
        if (!connected_) {
            RedisResult failed = RedisCallFailed{"not connected"};
            co_return failed;
        }
        auto timer = std::make_shared<asio::steady_timer>(strand_, owner_.options_.timeout);
        auto slot = std::make_shared<std::optional<RedisResult>>();
        for (unsigned i = 0; i < skipped_replies; ++i)
            pending_.push_back({nullptr, nullptr});
        pending_.push_back({timer, slot});
        out_ += encoded;
        if (!writing_) {
            writing_ = true;
            asio::co_spawn(strand_, write_loop(shared_from_this(), generation_), asio::detached);
        }
        [[maybe_unused]] auto [ec] = co_await timer->async_wait(kUse);  // cancelled: the reply is there
        if (slot->has_value()) {
            RedisResult done = std::move(**slot);
            co_return done;
        }
        // The deadline passed: the reply, if it ever comes, can no longer be matched.
        ++owner_.timeouts_;
        break_connection("no reply within " + std::to_string(owner_.options_.timeout.count()) + " ms");
        RedisResult failed = RedisCallFailed{"timeout"};
        co_return failed;
    }

private:
    struct Pending {
        std::shared_ptr<asio::steady_timer> timer;
        std::shared_ptr<std::optional<RedisResult>> result;
    };

    // Connects, then sleeps until the connection breaks; again, until stopped.
    static asio::awaitable<void> maintain(std::shared_ptr<Connection> self) {
        while (!self->stopping_) {
            std::string why;
            bool ok = false;
            try {
                ok = co_await self->connect_once(why);
            } catch (const std::exception& e) {
                why = e.what();
            }
            if (ok && self->owner_.subscription_) {
                ok = co_await self->send_subscribe(why);
                if (!ok)
                    self->close_socket();
            }
            if (ok) {
                ++self->generation_;
                self->connected_ = true;
                self->owner_.mark(true, "");
                if (self->owner_.subscription_ && self->owner_.subscription_->on_subscribed)
                    self->owner_.subscription_->on_subscribed();
                asio::co_spawn(self->strand_, read_loop(self, self->generation_), asio::detached);
                self->wake_.expires_at(asio::steady_timer::time_point::max());
                [[maybe_unused]] auto [ec] = co_await self->wake_.async_wait(kUse);  // until break_connection()
            } else {
                self->close_socket();
                self->owner_.mark(false, why);
                self->wake_.expires_after(kReconnectPause);
                [[maybe_unused]] auto [ec] = co_await self->wake_.async_wait(kUse);
            }
            if (!self->stopping_)
                ++self->owner_.reconnects_;
        }
    }

    asio::awaitable<bool> connect_once(std::string& why) {
        const auto& o = owner_.options_;
        tcp_ = std::make_unique<tcp::socket>(strand_);
        tls_.reset();
        // The connect timeout: closing the socket cancels whatever is in progress. Its handler
        // may already be queued when the attempt ends, so it is told (`done`), and owns what it
        // uses: it must neither touch this frame nor close the next connection.
        struct Watch {
            bool fired = false, done = false;
        };
        auto watch = std::make_shared<Watch>();
        asio::steady_timer watchdog(strand_, o.connect_timeout);
        watchdog.async_wait([self = shared_from_this(), watch](boost::system::error_code ec) {
            if (ec || watch->done)
                return;
            watch->fired = true;
            self->close_socket();
        });
        struct Disarm {
            Watch& watch;
            asio::steady_timer& timer;
            ~Disarm() {
                watch.done = true;
                timer.cancel();
            }
        } disarm{*watch, watchdog};  // every way out, exceptions too
        const auto failed = [&](const std::string& what, const boost::system::error_code& ec) {
            why = what + ": " + (watch->fired ? std::string("timed out") : ec.message());
            return false;
        };
        tcp::resolver resolver(strand_);
        const std::string port = std::to_string(o.port);
        const std::string where = o.host + ":" + port;
        auto [rec, endpoints] = co_await resolver.async_resolve(o.host, port, kUse);
        if (rec)
            co_return failed("resolve " + o.host, rec);
        auto [cec, ep] = co_await asio::async_connect(*tcp_, endpoints, kUse);
        if (cec || watch->fired)
            co_return failed("connect " + where, cec);
        tcp_->set_option(tcp::no_delay(true));
        // A peer that vanished without a reset (a dead host, a NAT timeout) is noticed within
        // ~25 s even on a connection that only listens (a subscriber).
        tcp_->set_option(asio::socket_base::keep_alive(true));
        const int idle = 10, interval = 5, count = 3;
        ::setsockopt(tcp_->native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        ::setsockopt(tcp_->native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        ::setsockopt(tcp_->native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
        if (o.tls) {
            ssl_ctx_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
            boost::system::error_code vec;
            if (o.tls_ca_file.empty())
                ssl_ctx_->set_default_verify_paths(vec);
            else
                ssl_ctx_->load_verify_file(o.tls_ca_file, vec);
            if (vec)
                co_return failed(o.tls_ca_file.empty() ? std::string("the system's CAs") : "tls_ca_file " + o.tls_ca_file,
                                 vec);
            ssl_ctx_->set_verify_mode(asio::ssl::verify_peer);
            tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(*tcp_), *ssl_ctx_);
            tcp_.reset();
            const std::string name = o.tls_server_name.empty() ? o.host : o.tls_server_name;
            // SNI carries host names only (RFC 6066, 3): none for an address. (SSL_set_tlsext_host_name
            // is a macro with a C cast.)
            boost::system::error_code not_ip;
            asio::ip::make_address(name, not_ip);
            if (not_ip)
                SSL_ctrl(tls_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                         static_cast<void*>(const_cast<char*>(name.c_str())));
            // The certificate must name `name`: a DNS name, or an IP address in its iPAddress SAN.
            tls_->set_verify_callback(asio::ssl::host_name_verification(name));
            auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kUse);
            if (hec || watch->fired)
                co_return failed("TLS handshake with " + where + " as " + name, hec);
        }
        reader_ = std::make_unique<ReplyReader>();
        // Redis must answer before the connection counts: AUTH, or PING without a password (a
        // TLS port spoken to in plain TCP, a server that wants a password, not Redis at all).
        std::vector<std::string> hello = {"PING"};
        if (!o.password.empty()) {
            hello = {"AUTH"};
            if (!o.username.empty())
                hello.push_back(o.username);
            hello.push_back(o.password);
        }
        const std::string& command = hello.front();
        boost::system::error_code xec;
        auto reply = co_await exchange(encode_command(hello), xec);
        if (!reply || watch->fired) {
            failed(where + " did not answer " + command, xec);
            why += o.tls ? " (not Redis?)" : " (not Redis, or a TLS port: \"tls\": true?)";
            co_return false;
        }
        if (reply->is_error()) {
            why = command + " refused: " + reply->text;
            co_return false;
        }
        co_return true;
    }

    // SUBSCRIBE, and its confirmation of every channel.
    asio::awaitable<bool> send_subscribe(std::string& why) {
        const auto& channels = owner_.subscription_->channels;
        std::vector<std::string> cmd = {"SUBSCRIBE"};
        cmd.insert(cmd.end(), channels.begin(), channels.end());
        boost::system::error_code ec;
        const std::string encoded = encode_command(cmd);
        auto reply = co_await exchange(encoded, ec);
        for (std::size_t confirmed = 0; reply; ++confirmed) {
            if (reply->is_error() || reply->type != RedisReply::Type::array || reply->elements.empty() ||
                reply->elements[0].text != "subscribe") {
                why = "SUBSCRIBE refused: " + (reply->is_error() ? reply->text : std::string("unexpected reply"));
                co_return false;
            }
            if (confirmed + 1 == channels.size())
                co_return true;
            reply = co_await next_reply(ec);
        }
        why = "SUBSCRIBE: " + ec.message();
        co_return false;
    }

    // The next reply already buffered or still to come (before the reader runs).
    asio::awaitable<std::optional<RedisReply>> next_reply(boost::system::error_code& ec) {
        if (auto reply = reader_->next())
            co_return reply;
        std::array<char, 4096> buf{};
        for (;;) {
            auto [rec, n] = co_await read_some(buf);
            if (rec) {
                ec = rec;
                co_return std::nullopt;
            }
            reader_->feed(buf.data(), n);
            if (auto reply = reader_->next())
                co_return reply;
        }
    }

    // One request and its reply, before the reader runs (AUTH, PING); nullopt and `ec` when
    // there is none.
    asio::awaitable<std::optional<RedisReply>> exchange(const std::string& cmd, boost::system::error_code& ec) {
        auto [wec, wn] = co_await write_some_all(cmd);
        if (wec) {
            ec = wec;
            co_return std::nullopt;
        }
        auto reply = co_await next_reply(ec);
        co_return reply;
    }

    static asio::awaitable<void> write_loop(std::shared_ptr<Connection> self, std::uint64_t gen) {
        while (gen == self->generation_ && self->connected_ && !self->out_.empty()) {
            std::string batch;
            batch.swap(self->out_);  // everything queued so far goes in one write: pipelining
            auto [ec, n] = co_await self->write_some_all(batch);
            if (ec) {
                if (gen == self->generation_)
                    self->break_connection("write: " + ec.message());
                break;
            }
        }
        if (gen == self->generation_)
            self->writing_ = false;
    }

    static asio::awaitable<void> read_loop(std::shared_ptr<Connection> self, std::uint64_t gen) {
        std::array<char, 16384> buf{};
        // Messages that came in the same read as the subscription's confirmation.
        if (self->owner_.subscription_)
            while (auto reply = self->reader_->next())
                deliver(self->owner_.subscription_.value(), *reply);
        while (gen == self->generation_) {
            auto [ec, n] = co_await self->read_some(buf);
            if (gen != self->generation_)
                break;
            if (ec) {
                self->break_connection("read: " + ec.message());
                break;
            }
            try {
                self->reader_->feed(buf.data(), n);
                while (auto reply = self->reader_->next()) {
                    if (self->owner_.subscription_) {
                        deliver(self->owner_.subscription_.value(), *reply);
                        continue;
                    }
                    if (self->pending_.empty())
                        throw std::runtime_error("a reply nobody asked for");
                    auto p = std::move(self->pending_.front());
                    self->pending_.pop_front();
                    if (!p.timer)
                        continue;  // a skipped reply (ASKING's)
                    *p.result = std::move(*reply);
                    p.timer->cancel();
                }
            } catch (const std::exception& e) {
                self->break_connection(e.what());
                break;
            }
        }
    }

    // A pushed ["message", channel, payload]; subscription confirmations and anything else are ignored.
    static void deliver(const Subscription& sub, const RedisReply& reply) {
        if (reply.type != RedisReply::Type::array || reply.elements.size() != 3 || reply.elements[0].text != "message")
            return;
        if (sub.on_message)
            sub.on_message(reply.elements[1].text, reply.elements[2].text);
    }

    asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_some_all(const std::string& bytes) {
        if (tls_) {
            auto [ec, n] = co_await asio::async_write(*tls_, asio::buffer(bytes), kUse);
            co_return std::tuple(ec, n);
        }
        auto [ec, n] = co_await asio::async_write(*tcp_, asio::buffer(bytes), kUse);
        co_return std::tuple(ec, n);
    }

    template <std::size_t N>
    asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(std::array<char, N>& buf) {
        if (tls_) {
            auto [ec, n] = co_await tls_->async_read_some(asio::buffer(buf), kUse);
            co_return std::tuple(ec, n);
        }
        auto [ec, n] = co_await tcp_->async_read_some(asio::buffer(buf), kUse);
        co_return std::tuple(ec, n);
    }

    void close_socket() {
        boost::system::error_code ignored;
        if (tls_)
            tls_->lowest_layer().close(ignored);
        if (tcp_)
            tcp_->close(ignored);
    }

    // Every pending call fails now, the socket closes, maintain() reconnects.
    void break_connection(const std::string& why) {
        if (connected_) {
            connected_ = false;
            owner_.mark(false, why);
        }
        ++generation_;
        close_socket();
        auto pending = std::move(pending_);
        pending_.clear();
        for (auto& p : pending) {
            if (!p.timer)
                continue;
            if (!p.result->has_value())
                *p.result = RedisCallFailed{why};
            p.timer->cancel();
        }
        out_.clear();
        writing_ = false;
        wake_.cancel();
    }

    RedisClient& owner_;
    asio::strand<asio::io_context::executor_type> strand_;
    asio::steady_timer wake_;
    std::unique_ptr<tcp::socket> tcp_;
    std::unique_ptr<asio::ssl::context> ssl_ctx_;
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
    std::unique_ptr<ReplyReader> reader_;
    std::deque<Pending> pending_;
    std::string out_;
    bool writing_ = false;
    bool stopping_ = false;
    std::uint64_t generation_ = 0;
    std::atomic<bool> connected_{false};
};

RedisClient::RedisClient(asio::io_context& io, RedisOptions options) : io_(io), options_(std::move(options)) {
    for (unsigned i = 0; i < std::max(1U, options_.connections); ++i)
        pool_.push_back(std::make_shared<Connection>(io_, *this));
}

RedisClient::~RedisClient() { stop(); }

void RedisClient::start() {
    for (auto& c : pool_)
        c->start();
}

void RedisClient::stop() {
    if (stopped_.exchange(true))
        return;
    for (auto& c : pool_)
        c->stop();
}

void RedisClient::subscribe(Subscription subscription) {
    subscription_ = std::move(subscription);
    pool_.resize(1);
}

asio::awaitable<RedisResult> RedisClient::call(std::vector<std::string> args) {
    std::string encoded = encode_command(args);
    RedisResult r = co_await call_encoded(std::move(encoded), 0);
    co_return r;
}

asio::awaitable<RedisResult> RedisClient::call_asking(std::vector<std::string> args) {
    const std::vector<std::string> asking = {"ASKING"};
    std::string encoded = encode_command(asking) + encode_command(args);
    RedisResult r = co_await call_encoded(std::move(encoded), 1);
    co_return r;
}

asio::awaitable<RedisResult> RedisClient::call_encoded(std::string encoded, unsigned skipped_replies) {
    ++calls_;
    if (subscription_) {
        RedisResult refused = RedisCallFailed{"a subscriber makes no calls"};
        co_return refused;
    }
    std::shared_ptr<Connection> conn;
    for (std::size_t tries = 0; tries < pool_.size() && !conn; ++tries) {
        auto& c = pool_[next_.fetch_add(1) % pool_.size()];
        if (c->connected())
            conn = c;
    }
    if (!conn) {
        ++failures_;
        RedisResult failed = RedisCallFailed{"not connected to " + options_.host + ":" + std::to_string(options_.port)};
        co_return failed;
    }
    auto strand = conn->strand();
    RedisResult result =
        co_await asio::co_spawn(strand, conn->call(std::move(encoded), skipped_replies), asio::use_awaitable);
    if (std::holds_alternative<RedisCallFailed>(result))
        ++failures_;
    co_return result;
}

// Called by each connection as it comes up or fails. Under one lock: connections change their
// state before they call, so the last call sees them all and `up_` cannot end stale. Logged:
// each change, the first failure (never up: a wrong password, an untrusted certificate), and a
// new reason while down; a reason repeated by every reconnection only once.
void RedisClient::mark(bool up, const std::string& why) {
    std::lock_guard lock(mark_mu_);
    bool any = up;
    if (!up)
        for (const auto& c : pool_)
            any = any || c->connected();
    up_.store(any);
    if (any) {
        if (logged_ != Logged::up)
            spdlog::info("redis {}:{} is up", options_.host, options_.port);
        logged_ = Logged::up;
        logged_why_.clear();
    } else if (!stopped_ && (logged_ != Logged::down || why != logged_why_)) {
        spdlog::error("redis {}:{} is down: {}", options_.host, options_.port, why);
        logged_ = Logged::down;
        logged_why_ = why;
    }
}

RedisClient::Stats RedisClient::stats() const {
    return {.calls = calls_.load(), .failures = failures_.load(), .timeouts = timeouts_.load(),
            .reconnects = reconnects_.load()};
}

}  // namespace rlgate::redis
