// SPDX-License-Identifier: BSD-2-Clause
#include "l7/server.hpp"

#include <array>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/metrics/exposition.hpp"

namespace rlgate::l7 {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kRelayChunk = 64 * 1024;
constexpr std::uint64_t kCheckBodyLimit = 64 * 1024;  // forward-auth subrequests carry no real body

using RequestParser = http::request_parser<http::buffer_body>;
using Request = http::request<http::buffer_body>;

// From the bytes (a scoped link-local address has no plain text form);
// IPv4-mapped IPv6 peers are their IPv4 address.
net::IpAddress to_ip(const asio::ip::address& a) {
    net::IpAddress out;
    if (a.is_v4() || a.to_v6().is_v4_mapped()) {
        const auto b = a.is_v4() ? a.to_v4().to_bytes() : asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_bytes();
        const std::uint8_t v4[4] = {b[0], b[1], b[2], b[3]};
        return net::IpAddress::from_v4_bytes(v4);
    }
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), out.bytes.begin());
    return out;
}

bool is_loopback(const asio::ip::address& a) {
    return a.is_loopback() ||
           (a.is_v6() && a.to_v6().is_v4_mapped() && asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback());
}

std::string_view path_of(std::string_view target) {
    return target.substr(0, target.find('?'));
}

// A response of our own (answers, errors, metrics), serialized by hand into
// one buffer: the forward-auth answer is the hot path, and a generic
// serializer costs more than the decision.
struct RawResponse {
    std::string bytes;
    bool keep_alive = false;
};

// Status line and fixed fields; the caller may append fields, then finish().
RawResponse start_response(unsigned status, unsigned version, bool keep_alive) {
    RawResponse r;
    r.keep_alive = keep_alive;
    r.bytes.reserve(512);
    r.bytes.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ").append(std::to_string(status)).append(" ");
    const auto reason = http::obsolete_reason(static_cast<http::status>(status));
    r.bytes.append(reason.data(), reason.size()).append("\r\nServer: rlgate-l7\r\n");
    if (!keep_alive && version != 10)
        r.bytes.append("Connection: close\r\n");
    else if (keep_alive && version == 10)
        r.bytes.append("Connection: keep-alive\r\n");
    return r;
}

RawResponse finish(RawResponse r, std::string_view body, std::string_view content_type = "application/json") {
    if (!body.empty())
        r.bytes.append("Content-Type: ").append(content_type).append("\r\n");
    r.bytes.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n").append(body);
    return r;
}

RawResponse make_response(unsigned status, unsigned version, bool keep_alive, std::string_view body,
                          std::string_view content_type = "application/json") {
    return finish(start_response(status, version, keep_alive), body, content_type);
}

// "http://host/path?q" -> "/path?q" (absolute-form, RFC 9112 3.2.2): what
// is matched is what is forwarded. Anything else not starting with '/'
// ("*", authority-form) comes back empty: refused.
std::string origin_form(std::string_view target) {
    for (std::string_view scheme : {"http://", "https://"})
        if (target.size() > scheme.size() && beast::iequals(target.substr(0, scheme.size()), scheme)) {
            const auto slash = target.find('/', scheme.size());
            return slash == std::string_view::npos ? std::string("/") : std::string(target.substr(slash));
        }
    return target.starts_with('/') ? std::string(target) : std::string();
}

std::string error_body(std::string_view code, std::string_view message) {
    return nlohmann::json{{"error", code}, {"message", message}}.dump();
}

// Headers that belong to one hop and must not be forwarded (RFC 9110 7.6.1).
void strip_hop_by_hop(http::fields& f) {
    // Connection may name further hop-by-hop fields.
    std::vector<std::string> named;
    const auto [first, last] = f.equal_range(http::field::connection);
    for (auto it = first; it != last; ++it)
        for (auto const& token : http::token_list(it->value()))
            // The message's framing and target are not the client's to remove:
            // "Connection: Content-Length" would smuggle the body as a request.
            if (!beast::iequals(token, "content-length") && !beast::iequals(token, "transfer-encoding") &&
                !beast::iequals(token, "host"))
                named.emplace_back(token);
    for (const auto& n : named)
        f.erase(n);
    for (auto h : {http::field::connection, http::field::keep_alive, http::field::proxy_authenticate,
                   http::field::proxy_authorization, http::field::te, http::field::trailer, http::field::upgrade})
        f.erase(h);
    f.erase("Proxy-Connection");
}

// Reads whatever body is left (discarding it), up to the parser's limit.
template <class Stream>
asio::awaitable<boost::system::error_code> drain(Stream& stream, beast::flat_buffer& buf, RequestParser& parser) {
    std::array<char, 8192> scratch{};
    boost::system::error_code ec;
    while (!parser.is_done()) {
        parser.get().body().data = scratch.data();
        parser.get().body().size = scratch.size();
        std::tie(ec, std::ignore) = co_await http::async_read(stream, buf, parser, kUse);
        if (ec == http::error::need_buffer)
            ec = {};
        if (ec)
            break;
    }
    co_return ec;
}

// Copies the rest of a message body from `in` to `out` through the
// serializer; `p` has its header read and `sr` its header written.
// `input_failed` tells which side an error came from. Reads take what has
// arrived (read_some), so a slow stream (server-sent events) is passed on as
// it comes, not in 64 KiB steps.
template <bool isRequest, class InStream, class OutStream>
asio::awaitable<boost::system::error_code> relay_body(InStream& in, beast::flat_buffer& in_buf, OutStream& out,
                                                      http::parser<isRequest, http::buffer_body>& p,
                                                      http::serializer<isRequest, http::buffer_body>& sr,
                                                      std::chrono::nanoseconds idle, bool& input_failed) {
    input_failed = false;
    std::vector<char> chunk(kRelayChunk);
    boost::system::error_code ec;
    do {
        if (!p.is_done()) {
            p.get().body().data = chunk.data();
            p.get().body().size = chunk.size();
            beast::get_lowest_layer(in).expires_after(idle);
            std::tie(ec, std::ignore) = co_await http::async_read_some(in, in_buf, p, kUse);
            if (ec == http::error::need_buffer)
                ec = {};
            if (ec) {
                input_failed = true;
                co_return ec;
            }
            p.get().body().size = chunk.size() - p.get().body().size;
            p.get().body().data = chunk.data();
            p.get().body().more = !p.is_done();
        } else {
            p.get().body().data = nullptr;
            p.get().body().size = 0;
        }
        beast::get_lowest_layer(out).expires_after(idle);
        std::tie(ec, std::ignore) = co_await http::async_write(out, sr, kUse);
        if (ec == http::error::need_buffer)
            ec = {};
        if (ec)
            co_return ec;
    } while (!p.is_done() && !sr.is_done());
    co_return ec;
}

}  // namespace

Server::Server(asio::io_context& io, Limiter& limiter, Escalator& escalator, unsigned threads, RedisStore* redis)
    : io_(io),
      limiter_(limiter),
      escalator_(escalator),
      threads_(threads),
      redis_(redis),
      pool_(io),
      acceptor_(asio::make_strand(io)) {}

asio::awaitable<Answer> Server::decide(const RequestView& view) {
    Limiter::Plan plan = limiter_.plan(view);
    if (!plan.needs_store) {
        Answer known = std::move(plan.answer);
        co_return known;
    }
    if (!redis_) {
        const auto local = limiter_.decide_local(plan);
        Answer done = limiter_.finish(std::move(plan), local);
        co_return done;
    }
    const auto keyed = plan.evaluation.keyed();
    const std::span<const ratelimit::MemoryStore::KeyedLimits> keys(keyed.data(), plan.evaluation.key_count);
    const std::uint64_t cost = plan.evaluation.cost;
    const std::int64_t now_ns = plan.now_ns, unix_ns = plan.unix_ns;
    const ratelimit::Decision shared = co_await redis_->decide(keys, cost, now_ns, unix_ns);
    Answer done = limiter_.finish(std::move(plan), shared);
    co_return done;
}

void Server::start() {
    const auto c = limiter_.config();
    const tcp::endpoint ep(asio::ip::make_address(c->listen_host), c->listen_port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    local_ = acceptor_.local_endpoint();
    // On its own strand: stop() closes it from another thread.
    asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
}

void Server::stop() {
    stopping_ = true;
    asio::post(acceptor_.get_executor(), [this] {
        boost::system::error_code ec;
        acceptor_.close(ec);
    });
    std::lock_guard lock(sessions_mu_);
    for (auto* s : sessions_)
        // On the session's own strand, and only if it is still open then.
        asio::post(s->get_executor(), [this, s] {
            std::lock_guard inner(sessions_mu_);
            if (sessions_.contains(s))
                s->socket().close();
        });
}

ThrottleGate& Server::gate(const std::string& endpoint) {
    std::lock_guard lock(gates_mu_);
    auto& g = gates_[endpoint];
    if (!g)
        g = std::make_unique<ThrottleGate>();
    return *g;
}

asio::awaitable<void> Server::accept_loop() {
    for (;;) {
        // A strand per connection only when several threads run the loop.
        asio::any_io_executor executor = io_.get_executor();
        if (threads_ > 1)
            executor = asio::make_strand(io_);
        auto [ec, socket] = co_await acceptor_.async_accept(executor, kUse);
        if (ec == asio::error::operation_aborted || !acceptor_.is_open())
            co_return;
        if (ec) {
            // EMFILE and friends: back off instead of spinning.
            spdlog::warn("accept: {}", ec.message());
            asio::steady_timer t(io_, 100ms);
            co_await t.async_wait(kUse);
            continue;
        }
        const auto cfg = limiter_.config();
        const auto limit = cfg->limits.max_connections;
        // One client cannot take every connection; proxies speak for many and are exempt.
        std::string client;
        if (boost::system::error_code pec; cfg->limits.max_connections_per_client) {
            const auto ep = socket.remote_endpoint(pec);
            const auto ip = pec ? net::IpAddress{} : to_ip(ep.address());
            const bool proxy = std::any_of(cfg->trusted_proxies.begin(), cfg->trusted_proxies.end(),
                                           [&](const net::Cidr& c) { return c.contains(ip); });
            if (!pec && !proxy)
                client = client_key(ip);
        }
        bool over_client = false;
        if (!client.empty()) {
            std::lock_guard lock(per_client_mu_);
            auto& n = per_client_[client];
            over_client = n >= cfg->limits.max_connections_per_client;
            if (!over_client)
                ++n;
        }
        if (over_client)
            ++connections_refused_per_client_;
        if (over_client || connections_.load() >= limit) {
            if (!over_client)
                ++connections_refused_;
            if (!client.empty() && !over_client) {
                std::lock_guard lock(per_client_mu_);
                if (--per_client_[client] == 0)
                    per_client_.erase(client);
            }
            // One short answer, then close: cheaper than holding the socket.
            static constexpr std::string_view kBusy =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";
            boost::system::error_code ignored;
            socket.non_blocking(true, ignored);
            socket.write_some(asio::buffer(kBusy), ignored);
            socket.close(ignored);
            continue;
        }
        ++connections_;
        ++connections_total_;
        // A session that ends by an exception closes its connection unanswered: say so.
        asio::co_spawn(socket.get_executor(), session(std::move(socket), std::move(client)), [](std::exception_ptr e) {
            if (!e)
                return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("a connection ended by an error: {}", ex.what());
            } catch (...) {
                spdlog::error("a connection ended by an unknown error");
            }
        });
    }
}

asio::awaitable<void> Server::session(tcp::socket socket, std::string client) {
    struct Count {
        Server& server;
        std::string client;
        ~Count() {
            --server.connections_;
            if (client.empty())
                return;
            std::lock_guard lock(server.per_client_mu_);
            if (auto it = server.per_client_.find(client); it != server.per_client_.end() && --it->second == 0)
                server.per_client_.erase(it);
        }
    } count{*this, std::move(client)};
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    const auto peer_endpoint = socket.remote_endpoint(ec);
    if (ec)
        co_return;
    const net::IpAddress peer = to_ip(peer_endpoint.address());
    const bool loopback_peer = is_loopback(peer_endpoint.address());
    beast::tcp_stream stream(std::move(socket));
    struct Registration {
        Server& server;
        beast::tcp_stream* stream;
        Registration(Server& sv, beast::tcp_stream* st) : server(sv), stream(st) {
            std::lock_guard lock(server.sessions_mu_);
            server.sessions_.insert(stream);
        }
        ~Registration() {
            std::lock_guard lock(server.sessions_mu_);
            server.sessions_.erase(stream);
        }
        Registration(const Registration&) = delete;
        Registration& operator=(const Registration&) = delete;
    } registration(*this, &stream);
    if (stopping_)
        co_return;
    beast::flat_buffer buf;
    bool first = true;

    // GCC 12 miscompiles temporaries and short-circuits around co_await
    // (double destruction): responses are built into locals first, and
    // every co_await is a statement of its own.
    bool head_request = false;
    auto send = [&](RawResponse res) -> asio::awaitable<bool> {
        if (head_request)  // same header fields, no body (RFC 9110 9.3.2)
            if (const auto end = res.bytes.find("\r\n\r\n"); end != std::string::npos)
                res.bytes.resize(end + 4);
        stream.expires_after(10s);
        auto [wec, n] = co_await asio::async_write(stream, asio::buffer(res.bytes), kUse);
        co_return !wec && res.keep_alive;
    };
    // Drains the request body, then answers; false when the connection must end.
    auto answer_and_continue = [&](RequestParser& p, RawResponse res) -> asio::awaitable<bool> {
        const auto dec = co_await drain(stream, buf, p);
        if (dec)
            co_return false;
        const bool keep = co_await send(std::move(res));
        co_return keep;
    };

    for (;;) {
        const auto cfg = limiter_.config();
        const auto& lim = cfg->limits;
        RequestParser parser;
        parser.header_limit(lim.max_header_bytes);
        parser.body_limit(cfg->mode == Mode::proxy ? lim.max_body_bytes : kCheckBodyLimit);
        stream.expires_after(std::chrono::nanoseconds(first ? lim.header_timeout_ns : lim.idle_timeout_ns));
        std::tie(ec, std::ignore) = co_await http::async_read_header(stream, buf, parser, kUse);
        if (ec) {
            if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::connection_reset ||
                ec == asio::error::eof || ec == asio::error::operation_aborted)
                break;
            ++bad_requests_;
            const bool too_big = ec == http::error::header_limit || ec == http::error::buffer_overflow;
            std::string body = too_big ? error_body("request_header_too_large", "the request header is larger than allowed")
                                       : error_body("bad_request", ec.message());
            auto res = make_response(too_big ? 431 : 400, 11, false, std::move(body));
            co_await send(std::move(res));
            break;
        }
        struct InFlight {
            std::atomic<std::uint64_t>& n;
            explicit InFlight(std::atomic<std::uint64_t>& c) : n(c) { ++n; }
            ~InFlight() { --n; }
            InFlight(const InFlight&) = delete;
            InFlight& operator=(const InFlight&) = delete;
        } in_flight(in_flight_);  // until this request is answered, whichever way the iteration ends
        first = false;
        Request& req = parser.get();
        const unsigned version = req.version();
        head_request = req.method() == http::verb::head;
        // Framing we will not guess at (RFC 9112 6.1, 6.3): a transfer coding
        // other than chunked last, or one in HTTP/1.0.
        if (req.count(http::field::transfer_encoding) && (version < 11 || !parser.chunked())) {
            ++bad_requests_;
            auto res = make_response(400, version, false, error_body("bad_request", "unsupported Transfer-Encoding"));
            co_await send(std::move(res));
            break;
        }
        if (std::distance(req.begin(), req.end()) > static_cast<std::ptrdiff_t>(lim.max_headers)) {
            ++bad_requests_;
            auto res = make_response(431, version, false, error_body("too_many_headers", "too many header fields"));
            co_await send(std::move(res));
            break;
        }
        const std::string target(req.target());

        // Our own endpoint: metrics, for local scrapers only.
        const bool forwarded = req.count("X-Forwarded-For") || req.count("Forwarded") || req.count("X-Real-IP");
        if (req.method() == http::verb::get && !cfg->metrics_path.empty() && path_of(target) == cfg->metrics_path &&
            loopback_peer && (cfg->mode == Mode::forward_auth || !forwarded)) {
            auto res = make_response(200, version, req.keep_alive(), metrics(), "text/plain; version=0.0.4");
            const bool keep = co_await answer_and_continue(parser, std::move(res));
            if (!keep)
                break;
            continue;
        }

        // What is being asked for: the request itself, or (forward-auth) the
        // original request described by the proxy's headers.
        std::string method(req.method_string());
        std::string uri = origin_form(target);
        if (cfg->mode == Mode::forward_auth) {
            // The check endpoint, or (Envoy ext_authz) a path under it that
            // carries the original path.
            const auto check = path_of(target);
            const bool under = check.size() > cfg->check_path.size() && check.starts_with(cfg->check_path) &&
                               (cfg->check_path.back() == '/' || check[cfg->check_path.size()] == '/');
            if (check != cfg->check_path && !under) {
                auto res = make_response(404, version, req.keep_alive(),
                                         error_body("not_found", "the check endpoint is " + cfg->check_path));
                const bool keep = co_await answer_and_continue(parser, std::move(res));
                if (!keep)
                    break;
                continue;
            }
            const bool original = cfg->original_request_headers == OriginalRequestHeaders::x_original;
            if (auto m = req[original ? "X-Original-Method" : "X-Forwarded-Method"]; !m.empty())
                method = std::string(m);
            uri = origin_form(req[original ? "X-Original-URI" : "X-Forwarded-Uri"]);
            if (uri.empty() && under)
                uri = target.substr(cfg->check_path.back() == '/' ? cfg->check_path.size() - 1 : cfg->check_path.size());
            if (uri.empty() || uri.front() != '/') {
                ++bad_requests_;
                auto res = make_response(400, version, req.keep_alive(),
                                         error_body("bad_request", original ? "the check needs the original URI in X-Original-URI"
                                                                            : "the check needs the original URI in X-Forwarded-Uri"));
                const bool keep = co_await answer_and_continue(parser, std::move(res));
                if (!keep)
                    break;
                continue;
            }
        } else if (uri.empty()) {
            ++bad_requests_;
            auto res = make_response(400, version, false, error_body("bad_request", "the request target must be a path"));
            co_await send(std::move(res));
            break;
        }
        // A proxy may add its own X-Forwarded-For line after the client's: all
        // lines, in order, are one list (RFC 9110 5.3).
        std::string all_xff, all_forwarded;
        {
            const auto [b, e] = req.equal_range("X-Forwarded-For");
            for (auto it = b; it != e; ++it)
                all_xff.append(all_xff.empty() ? "" : ", ").append(it->value());
            const auto [fb, fe] = req.equal_range(http::field::forwarded);
            for (auto it = fb; it != fe; ++it)
                all_forwarded.append(all_forwarded.empty() ? "" : ", ").append(it->value());
        }
        const RequestView view{.method = method,
                               .target = uri,
                               .peer = peer,
                               .header = [&req, &all_xff, &all_forwarded](std::string_view name) -> std::string_view {
                                   if (beast::iequals(name, "X-Forwarded-For"))
                                       return all_xff;
                                   if (beast::iequals(name, "Forwarded"))
                                       return all_forwarded;
                                   return req[name];
                               }};
        Answer answer = co_await decide(view);

        // Throttled endpoints: wait for the limit instead of refusing, while
        // the queue has room and the wait fits the deadline.
        std::optional<Throttle> throttle;  // a copy: a reload during a wait frees the config it came from
        if (answer.endpoint_config && answer.endpoint_config->throttle)
            throttle = *answer.endpoint_config->throttle;
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::nanoseconds(throttle ? throttle->max_wait_ns : 0);
        if (throttle && answer.verdict == Verdict::limited) {
            ThrottleGate& g = gate(answer.endpoint);
            while (answer.verdict == Verdict::limited &&
                   std::chrono::steady_clock::now() + std::chrono::nanoseconds(answer.retry_after_ns) <= deadline &&
                   g.enter_queue(*throttle)) {
                ++queued_;
                asio::steady_timer wait(stream.get_executor(), std::chrono::nanoseconds(answer.retry_after_ns));
                co_await wait.async_wait(kUse);
                g.leave_queue();
                answer = co_await decide(view);
            }
        }
        limiter_.record(answer);
        if (answer.escalate)
            escalator_.escalate(client_key(answer.client),
                                "rlgate-l7: over " + std::to_string(cfg->escalation.after) + " refused requests within " +
                                    std::to_string(cfg->escalation.window_ns / 1'000'000'000) + "s",
                                cfg->escalation.ban_ns / 1'000'000'000);

        const bool passes = answer.verdict == Verdict::allowed || answer.verdict == Verdict::bypassed;
        if (!passes || cfg->mode == Mode::forward_auth) {
            unsigned status = answer.status;
            // nginx's auth_request passes on only 2xx, 401 and 403.
            if (cfg->mode == Mode::forward_auth && cfg->deny_status != 429 && !passes && status != 401)
                status = cfg->deny_status;
            // A refused request's body is not read past the check limit: close instead.
            bool keep = req.keep_alive();
            if (!parser.is_done()) {
                if (cfg->mode == Mode::proxy) {
                    keep = false;
                } else {
                    const auto dec = co_await drain(stream, buf, parser);
                    if (dec)
                        keep = false;
                }
            }
            auto res = start_response(status, version, keep);
            answer.append_headers(res.bytes);
            // Why, for proxies that see only the status (nginx maps everything to 403).
            if (!passes)
                res.bytes.append("X-Rlgate-Reason: ")
                    .append(answer.verdict == Verdict::limited ? "rate_limit_exceeded" : answer.error)
                    .append("\r\n");
            res = finish(std::move(res), answer.body);
            const bool keep_going = co_await send(std::move(res));
            if (!keep_going)
                break;
            continue;
        }

        // Reverse proxy: a concurrency slot, an upstream connection, then the
        // request and the response streamed through.
        ThrottleGate* slot = nullptr;
        if (throttle && throttle->concurrency) {
            slot = &gate(answer.endpoint);
            const bool got_slot = co_await slot->acquire(*throttle, deadline);
            if (!got_slot) {
                ++throttled_;
                auto res = start_response(429, version, false);
                res.bytes.append("Retry-After: 1\r\n");
                res = finish(std::move(res), error_body("throttled", "too many requests in progress for this endpoint"));
                co_await send(std::move(res));
                break;
            }
        }
        struct Release {
            ThrottleGate* g;
            ~Release() {
                if (g)
                    g->release();
            }
        } release{slot};

        if (beast::iequals(req[http::field::expect], "100-continue")) {
            // Decided: let the client send its body (the upstream never sees the Expect).
            req.erase(http::field::expect);
            static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
            std::tie(ec, std::ignore) = co_await asio::async_write(stream, asio::buffer(k100), kUse);
            if (ec)
                break;
        }
        if (uri != target)
            req.target(uri);  // absolute-form becomes the origin-form that was matched
        const bool client_keep_alive = req.keep_alive();
        strip_hop_by_hop(req);
        {
            std::string xff(req["X-Forwarded-For"]);
            xff = xff.empty() ? peer.to_string() : xff + ", " + peer.to_string();
            req.set("X-Forwarded-For", xff);
        }
        req.keep_alive(true);
        const auto& up = cfg->upstream;
        const auto idle = std::chrono::nanoseconds(lim.idle_timeout_ns);
        const bool bodyless = parser.is_done() && !parser.chunked() && !parser.content_length().value_or(0);
        // Sent twice only if that cannot do harm: idempotent methods (RFC 9110 9.2.2).
        const auto m = req.method();
        const bool idempotent = m == http::verb::get || m == http::verb::head || m == http::verb::options ||
                                m == http::verb::put || m == http::verb::delete_ || m == http::verb::trace;

        std::unique_ptr<UpstreamConnection> conn;
        std::optional<http::response_parser<http::buffer_body>> rp;
        boost::system::error_code uec;
        bool client_failed = false;
        auto upstream_start = std::chrono::steady_clock::now();
        const auto note_latency = [this](std::uint64_t took) {
            for (auto seen = upstream_latency_max_ns_.load();
                 took > seen && !upstream_latency_max_ns_.compare_exchange_weak(seen, took);) {
            }
        };
        for (int attempt = 0; attempt < 2; ++attempt) {
            conn = co_await pool_.acquire(up, uec);
            if (!conn)
                break;
            http::request_serializer<http::buffer_body> sr{req};
            conn->stream.expires_after(idle);
            std::tie(uec, std::ignore) = co_await http::async_write_header(conn->stream, sr, kUse);
            if (!uec)
                uec = co_await relay_body(stream, buf, conn->stream, parser, sr, idle, client_failed);
            upstream_start = std::chrono::steady_clock::now();  // the upstream's time, not the client's upload
            // Interim responses (100, 103) are not the answer: read on.
            for (int interim = 0; !uec && interim < 8; ++interim) {
                rp.emplace();
                rp->body_limit(boost::none);
                if (req.method() == http::verb::head)
                    rp->skip(true);
                conn->stream.expires_after(std::chrono::nanoseconds(up.timeout_ns));
                std::tie(uec, std::ignore) = co_await http::async_read_header(conn->stream, conn->buffer, *rp, kUse);
                if (uec || rp->get().result_int() / 100 != 1)
                    break;
                if (rp->get().result() == http::status::switching_protocols)
                    uec = http::error::bad_status;  // upgrades are not relayed (Upgrade is stripped)
            }
            if (!uec && rp->get().result_int() / 100 == 1)
                uec = http::error::bad_status;
            // A pooled connection the upstream closed meanwhile: once more on a
            // fresh one, when nothing of a body was consumed and a repeat is harmless.
            if (uec && !client_failed && conn->reused && bodyless && idempotent && uec != beast::error::timeout)
                continue;
            break;
        }
        if (client_failed) {
            // The client's side failed: its body is too large, or it stalled.
            const bool too_large = uec == http::error::body_limit;
            if (too_large || uec == beast::error::timeout) {
                auto res = make_response(too_large ? 413 : 408, version, false,
                                         too_large ? error_body("payload_too_large", "the request body is larger than allowed")
                                                   : error_body("request_timeout", "the request body did not arrive in time"));
                co_await send(std::move(res));
            }
            break;
        }
        if (!conn || uec) {
            const bool timeout = uec == beast::error::timeout;
            if (timeout)  // a dead upstream is the slowest of all
                note_latency(static_cast<std::uint64_t>(up.timeout_ns));
            ++(timeout ? upstream_timeouts_ : upstream_errors_);
            spdlog::debug("upstream {}:{}: {}", up.host, up.port, uec.message());
            std::string body = timeout ? error_body("upstream_timeout", "the upstream did not answer in time")
                                       : error_body("bad_gateway", "the upstream is unavailable");
            auto res = make_response(timeout ? 504 : 502, version, false, std::move(body));
            co_await send(std::move(res));
            break;
        }
        note_latency(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - upstream_start).count()));
        auto& res = rp->get();
        const bool upstream_keep_alive = res.keep_alive();
        strip_hop_by_hop(res);
        for (const auto& [k, v] : answer.header_list())
            res.set(k, v);
        bool keep_client = client_keep_alive;
        // A body that ends when the upstream closes: chunked for an HTTP/1.1
        // client, else the end of the connection marks it.
        if (rp->need_eof() && !rp->is_done()) {
            if (version >= 11)
                res.chunked(true);
            else
                keep_client = false;
        }
        res.keep_alive(keep_client);
        http::response_serializer<http::buffer_body> rs{res};
        stream.expires_after(idle);
        std::tie(ec, std::ignore) = co_await http::async_write_header(stream, rs, kUse);
        if (!ec)
            ec = co_await relay_body(conn->stream, conn->buffer, stream, *rp, rs, idle, client_failed);
        if (!ec && rp->is_done() && upstream_keep_alive && !rp->need_eof())
            pool_.release(std::move(conn), up, lim.idle_timeout_ns);
        if (ec || !keep_client)
            break;
    }
    // Lingering close: unread request bytes at close() would make the kernel
    // reset the connection, and the client could lose our last answer.
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (!ec) {
        std::array<char, 4096> sink{};
        std::size_t drained = 0;
        stream.expires_after(1s);
        while (drained < 1024 * 1024) {
            auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), kUse);
            if (rec)
                break;
            drained += n;
        }
    }
}

Server::Load Server::take_load() {
    return {.in_flight = in_flight_.load(), .upstream_latency_ms = upstream_latency_max_ns_.exchange(0) / 1'000'000};
}

std::string Server::metrics() const {
    metrics::Exposition x;
    x.family("rlgate_l7_decisions_total", "counter", "Requests decided, by tier, endpoint and verdict.");
    for (const auto& c : limiter_.counts())
        x.sample("rlgate_l7_decisions_total",
                 {{"tier", c.tier.empty() ? "-" : c.tier}, {"endpoint", c.endpoint.empty() ? "-" : c.endpoint}, {"verdict", c.verdict}},
                 c.count);
    x.family("rlgate_l7_store_keys", "gauge", "Keys held by the in-memory limiter store.");
    x.sample("rlgate_l7_store_keys", {}, limiter_.keys());
    x.family("rlgate_l7_store_evictions_total", "counter", "Keys evicted from the full store (least recently used).");
    x.sample("rlgate_l7_store_evictions_total", {}, limiter_.evictions());
    x.family("rlgate_l7_escalations_total", "counter", "Client IPs handed to rlgated for a kernel ban.");
    x.sample("rlgate_l7_escalations_total", {}, limiter_.escalations());
    if (redis_) {
        const auto r = redis_->stats();
        x.family("rlgate_l7_redis_up", "gauge", "1 while the shared store in Redis answers, 0 while the fallback decides.");
        x.sample("rlgate_l7_redis_up", {}, std::uint64_t{redis_->up() ? 1U : 0U});
        x.family("rlgate_l7_store_decisions_total", "counter",
                 "Shared-store decisions by source: redis, cache (a key known over its limit), or the fallback "
                 "while Redis cannot answer (local, open, closed).");
        x.sample("rlgate_l7_store_decisions_total", {{"source", "redis"}}, r.redis);
        x.sample("rlgate_l7_store_decisions_total", {{"source", "cache"}}, r.cache);
        x.sample("rlgate_l7_store_decisions_total", {{"source", "lease"}}, r.lease);
        x.sample("rlgate_l7_store_decisions_total", {{"source", "local"}}, r.local);
        x.sample("rlgate_l7_store_decisions_total", {{"source", "open"}}, r.open);
        x.sample("rlgate_l7_store_decisions_total", {{"source", "closed"}}, r.closed);
        x.family("rlgate_l7_redis_calls_total", "counter", "Commands sent to Redis.");
        x.sample("rlgate_l7_redis_calls_total", {}, r.client.calls);
        x.family("rlgate_l7_redis_failures_total", "counter", "Redis calls without an answer (down, timeout, lost connection).");
        x.sample("rlgate_l7_redis_failures_total", {}, r.client.failures);
        x.family("rlgate_l7_redis_timeouts_total", "counter", "Redis calls past the timeout.");
        x.sample("rlgate_l7_redis_timeouts_total", {}, r.client.timeouts);
        x.family("rlgate_l7_redis_script_loads_total", "counter", "NOSCRIPT answers: the script was loaded again.");
        x.sample("rlgate_l7_redis_script_loads_total", {}, r.noscript);
        x.family("rlgate_l7_redis_batches_total", "counter",
                 "EVALSHA calls that carried batched decisions (store.redis.batch > 1, standalone Redis).");
        x.sample("rlgate_l7_redis_batches_total", {}, r.batches);
        x.family("rlgate_l7_redis_batched_decisions_total", "counter", "Decisions those calls carried.");
        x.sample("rlgate_l7_redis_batched_decisions_total", {}, r.batched);
        x.family("rlgate_l7_redis_script_errors_total", "counter",
                 "Script calls or decisions Redis refused (ACL, Redis older than 6.2, a foreign key); logged.");
        x.sample("rlgate_l7_redis_script_errors_total", {}, r.script_errors);
        x.family("rlgate_l7_redis_redirects_total", "counter", "Redis Cluster redirections followed, by kind.");
        x.sample("rlgate_l7_redis_redirects_total", {{"kind", "moved"}}, r.moved);
        x.sample("rlgate_l7_redis_redirects_total", {{"kind", "ask"}}, r.ask);
    }
    const auto e = escalator_.stats();
    x.family("rlgate_l7_rlgated_requests_total", "counter", "Requests to rlgated's escalation socket, by result.");
    x.sample("rlgate_l7_rlgated_requests_total", {{"result", "accepted"}}, e.accepted);
    x.sample("rlgate_l7_rlgated_requests_total", {{"result", "refused"}}, e.refused);
    x.sample("rlgate_l7_rlgated_requests_total", {{"result", "unreachable"}}, e.unreachable);
    x.sample("rlgate_l7_rlgated_requests_total", {{"result", "dropped"}}, e.dropped);
    x.family("rlgate_l7_connections", "gauge", "Client connections open.");
    x.sample("rlgate_l7_connections", {}, connections_.load());
    x.family("rlgate_l7_connections_total", "counter", "Client connections accepted.");
    x.sample("rlgate_l7_connections_total", {}, connections_total_.load());
    x.family("rlgate_l7_connections_refused_total", "counter", "Connections closed at once: limits.max_connections reached.");
    x.sample("rlgate_l7_connections_refused_total", {}, connections_refused_.load());
    x.family("rlgate_l7_connections_refused_per_client_total", "counter",
             "Connections closed at once: limits.max_connections_per_client reached by their client.");
    x.sample("rlgate_l7_connections_refused_per_client_total", {}, connections_refused_per_client_.load());
    x.family("rlgate_l7_bad_requests_total", "counter", "Malformed or oversized requests answered 400/431.");
    x.sample("rlgate_l7_bad_requests_total", {}, bad_requests_.load());
    x.family("rlgate_l7_throttle_waits_total", "counter", "Waits of throttled requests for their limit.");
    x.sample("rlgate_l7_throttle_waits_total", {}, queued_.load());
    x.family("rlgate_l7_throttle_refused_total", "counter", "Requests refused because a throttle's queue was full.");
    x.sample("rlgate_l7_throttle_refused_total", {}, throttled_.load());
    x.family("rlgate_l7_upstream_errors_total", "counter", "Proxy mode: upstream failures (502) and timeouts (504).");
    x.sample("rlgate_l7_upstream_errors_total", {{"kind", "error"}}, upstream_errors_.load());
    x.sample("rlgate_l7_upstream_errors_total", {{"kind", "timeout"}}, upstream_timeouts_.load());
    x.family("rlgate_l7_upstream_idle_connections", "gauge", "Proxy mode: pooled keep-alive connections to the upstream.");
    x.sample("rlgate_l7_upstream_idle_connections", {}, pool_.idle());
    return x.text();
}

}  // namespace rlgate::l7
