// SPDX-License-Identifier: BSD-2-Clause
// The Redis store's Lua script against a real redis-server (started here on
// a free loopback port, killed at the end), driven synchronously by hiredis:
// bursts, refusals and refills of every algorithm, the same decisions as
// MemoryStore at the same instant (the server's, from the reply), all or
// nothing across keys, costs, TTLs and expiry, calendar windows, atomicity
// under concurrent connections, and NOSCRIPT after SCRIPT FLUSH. And the
// codec alone: key names, arguments, reply decoding.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <cstdio>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/ratelimit/memory_store.hpp"
#include "core/ratelimit/redis_script.hpp"
#include "support/bpf_env.hpp"

namespace rlgate::ratelimit::redis {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kSec = 1'000'000'000;

LimitSpec spec(Algorithm a, std::uint64_t limit, std::int64_t period_ns, std::uint64_t burst = 0) {
    return LimitSpec{.name = "t", .algorithm = a, .limit = limit, .period_ns = static_cast<std::uint64_t>(period_ns),
                     .burst = burst, .calendar = Calendar::none, .zone = nullptr};
}

LimitSpec calendar_spec(Calendar c, std::uint64_t limit, std::shared_ptr<const TimeZone> zone = nullptr) {
    auto s = spec(Algorithm::fixed_window, limit, calendar_window_length(c));
    s.calendar = c;
    s.zone = std::move(zone);
    return s;
}

std::string algorithm_name(Algorithm a) {
    switch (a) {
    case Algorithm::token_bucket: return "token_bucket";
    case Algorithm::gcra: return "gcra";
    case Algorithm::sliding_log: return "sliding_log";
    case Algorithm::sliding_window: return "sliding_window";
    case Algorithm::fixed_window: return "fixed_window";
    }
    return "?";
}

constexpr std::array kAlgorithms = {Algorithm::token_bucket, Algorithm::gcra, Algorithm::sliding_log,
                                    Algorithm::sliding_window, Algorithm::fixed_window};

// Little-endian doubles, as the script's struct.pack('<d...') writes states and replies.
std::string packed(const std::vector<double>& values) {
    std::string out;
    for (const double v : values)
        for (std::size_t byte = 0; byte < sizeof(double); ++byte)
            out.push_back(static_cast<char>((std::bit_cast<std::uint64_t>(v) >> (8 * byte)) & 0xff));
    return out;
}

bool is_window(Algorithm a) { return a == Algorithm::fixed_window || a == Algorithm::sliding_window; }

// ---- The codec alone ------------------------------------------------------

TEST(RedisCodec, KeysOfOneDecisionShareTheFirstKeysTagAndNameTheirShape) {
    const std::vector<LimitSpec> a = {spec(Algorithm::gcra, 10, 60 * kSec, 20), spec(Algorithm::sliding_log, 100, 3600 * kSec)};
    const std::vector<LimitSpec> b = {spec(Algorithm::token_bucket, 5, kSec)};
    const std::array keyed = {KeyedLimits{"free|k:abc", a}, KeyedLimits{"global", b}};
    const Call call = build_call(keyed, 3, "rl:", 0);
    ASSERT_EQ(call.keys.size(), 3U);
    EXPECT_EQ(call.cost, 3U);
    EXPECT_FALSE(call.dry_run);
    ASSERT_EQ(call.limits.size(), 3U);
    EXPECT_EQ(call.positions, (std::vector<std::pair<std::size_t, std::size_t>>{{0, 0}, {0, 1}, {1, 0}}));
    const std::string tag = call.keys[0].substr(0, call.keys[0].find('}') + 1);
    EXPECT_TRUE(tag.starts_with("rl:{")) << tag;
    EXPECT_EQ(tag.size(), 4 + 16 + 1U) << "the first key's tag: 64 bits, it keeps copies of a shared key apart";
    for (const auto& k : call.keys)
        EXPECT_TRUE(k.starts_with(tag)) << k;
    EXPECT_EQ(limit_shape(a[0]), "gcra3:10:60000000000:20");
    EXPECT_EQ(limit_shape(a[1]), "slog:100:3600000000000");
    EXPECT_EQ(limit_shape(b[0]), "tb3:5:1000000000:5");
    auto id = [](const LimitSpec& s) {
        char hex[9];
        std::snprintf(hex, sizeof(hex), "%08x", shape_id(s));
        return std::string(hex);
    };
    EXPECT_EQ(call.keys[0], tag + key_digest("free|k:abc") + "|0|" + id(a[0]));
    EXPECT_EQ(call.keys[1], tag + key_digest("free|k:abc") + "|1|" + id(a[1]));
    EXPECT_EQ(call.keys[2], tag + key_digest("global") + "|0|" + id(b[0]));
    EXPECT_NE(shape_id(a[0]), shape_id(spec(Algorithm::gcra, 10, 60 * kSec, 21))) << "a changed burst: fresh keys";
    const Call own_tags = build_call(keyed, 3, "rl:", 0, Tagging::per_key);
    EXPECT_EQ(own_tags.keys[0].find('}'), 4 + 8U) << "a key's own tag: 32 bits";
    EXPECT_LE(own_tags.keys[0].size(), 4 + 10 + 32 + 3 + 8U) << "short names: Redis hashes them at every access";
    for (const auto& k : call.keys)
        EXPECT_EQ(k.find("k:abc"), std::string::npos) << "the API key itself never reaches Redis";
    EXPECT_EQ(key_digest("free|k:abc").size(), 32U);
    EXPECT_NE(key_digest("free|k:abc"), key_digest("free|k:abd"));
    // Per limit: code, limit, period, capacity, calendar window and clock.
    EXPECT_TRUE(build_call(keyed, 3, "rl:", 0, Tagging::first_key, true).dry_run);
    EXPECT_EQ(call.limits[2], (LimitArgs{"1", "5", "1000000000", "5", "0", "0", "0"}));

    // Each key its own tag: the "global" key then is the same in every decision.
    const Call per_key = build_call(keyed, 1, "rl:", 0, Tagging::per_key);
    auto after_tag = [](const std::string& k) { return k.substr(k.find('}')); };
    EXPECT_EQ(after_tag(per_key.keys[0]), after_tag(call.keys[0]));  // the same digest and shape
    const std::array global_only = {KeyedLimits{"global", b}};
    EXPECT_EQ(per_key.keys[2], build_call(global_only, 1, "rl:", 0, Tagging::per_key).keys[0]);
    EXPECT_NE(per_key.keys[2], call.keys[2]);
}

TEST(RedisCodec, ABatchSendsEachDistinctLimitOnceAndDecisionsByNumber) {
    const std::vector<LimitSpec> a = {spec(Algorithm::gcra, 10, 60 * kSec), spec(Algorithm::fixed_window, 5, kSec)};
    const std::vector<LimitSpec> b = {spec(Algorithm::token_bucket, 5, kSec)};
    const std::array first = {KeyedLimits{"x", a}};
    const std::array second = {KeyedLimits{"y", b}};
    const std::array calls = {build_call(first, 1, "p:", 0), build_call(second, 2, "p:", 0), build_call(second, 2, "p:", 0),
                              build_call(second, 2, "p:", 0), build_call(first, 1, "p:", 0, Tagging::first_key, true),
                              build_call(first, 1, "p:", 0)};
    const auto cmd = evalsha_command("0123abcd", calls);
    std::vector<std::string> expected = {"EVALSHA", "0123abcd", "9"};
    for (const auto& c : calls)
        expected.insert(expected.end(), c.keys.begin(), c.keys.end());
    expected.emplace_back("3");  // distinct limits: the later decisions' are the first two's
    for (const auto* limits : {&calls[0].limits, &calls[1].limits})
        for (const auto& l : *limits)
            expected.insert(expected.end(), l.begin(), l.end());
    expected.emplace_back("4");  // runs of decisions with one header
    // Per run: its length, its decisions' limits (-limits - 1 for a dry run), cost, limit numbers.
    for (const auto& part : {"1", "2", "1", "1", "2",  // x
                             "3", "1", "2", "3",       // y, y, y: one run
                             "1", "-3", "1", "1", "2", // x, dry
                             "1", "2", "1", "1", "2"}) // x again: not next to the first
        expected.emplace_back(part);
    EXPECT_EQ(cmd, expected);
}

TEST(RedisCodec, AChangedLimitGetsAFreshKeyAndAnEquivalentOneTheSame) {
    auto name = [](const LimitSpec& s) {
        const std::vector<LimitSpec> v = {s};
        const std::array keyed = {KeyedLimits{"k", v}};
        return build_call(keyed, 1, "p:", 0).keys.at(0);
    };
    const auto base = spec(Algorithm::gcra, 10, 60 * kSec);
    EXPECT_EQ(name(base), name(spec(Algorithm::gcra, 10, 60 * kSec, 10)));  // burst 0 = limit
    EXPECT_NE(name(base), name(spec(Algorithm::gcra, 11, 60 * kSec)));
    EXPECT_NE(name(base), name(spec(Algorithm::gcra, 10, 61 * kSec)));
    EXPECT_NE(name(base), name(spec(Algorithm::gcra, 10, 60 * kSec, 20)));
    EXPECT_NE(name(base), name(spec(Algorithm::token_bucket, 10, 60 * kSec)));
    EXPECT_NE(name(spec(Algorithm::fixed_window, 10, 60 * kSec)), name(calendar_spec(Calendar::minute, 10)));
    EXPECT_NE(name(calendar_spec(Calendar::hour, 10)), name(calendar_spec(Calendar::day, 10)));
}

TEST(RedisCodec, CalendarWindowsComeFromTheCallersClockAndZone) {
    const std::int64_t t = 1'700'000'123'456'789'012LL;
    std::shared_ptr<const TimeZone> berlin;
    if (std::ifstream f("/usr/share/zoneinfo/Europe/Berlin", std::ios::binary); f) {
        std::stringstream ss;
        ss << f.rdbuf();
        berlin = std::make_shared<const TimeZone>(TimeZone::from_tzif(ss.str(), "Europe/Berlin"));
    }
    const std::vector<LimitSpec> v = {calendar_spec(Calendar::minute, 7), calendar_spec(Calendar::day, 9, berlin)};
    const std::array keyed = {KeyedLimits{"k", v}};
    const Call call = build_call(keyed, 1, "", t);
    for (std::size_t i = 0; i < v.size(); ++i) {
        const Window w = calendar_window(v[i].calendar, t, v[i].zone.get());
        const auto& a = call.limits[i];
        EXPECT_EQ(a[0], "6");
        EXPECT_EQ(a[4], std::to_string(w.start));
        EXPECT_EQ(a[5], std::to_string(w.end));
        EXPECT_EQ(a[6], std::to_string(t));  // the caller's clock, for the reset
    }
    EXPECT_EQ(limit_shape(v[0]), "fcal3:7:minute:UTC");
    EXPECT_EQ(limit_shape(v[1]), berlin ? "fcal3:9:day:Europe/Berlin" : "fcal3:9:day:UTC");
    const auto utc = calendar_spec(Calendar::day, 9);
    if (berlin) {
        EXPECT_NE(shape_id(v[1]), shape_id(utc)) << "another zone: other windows, fresh keys";
    }
    for (std::size_t i = 0; i < v.size(); ++i)
        EXPECT_EQ(call.keys[i].substr(call.keys[i].rfind('|') - 2), "|" + std::to_string(i) + "|" + [&] {
            char hex[9];
            std::snprintf(hex, sizeof(hex), "%08x", shape_id(v[i]));
            return std::string(hex);
        }()) << call.keys[i];
}

TEST(RedisCodec, DecodesTheReplyAndRefusesAnythingElse) {
    // Two keys of two limits each: the limit at 3 is the second of the second key.
    const std::vector<LimitSpec> two = {spec(Algorithm::gcra, 10, kSec), spec(Algorithm::gcra, 20, kSec)};
    const std::array keyed = {KeyedLimits{"a", two}, KeyedLimits{"b", two}};
    const Call call = build_call(keyed, 1, "p:", 0);
    const std::vector<double> clock = {1'700'000'000, 123'456};
    const std::vector<double> ok = {0, 3, 10, 0, 5 * kSec, 2 * kSec};
    const std::array calls = {call, call};
    std::string error;
    const auto r = decode_replies(calls, packed(clock) + packed(ok) + packed({2, 2, 1, 0, 0, 0}), &error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->server_time_ns, 1'700'000'000LL * kSec + 123'456'000LL);
    ASSERT_TRUE(r->decisions[0]) << r->errors[0];
    const auto& d = r->decisions[0];
    EXPECT_FALSE(d->allowed);
    EXPECT_FALSE(d->tightest.allowed);
    EXPECT_EQ(d->tightest_group, 1U);
    EXPECT_EQ(d->tightest_index, 1U);
    EXPECT_EQ(d->tightest.limit, 10U);
    EXPECT_EQ(d->tightest.remaining, 0U);
    EXPECT_EQ(d->tightest.reset_ns, 5 * kSec);
    EXPECT_EQ(d->tightest.retry_after_ns, 2 * kSec);
    EXPECT_FALSE(r->decisions[1]);  // refused by the script: its limit 1 is bad
    EXPECT_EQ(r->errors[1], "redis decide: bad limit 1");

    auto one = [&](std::size_t i, double v) {
        auto values = ok;
        values[i] = v;
        return decode_replies(std::span(calls.data(), 1), packed(clock) + packed(values), &error);
    };
    const auto never = one(4, 9.2e18);
    ASSERT_TRUE(never && never->decisions[0]);
    EXPECT_EQ(never->decisions[0]->tightest.reset_ns, std::numeric_limits<std::int64_t>::max());
    // A decision out of range is no decision; the others stand.
    for (const auto& [i, v] : {std::pair{0, 3.0}, {1, 4.0}, {3, -1.0}, {5, -5.0}, {2, 0.5}, {3, 1e19}, {4, std::nan("")}}) {
        const auto bad = one(static_cast<std::size_t>(i), v);
        ASSERT_TRUE(bad) << i;
        EXPECT_FALSE(bad->decisions[0]) << i << " " << v;
        EXPECT_FALSE(bad->errors[0].empty()) << i;
    }
    // A reply not made for these calls is refused whole.
    for (const auto& wrong : {std::string(), packed(clock) + packed(ok).substr(8), packed(clock) + packed(ok) + packed(ok),
                              packed({1'700'000'000, 1'000'000}) + packed(ok)}) {
        error.clear();
        EXPECT_FALSE(decode_replies(std::span(calls.data(), 1), wrong, &error));
        EXPECT_FALSE(error.empty());
    }
    EXPECT_EQ(script_sha1().size(), 40U);
    EXPECT_EQ(script_sha1().find_first_not_of("0123456789abcdef"), std::string::npos);
}

// ---- A real redis-server --------------------------------------------------

std::string find_in_path(const char* name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':'))
        if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0)
            return dir + "/" + name;
    for (const char* d : {"/usr/bin/", "/usr/local/bin/", "/usr/sbin/"})
        if (::access((std::string(d) + name).c_str(), X_OK) == 0)
            return std::string(d) + name;
    return {};
}

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;
struct ContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
};
using Connection = std::unique_ptr<redisContext, ContextDeleter>;

Reply command(redisContext* c, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    Reply r(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r)
        throw std::runtime_error(std::string("redis connection: ") + c->errstr);
    return r;
}

long long integer(redisContext* c, const std::vector<std::string>& args) {
    const Reply r = command(c, args);
    if (r->type != REDIS_REPLY_INTEGER)
        throw std::runtime_error(args[0] + ": not an integer reply: " + std::string(r->str ? r->str : ""));
    return r->integer;
}

std::string text(redisContext* c, const std::vector<std::string>& args) {
    const Reply r = command(c, args);
    return r->str ? std::string(r->str, r->len) : std::string();
}

// The server: its own directory, port and process; gone when this is.
class RedisServer {
public:
    RedisServer() = default;
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;
    ~RedisServer() { stop(); }

    bool start(const std::string& binary, std::string* why) {
        char tmpl[] = "/tmp/rlgate-redis-XXXXXX";
        if (!::mkdtemp(tmpl)) {
            *why = "mkdtemp failed";
            return false;
        }
        dir_ = tmpl;
        for (int attempt = 0; attempt < 5; ++attempt) {  // a port taken meanwhile: another one
            port_ = free_port();
            if (port_ <= 0)
                continue;
            if (spawn(binary) && wait_ready())
                return true;
            stop_process();
        }
        std::ifstream log(dir_ + "/redis.log");
        std::stringstream ss;
        ss << log.rdbuf();
        *why = "redis-server did not answer PING; its log:\n" + ss.str();
        return false;
    }

    void stop() {
        stop_process();
        if (!dir_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
            dir_.clear();
        }
    }

    [[nodiscard]] Connection connect() const {
        timeval tv{2, 0};
        Connection c(redisConnectWithTimeout("127.0.0.1", port_, tv));
        if (!c || c->err)
            throw std::runtime_error("cannot connect to redis on port " + std::to_string(port_));
        redisSetTimeout(c.get(), timeval{10, 0});
        return c;
    }

private:
    bool spawn(const std::string& binary) {
        const std::string port = std::to_string(port_), log = dir_ + "/redis.log";
        std::vector<std::string> args = {binary, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                         "--daemonize", "no", "--dir", dir_, "--logfile", ""};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const pid_t pid = ::fork();
        if (pid < 0)
            return false;
        if (pid == 0) {  // only async-signal-safe calls until exec
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives a crashed test
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        pid_ = pid;
        return true;
    }

    bool wait_ready() {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;  // exited: the port was taken, or worse
                return false;
            }
            timeval tv{0, 200'000};
            Connection c(redisConnectWithTimeout("127.0.0.1", port_, tv));
            if (c && !c->err) {
                Reply r(static_cast<redisReply*>(redisCommand(c.get(), "PING")));
                if (r && r->type == REDIS_REPLY_STATUS && std::string(r->str) == "PONG")
                    return true;
            }
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

    void stop_process() {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    std::string dir_;
    int port_ = -1;
    pid_t pid_ = -1;
};

struct Outcome {
    Decision decision;
    std::int64_t server_ns = 0;
};

class RedisScript : public ::testing::Test {
protected:
    // 4 connections x 200 requests of cost 1 against `specs` of `key`: how many were admitted.
    int admitted_by_four_connections(const std::vector<LimitSpec>& specs, const char* key) {
        std::atomic<int> admitted{0}, failures{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&] {
                try {
                    const Connection c = server_.connect();
                    const std::array keyed = {KeyedLimits{key, specs}};
                    for (int i = 0; i < 200; ++i)
                        admitted += decide_on(c.get(), keyed, 1).decision.allowed;
                } catch (const std::exception&) {
                    ++failures;
                }
            });
        for (auto& t : threads)
            t.join();
        EXPECT_EQ(failures.load(), 0);
        return admitted.load();
    }
    void SetUp() override {
        const std::string binary = find_in_path("redis-server");
        RLGATE_REQUIRE(!binary.empty(), "redis-server is not installed (apt-get install redis-server)");
        std::string why;
        ASSERT_TRUE(server_.start(binary, &why)) << why;
        conn_ = server_.connect();
        ASSERT_EQ(text(conn_.get(), {"SCRIPT", "LOAD", std::string(decide_script())}), script_sha1());
    }
    void TearDown() override {
        conn_.reset();
        server_.stop();
    }

    // One decision by EVALSHA on `c` (default: the fixture's connection).
    static Outcome decide_on(redisContext* c, std::span<const KeyedLimits> keyed, std::uint64_t cost,
                             std::int64_t calendar_ns = 0, Tagging tagging = Tagging::first_key, bool dry_run = false) {
        const std::array call = {build_call(keyed, cost, "t:", calendar_ns, tagging, dry_run)};
        return batch_on(c, call).at(0);
    }
    // Several decisions in one EVALSHA; a decision the script refused throws.
    static std::vector<Outcome> batch_on(redisContext* c, std::span<const Call> calls) {
        const Reply r = command(c, evalsha_command(script_sha1(), calls));
        if (r->type != REDIS_REPLY_STRING)
            throw std::runtime_error("EVALSHA: " + std::string(r->str ? r->str : "not a string"));
        std::string error;
        const auto replies = decode_replies(calls, std::string_view(r->str, r->len), &error);
        if (!replies)
            throw std::runtime_error(error);
        std::vector<Outcome> out;
        for (std::size_t d = 0; d < calls.size(); ++d) {
            if (!replies->decisions[d])
                throw std::runtime_error("EVALSHA decision " + std::to_string(d) + ": " + replies->errors[d]);
            out.push_back(Outcome{.decision = *replies->decisions[d], .server_ns = replies->server_time_ns});
        }
        return out;
    }
    Outcome decide(std::span<const KeyedLimits> keyed, std::uint64_t cost, std::int64_t calendar_ns = 0) {
        return decide_on(conn_.get(), keyed, cost, calendar_ns);
    }
    Outcome decide(std::string_view key, const std::vector<LimitSpec>& specs, std::uint64_t cost) {
        const std::array keyed = {KeyedLimits{key, specs}};
        return decide(keyed, cost);
    }

    std::int64_t server_now() {
        const Reply r = command(conn_.get(), {"TIME"});
        return std::stoll(r->element[0]->str) * kSec + std::stoll(r->element[1]->str) * 1000;
    }
    // Window algorithms: start where a window of `period` has at least `room` left,
    // so a burst is not cut in two by a boundary.
    void avoid_window_end(std::int64_t period, std::int64_t room) {
        const std::int64_t now = server_now();
        const std::int64_t left = period - now % period;
        if (left < room)
            std::this_thread::sleep_for(std::chrono::nanoseconds(left + 2 * kMs));
    }
    std::vector<std::string> keys_of(std::span<const KeyedLimits> keyed) { return build_call(keyed, 1, "t:", 0).keys; }
    long long exists(const std::string& key) { return integer(conn_.get(), {"EXISTS", key}); }

    RedisServer server_;
    Connection conn_;
};

void expect_same(const Decision& redis, const Decision& memory, const std::string& where) {
    EXPECT_EQ(redis.allowed, memory.allowed) << where;
    EXPECT_EQ(redis.tightest_group, memory.tightest_group) << where;
    EXPECT_EQ(redis.tightest_index, memory.tightest_index) << where;
    EXPECT_EQ(redis.tightest.allowed, memory.tightest.allowed) << where;
    EXPECT_EQ(redis.tightest.limit, memory.tightest.limit) << where;
    EXPECT_EQ(redis.tightest.remaining, memory.tightest.remaining) << where;
    EXPECT_EQ(redis.tightest.reset_ns, memory.tightest.reset_ns) << where;
    EXPECT_EQ(redis.tightest.retry_after_ns, memory.tightest.retry_after_ns) << where;
}

TEST_F(RedisScript, ScriptLoadGivesOurShaAndBadArgumentsAreAnError) {
    EXPECT_EQ(text(conn_.get(), {"SCRIPT", "LOAD", std::string(decide_script())}), script_sha1());
    const Reply r = command(conn_.get(), {"EVALSHA", script_sha1(), "1", "t:k", "1", "0"});
    ASSERT_EQ(r->type, REDIS_REPLY_ERROR);
    EXPECT_NE(std::string(r->str).find("rlgate"), std::string::npos) << r->str;
    const std::vector<LimitSpec> none;
    const std::array empty = {KeyedLimits{"k", none}};
    EXPECT_TRUE(decide(empty, 1).decision.allowed);  // nothing to check: admitted, like MemoryStore
}

// In a batch, a dry decision charges nothing and a decision with a bad
// argument gets an error of its own; the others are decided as usual. A
// batch whose layout does not add up is refused whole, before any write.
TEST_F(RedisScript, ABatchAnswersEachDecisionOnItsOwn) {
    const std::vector<LimitSpec> specs = {spec(Algorithm::gcra, 5, 10 * kSec)};
    const std::array keyed = {KeyedLimits{"k", specs}};
    // Costs 1, 1, 2, 1: four runs, the third decision alone in its own.
    const std::vector<Call> calls = {build_call(keyed, 1, "t:", 0, Tagging::first_key, true), build_call(keyed, 1, "t:", 0),
                                     build_call(keyed, 2, "t:", 0), build_call(keyed, 1, "t:", 0)};
    auto args = evalsha_command(script_sha1(), calls);
    ASSERT_EQ(args.at(args.size() - 6), "2");
    args.at(args.size() - 6) = "-1";  // the third run's cost (each run: length, limits, cost, limit number)
    const Reply r = command(conn_.get(), args);
    ASSERT_EQ(r->type, REDIS_REPLY_STRING) << (r->str ? r->str : "");
    const auto replies = decode_replies(calls, std::string_view(r->str, r->len), nullptr);
    ASSERT_TRUE(replies);
    auto remaining = [&](std::size_t i) -> long long {
        const auto& d = replies->decisions.at(i);
        return d ? static_cast<long long>(d->tightest.remaining) : -1;
    };
    EXPECT_EQ(remaining(0), 4);  // judged as if charged, and not charged:
    EXPECT_EQ(remaining(1), 4);
    EXPECT_FALSE(replies->decisions[2]);
    EXPECT_EQ(replies->errors[2], "redis decide: bad cost");
    EXPECT_EQ(remaining(3), 3);

    // One key more than the decisions name: refused whole, nothing charged.
    args = evalsha_command(script_sha1(), std::span(calls.data(), 2));
    args.at(2) = "3";
    args.insert(args.begin() + 3, "t:extra");
    const Reply whole = command(conn_.get(), args);
    ASSERT_EQ(whole->type, REDIS_REPLY_ERROR);
    EXPECT_NE(std::string(whole->str).find("rlgate"), std::string::npos) << whole->str;
    EXPECT_EQ(decide(keyed, 1).decision.tightest.remaining, 2U);

    // Layouts that do not add up, each refused whole before anything is
    // written; ARGV after the (zero) distinct limits: runs, then each run's
    // length, limits, cost, limit numbers.
    auto refused = [&](std::vector<std::string> keys, std::vector<std::string> argv, const std::string& why) {
        std::vector<std::string> cmd = {"EVALSHA", script_sha1(), std::to_string(keys.size())};
        cmd.insert(cmd.end(), keys.begin(), keys.end());
        cmd.insert(cmd.end(), argv.begin(), argv.end());
        const Reply e = command(conn_.get(), cmd);
        ASSERT_EQ(e->type, REDIS_REPLY_ERROR) << why;
    };
    refused({}, {"0", "1", "1000000000000000", "0", "1"}, "a run without limits longer than 1: no key bounds it");
    refused({}, {"0", "1", "2", "0", "1"}, "two decisions without limits in one run");
    refused({}, {"0", "3", "1", "0", "1"}, "more runs than the arguments hold");
    refused({}, {"0", "1", "0", "0", "1"}, "a run of length 0");
    refused({}, {"0", "1", "1.5", "0", "1"}, "a fractional length");
    refused({"t:k"}, {"0", "1", "1", "1", "1", "x"}, "a limit number that is not a number");
    refused({"t:k"}, {"0", "1", "1", "1", "nope", "1"}, "a cost that is not a number");
    EXPECT_EQ(decide(keyed, 1).decision.tightest.remaining, 1U) << "none of them charged anything";
}

// A run (decisions sharing a header) on one key: each decision sees the
// charges of those before it, as separate calls would; a run of other keys
// leaves them alone.
TEST_F(RedisScript, EachDecisionOfARunSeesTheOnesBeforeIt) {
    const std::vector<LimitSpec> specs = {spec(Algorithm::gcra, 3, 10 * kSec)};
    const std::array k = {KeyedLimits{"k", specs}};
    const std::array other = {KeyedLimits{"other", specs}};
    const std::vector<Call> calls = {build_call(k, 1, "t:", 0), build_call(other, 1, "t:", 0), build_call(k, 1, "t:", 0),
                                     build_call(k, 1, "t:", 0), build_call(k, 1, "t:", 0)};
    const auto args = evalsha_command(script_sha1(), calls);
    ASSERT_EQ(args.at(args.size() - 5), "1") << "one run";
    ASSERT_EQ(args.at(args.size() - 4), "5");
    const Reply r = command(conn_.get(), args);
    ASSERT_EQ(r->type, REDIS_REPLY_STRING) << (r->str ? r->str : "");
    const auto replies = decode_replies(calls, std::string_view(r->str, r->len), nullptr);
    ASSERT_TRUE(replies);
    std::vector<std::pair<bool, long long>> seen;
    for (const auto& d : replies->decisions) {
        ASSERT_TRUE(d);
        seen.emplace_back(d->allowed, static_cast<long long>(d->tightest.remaining));
    }
    EXPECT_EQ(seen, (std::vector<std::pair<bool, long long>>{{true, 2}, {true, 2}, {true, 1}, {true, 0}, {false, 0}}));
    EXPECT_GT(replies->decisions[4]->tightest.retry_after_ns, 0);
}

class RedisEveryAlgorithm : public RedisScript, public ::testing::WithParamInterface<Algorithm> {};

// A dry run (Redis Cluster's first phase across slots) judges like the real
// decision but writes nothing: no key appears, the burst stays whole.
TEST_P(RedisEveryAlgorithm, ADryRunJudgesAndWritesNothing) {
    const auto a = GetParam();
    const std::vector<LimitSpec> one = {spec(a, 3, 10'000 * kMs)}, two = {spec(a, 5, 10'000 * kMs), spec(a, 4, 20'000 * kMs)};
    for (const auto* specs : {&one, &two}) {
        const std::string key = "dry" + std::to_string(specs->size());
        const std::array keyed = {KeyedLimits{key, *specs}};
        if (is_window(a))
            avoid_window_end(10'000 * kMs, 500 * kMs);
        std::optional<Decision> first_dry;
        for (int i = 0; i < 5; ++i) {
            const auto dry = decide_on(conn_.get(), keyed, 2, 0, Tagging::first_key, true);
            EXPECT_TRUE(dry.decision.allowed);
            if (first_dry) {  // nothing was charged: the same answer every time
                EXPECT_EQ(dry.decision.tightest.remaining, first_dry->tightest.remaining);
            }
            first_dry = dry.decision;
        }
        for (const auto& k : keys_of(keyed))
            EXPECT_EQ(exists(k), 0) << k;
        const auto real = decide(keyed, 2);
        EXPECT_TRUE(real.decision.allowed);
        EXPECT_EQ(real.decision.tightest.remaining, first_dry->tightest.remaining);
        EXPECT_EQ(real.decision.tightest_index, first_dry->tightest_index);
        const auto dry_after = decide_on(conn_.get(), keyed, 2, 0, Tagging::first_key, true);
        const auto real_after = decide(keyed, 2);
        EXPECT_EQ(dry_after.decision.allowed, real_after.decision.allowed);
        EXPECT_EQ(dry_after.decision.tightest_index, real_after.decision.tightest_index);
        EXPECT_EQ(dry_after.decision.tightest.remaining, real_after.decision.tightest.remaining);
    }
}

TEST_P(RedisEveryAlgorithm, AdmitsTheBurstThenRefusesThenRefills) {
    const auto a = GetParam();
    const std::vector<LimitSpec> specs = {spec(a, 5, 200 * kMs)};
    const std::array keyed = {KeyedLimits{"burst", specs}};
    MemoryStore memory(64, 1, 1);  // the oracle, at the server's instants
    int step = 0;
    auto request = [&] {
        const auto o = decide(keyed, 1);
        expect_same(o.decision, memory.decide_keys(keyed, o.server_ns, 1), "request " + std::to_string(step++));
        return o;
    };
    if (is_window(a))
        avoid_window_end(200 * kMs, 60 * kMs);
    for (std::uint64_t i = 0; i < 5; ++i) {
        const auto o = request();
        EXPECT_TRUE(o.decision.allowed) << i;
        EXPECT_EQ(o.decision.tightest.limit, 5U);
        EXPECT_EQ(o.decision.tightest.remaining, 4 - i);
    }
    const auto refused = request();
    ASSERT_FALSE(refused.decision.allowed);
    const auto& v = refused.decision.tightest;
    EXPECT_EQ(v.remaining, 0U);
    EXPECT_GT(v.retry_after_ns, 0);
    // Until one unit is back: 40 ms for the rate-based ones; the window's
    // end (plus a fifth of the next one for the sliding window) for the others.
    const std::int64_t bound = a == Algorithm::token_bucket || a == Algorithm::gcra ? 40 * kMs
                               : a == Algorithm::sliding_window                    ? 240 * kMs
                                                                                   : 200 * kMs;
    EXPECT_LE(v.retry_after_ns, bound);
    EXPECT_GE(v.reset_ns, v.retry_after_ns);
    const std::int64_t admissible_at = refused.server_ns + v.retry_after_ns;
    // Not before (judged by the server's clock, whatever this host's scheduling did)...
    if (v.retry_after_ns > 15 * kMs) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(v.retry_after_ns - 12 * kMs));
        const auto early = request();
        EXPECT_EQ(early.decision.allowed, early.server_ns >= admissible_at);
    }
    // ...but waiting as told is enough...
    std::this_thread::sleep_for(std::chrono::nanoseconds(v.retry_after_ns) + 2ms);
    const auto waited = request();
    EXPECT_GE(waited.server_ns, admissible_at);
    EXPECT_TRUE(waited.decision.allowed);
    // ...and after the full reset the whole burst is back.
    std::this_thread::sleep_for(std::chrono::nanoseconds(v.reset_ns) + 250ms);
    int admitted = 0;
    if (is_window(a))
        avoid_window_end(200 * kMs, 60 * kMs);
    for (int i = 0; i < 8; ++i)
        admitted += request().decision.allowed;
    EXPECT_EQ(admitted, 5);
}

// The same requests through MemoryStore at the same instants (the server's
// clock, returned by the script): the same decisions, to the nanosecond.
TEST_P(RedisEveryAlgorithm, DecidesExactlyAsMemoryStoreAtTheSameInstant) {
    const auto a = GetParam();
    for (const bool odd_periods : {false, true}) {
        // Odd periods (not whole µs) take the script's exact modular path for window starts.
        const std::int64_t odd = odd_periods ? 777 : 0;
        const std::vector<LimitSpec> user = {spec(a, 5, 200 * kMs + odd), spec(Algorithm::gcra, 12, 500 * kMs, 6)};
        // 7 per 150 ms: no whole number of ns per unit. Decided alone, it takes the
        // script's one-GCRA-limit loop (gcra_run) for GCRA.
        const std::vector<LimitSpec> endpoint = {spec(a, 7, 150 * kMs + odd, 4)};
        const std::vector<LimitSpec> global = {spec(a, 9, 300 * kMs + odd), spec(Algorithm::sliding_window, 20, 400 * kMs)};
        const std::string u = "user" + std::to_string(odd_periods);
        const std::array keyed = {KeyedLimits{u, user}, KeyedLimits{"endpoint", endpoint}, KeyedLimits{"global", global}};
        const std::array solo = {KeyedLimits{"solo" + std::to_string(odd_periods), endpoint}};
        MemoryStore memory(1024, 4, 1);
        std::mt19937 rng(1234 + static_cast<unsigned>(a));
        int allowed = 0, refused = 0;
        for (int i = 0; i < 70; ++i) {
            const std::uint64_t cost = i % 17 == 16 ? 25 : 1 + rng() % 3;  // now and then more than any capacity
            // One key of two limits, a key of one limit alone (its own, since a
            // decision's keys carry its first key's tag), or all three at once.
            const auto which = i % 3 == 0 ? std::span<const KeyedLimits>(keyed.data(), 3)
                                          : i % 3 == 1 ? std::span<const KeyedLimits>(solo) : std::span<const KeyedLimits>(keyed.data(), 1);
            const auto o = decide(which, cost);
            const auto m = memory.decide_keys(which, o.server_ns, cost);
            expect_same(o.decision, m, "step " + std::to_string(i) + " odd " + std::to_string(odd_periods));
            (o.decision.allowed ? allowed : refused) += 1;
            std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 25));
        }
        EXPECT_GT(allowed, 5);
        EXPECT_GT(refused, 5);
    }
}

// The same key twice in one decision: both judged on its state before the
// request, then charged one after the other (a charge that no longer fits
// is skipped), exactly as MemoryStore does.
TEST_P(RedisEveryAlgorithm, AKeyTwiceInOneDecisionIsChargedTwice) {
    const std::vector<LimitSpec> specs = {spec(GetParam(), 5, 10 * kSec)};
    const std::array twice = {KeyedLimits{"same", specs}, KeyedLimits{"same", specs}};
    if (is_window(GetParam()))
        avoid_window_end(10 * kSec, 1 * kSec);
    MemoryStore memory(64, 1, 1);
    std::vector<bool> allowed;
    for (int i = 0; i < 4; ++i) {
        const auto o = decide(twice, 1);
        expect_same(o.decision, memory.decide_keys(twice, o.server_ns, 1), "twice " + std::to_string(i));
        allowed.push_back(o.decision.allowed);
    }
    // 2 + 2 charged; with 1 left both checks admit, and only the first charge fits.
    EXPECT_EQ(allowed, (std::vector<bool>{true, true, true, false}));
}

// Concurrent requests in one EVALSHA: each decided as if alone, in order, at
// the batch's one instant (MemoryStore fed the same sequence agrees to the ns),
// and each charged key written once with its TTL.
TEST_P(RedisEveryAlgorithm, ABatchDecidesAsItsDecisionsOneAfterTheOther) {
    const auto a = GetParam();
    const std::vector<LimitSpec> roomy = {spec(a, 5, 10 * kSec)};
    const std::vector<LimitSpec> tight = {spec(a, 3, 10 * kSec), spec(Algorithm::gcra, 4, 10 * kSec)};
    const std::array only_a = {KeyedLimits{"A", roomy}};
    const std::array only_b = {KeyedLimits{"B", tight}};
    const std::array both = {KeyedLimits{"A", roomy}, KeyedLimits{"B", tight}};
    if (is_window(a))
        avoid_window_end(10 * kSec, 1 * kSec);
    struct Step {
        std::span<const KeyedLimits> keyed;
        std::uint64_t cost;
    };
    const std::vector<Step> steps = {{only_a, 1}, {only_a, 1}, {both, 1}, {only_b, 1}, {only_a, 2},
                                     {both, 1},   {only_b, 1}, {only_a, 1}, {only_a, 9}, {both, 1}};
    std::vector<Call> calls;
    for (const auto& st : steps)
        calls.push_back(build_call(st.keyed, st.cost, "t:", 0, Tagging::per_key));
    const auto outcomes = batch_on(conn_.get(), calls);
    ASSERT_EQ(outcomes.size(), steps.size());
    MemoryStore memory(64, 1, 1);
    int allowed = 0;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        EXPECT_EQ(outcomes[i].server_ns, outcomes[0].server_ns) << "one clock reading per batch";
        expect_same(outcomes[i].decision, memory.decide_keys(steps[i].keyed, outcomes[i].server_ns, steps[i].cost),
                    "batch step " + std::to_string(i));
        allowed += outcomes[i].decision.allowed;
    }
    EXPECT_GT(allowed, 3);
    EXPECT_LT(allowed, static_cast<int>(steps.size()));
    for (const auto& key : build_call(both, 1, "t:", 0, Tagging::per_key).keys) {
        const long long ttl = integer(conn_.get(), {"PTTL", key});
        EXPECT_GT(ttl, 0) << key;
        EXPECT_LE(ttl, 2 * 10 * 1000 + kTtlMarginMs + 1000) << key;  // a sliding window: 2 periods; whole seconds
    }
    // The next call carries on from what the batch charged.
    const auto after = decide_on(conn_.get(), only_a, 1, 0, Tagging::per_key);
    expect_same(after.decision, memory.decide_keys(only_a, after.server_ns, 1), "after the batch");
}

TEST_P(RedisEveryAlgorithm, ARefusedDecisionChargesNoKey) {
    const auto a = GetParam();
    const std::vector<LimitSpec> roomy = {spec(a, 10, 10 * kSec)};
    const std::vector<LimitSpec> tight = {spec(a, 2, 10 * kSec)};
    const std::array both = {KeyedLimits{"A", roomy}, KeyedLimits{"B", tight}};
    const std::array only_a = {KeyedLimits{"A", roomy}};
    if (is_window(a))
        avoid_window_end(10 * kSec, 1 * kSec);
    EXPECT_TRUE(decide(both, 1).decision.allowed);
    EXPECT_TRUE(decide(both, 1).decision.allowed);
    const auto names = keys_of(both);
    auto snapshot = [&](const std::string& key) {
        if (a == Algorithm::sliding_log) {
            const Reply r = command(conn_.get(), {"ZRANGE", key, "0", "-1", "WITHSCORES"});
            std::string all;
            for (std::size_t i = 0; i < r->elements; ++i)
                all += std::string(r->element[i]->str) + ",";
            return all;
        }
        return text(conn_.get(), {"GET", key});
    };
    const std::string a_before = snapshot(names[0]), b_before = snapshot(names[1]);
    ASSERT_FALSE(a_before.empty());
    const auto o = decide(both, 1);
    EXPECT_FALSE(o.decision.allowed);
    EXPECT_EQ(o.decision.tightest_group, 1U);  // B is full
    EXPECT_EQ(o.decision.tightest_index, 0U);
    EXPECT_EQ(o.decision.tightest.limit, 2U);
    EXPECT_EQ(snapshot(names[0]), a_before);
    EXPECT_EQ(snapshot(names[1]), b_before);
    // A alone (the same Redis key: it is the first key) was charged twice, not three times.
    const auto alone = decide(only_a, 1);
    EXPECT_TRUE(alone.decision.allowed);
    EXPECT_EQ(alone.decision.tightest.remaining, 7U);
}

TEST_P(RedisEveryAlgorithm, CostsAboveOneAndAboveTheCapacity) {
    const auto a = GetParam();
    const std::vector<LimitSpec> specs = {spec(a, 10, 10 * kSec)};
    const std::array keyed = {KeyedLimits{"costly", specs}};
    if (is_window(a))
        avoid_window_end(10 * kSec, 1 * kSec);
    MemoryStore memory(64, 1, 1);
    const std::vector<std::uint64_t> costs = {4, 4, 4, 2, 1, 11};
    const std::vector<bool> expected = {true, true, false, true, false, false};
    for (std::size_t i = 0; i < costs.size(); ++i) {
        const auto o = decide(keyed, costs[i]);
        EXPECT_EQ(o.decision.allowed, expected[i]) << i;
        expect_same(o.decision, memory.decide_keys(keyed, o.server_ns, costs[i]), "cost step " + std::to_string(i));
        if (!o.decision.allowed) {
            EXPECT_GT(o.decision.tightest.retry_after_ns, 0) << i;
        }
    }
    if (a == Algorithm::sliding_log) {  // one member per unit, though several share an instant
        EXPECT_EQ(integer(conn_.get(), {"ZCARD", keys_of(keyed)[0]}), 10);
    }

    // More than the capacity on a fresh key: refused, Retry-After = reset, nothing written.
    const std::array fresh = {KeyedLimits{"fresh", specs}};
    const auto o = decide(fresh, 11);
    EXPECT_FALSE(o.decision.allowed);
    EXPECT_EQ(o.decision.tightest.retry_after_ns, o.decision.tightest.reset_ns);
    expect_same(o.decision, memory.decide_keys(fresh, o.server_ns, 11), "fresh, cost 11");
    EXPECT_EQ(exists(keys_of(fresh)[0]), 0);
}

TEST_P(RedisEveryAlgorithm, ExactlyTheLimitIsAdmittedUnderConcurrentConnections) {
    // 100 per 1000 s: no refill worth a unit while the test runs, for any algorithm.
    const auto a = GetParam();
    const std::vector<LimitSpec> specs = {spec(a, 100, 1000 * kSec)};
    if (is_window(a))
        avoid_window_end(1000 * kSec, 3 * kSec);
    EXPECT_EQ(admitted_by_four_connections(specs, "shared"), 100);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, RedisEveryAlgorithm, ::testing::ValuesIn(kAlgorithms),
                         [](const auto& p) { return algorithm_name(p.param); });

TEST_F(RedisScript, HundredPerTenSecondsUnderFourConnectionsAdmitsExactlyHundred) {
    const std::vector<LimitSpec> specs = {spec(Algorithm::sliding_log, 100, 10 * kSec)};
    EXPECT_EQ(admitted_by_four_connections(specs, "k"), 100);
    EXPECT_EQ(integer(conn_.get(), {"ZCARD", build_call(std::array{KeyedLimits{"k", specs}}, 1, "t:", 0).keys[0]}), 100);
}

// Every written key expires once its state cannot be told from a fresh one (plus the margin).
TEST_F(RedisScript, EveryWrittenKeyHasATtlAndVanishesAfterIt) {
    std::vector<std::vector<LimitSpec>> specs;
    for (const auto a : kAlgorithms)
        specs.push_back({spec(a, 5, 200 * kMs)});
    std::vector<std::string> key_names;  // KeyedLimits holds views: the strings must outlive it
    for (const auto a : kAlgorithms)
        key_names.push_back(algorithm_name(a));
    std::vector<KeyedLimits> keyed;
    for (std::size_t i = 0; i < specs.size(); ++i)
        keyed.push_back(KeyedLimits{key_names[i], specs[i]});
    const auto start = std::chrono::steady_clock::now();
    const auto o = decide(keyed, 2);
    const auto decided = std::chrono::steady_clock::now();
    ASSERT_TRUE(o.decision.allowed);
    const auto names = keys_of(keyed);
    const std::int64_t now = o.server_ns, length = 200 * kMs, window = now - now % length;
    // Until fresh again, per algorithm: the bucket refilled (2 units at 40 ms),
    // the TAT reached, the log's entry gone, the window (and the next) over.
    const std::vector<std::int64_t> fresh_in = {80 * kMs, 80 * kMs, 200 * kMs, window + 2 * length - now, window + length - now};
    std::vector<std::int64_t> bounds;
    for (std::size_t i = 0; i < names.size(); ++i) {
        // A sliding log lives kTtlMarginMs past fresh (in ms); a string state until the first
        // whole second at least kTtlMarginMs past fresh: the bound is ms from the decision.
        const std::int64_t bound = kAlgorithms[i] == Algorithm::sliding_log
                                       ? (fresh_in[i] + kMs - 1) / kMs + kTtlMarginMs
                                       : ((now + fresh_in[i]) / kSec + 2) * 1000 - now / kMs;
        EXPECT_GE(bound, fresh_in[i] / kMs + kTtlMarginMs) << names[i];
        const long long pttl = integer(conn_.get(), {"PTTL", names[i]});
        const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
        EXPECT_GT(pttl, 0) << names[i];
        EXPECT_LE(pttl, bound) << names[i];
        EXPECT_GE(pttl, bound - elapsed - 5) << names[i];
        bounds.push_back(bound);
    }
    // Each still there shortly before its TTL ends, all gone after.
    std::vector<std::size_t> order = {0, 1, 2, 3, 4};
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return bounds[x] < bounds[y]; });
    for (const std::size_t i : order) {
        std::this_thread::sleep_until(start + std::chrono::milliseconds(bounds[i] - 40));
        const long long there = exists(names[i]);
        // Asked and answered before start + TTL: it must have been there.
        if (std::chrono::steady_clock::now() < start + std::chrono::milliseconds(bounds[i])) {
            EXPECT_EQ(there, 1) << names[i] << " expired early";
        }
    }
    std::this_thread::sleep_until(decided + std::chrono::milliseconds(bounds[order.back()] + 100));
    for (const auto& n : names)
        EXPECT_EQ(exists(n), 0) << n;
    // And the next decision is a fresh key's.
    MemoryStore memory(64, 1, 1);
    const auto again = decide(std::span(keyed.data(), 4), 1);  // MemoryStore takes 4 keys at most
    expect_same(again.decision, memory.decide_keys(std::span(keyed.data(), 4), again.server_ns, 1), "after expiry");
    EXPECT_EQ(again.decision.tightest.remaining, 4U);
}

// The expiry is part of the state: a charge that leaves it in the same whole
// second keeps the key's TTL as it is (SET KEEPTTL: here a TTL planted to tell
// the two apart), and one that needs a later expiry sets it (SET PXAT).
TEST_F(RedisScript, AChargeSetsTheTtlOnlyWhenTheExpiryMustMove) {
    const std::vector<LimitSpec> specs = {spec(Algorithm::gcra, 1'000'000, 60 * kSec)};  // each charge: +60 µs
    const std::array keyed = {KeyedLimits{"kept", specs}};
    const auto name = keys_of(keyed)[0];
    auto state = [](double tat_s, double tat_ns, double expiry_s) {  // GCRA: TAT as seconds + ns, expiry
        return packed({tat_s, tat_ns, expiry_s});
    };
    // A TAT 10.5 s ahead (well inside a second, so +60 µs stays in it): its expiry is
    // that second + 2, which the state already says. The TTL planted is another one.
    const std::int64_t now_s = server_now() / kSec;
    const double tat_s = static_cast<double>(now_s + 10), expiry = static_cast<double>(now_s + 12);
    ASSERT_EQ(text(conn_.get(), {"SET", name, state(tat_s, 500'000'000, expiry), "PX", "500000"}), "OK");
    const auto kept = decide(keyed, 1);
    ASSERT_TRUE(kept.decision.allowed);
    const long long ttl_kept = integer(conn_.get(), {"PTTL", name});
    EXPECT_GT(ttl_kept, 490'000) << "the TTL was set again although the expiry did not move";
    // The same TAT, but the state's expiry too early for it: set to the expiry it needs.
    ASSERT_EQ(text(conn_.get(), {"SET", name, state(tat_s, 500'000'000, static_cast<double>(now_s + 1)), "PX", "500000"}),
              "OK");
    const auto moved = decide(keyed, 1);
    ASSERT_TRUE(moved.decision.allowed);
    const long long ttl_moved = integer(conn_.get(), {"PTTL", name});
    const long long expected = (now_s + 12) * 1000 - moved.server_ns / kMs;  // PXAT (now_s + 12) s
    EXPECT_LE(ttl_moved, expected);
    EXPECT_GE(ttl_moved, expected - 1000);
}

// A sliding log whose key holds something else (not ours: a prefix shared by
// mistake) refuses that decision alone; the others of the batch are decided.
TEST_F(RedisScript, AForeignKeyRefusesItsDecisionOnly) {
    const std::vector<LimitSpec> log = {spec(Algorithm::sliding_log, 5, 10 * kSec)};
    const std::vector<LimitSpec> gcra = {spec(Algorithm::gcra, 5, 10 * kSec)};
    const std::array foreign = {KeyedLimits{"foreign", log}};
    const std::array fine = {KeyedLimits{"fine", gcra}};
    ASSERT_EQ(text(conn_.get(), {"SET", keys_of(foreign)[0], "not a sorted set"}), "OK");
    const std::vector<Call> calls = {build_call(foreign, 1, "t:", 0), build_call(fine, 1, "t:", 0)};
    const Reply r = command(conn_.get(), evalsha_command(script_sha1(), calls));
    ASSERT_EQ(r->type, REDIS_REPLY_STRING) << (r->str ? r->str : "");
    const auto replies = decode_replies(calls, std::string_view(r->str, r->len), nullptr);
    ASSERT_TRUE(replies);
    EXPECT_FALSE(replies->decisions[0]);
    EXPECT_EQ(replies->errors[0], "redis decide: a key of another type at limit 1");
    ASSERT_TRUE(replies->decisions[1]);
    EXPECT_TRUE(replies->decisions[1]->allowed);
    EXPECT_EQ(text(conn_.get(), {"GET", keys_of(foreign)[0]}), "not a sorted set");
}

TEST_F(RedisScript, ARefusedDecisionTouchesNoTtl) {
    const std::vector<LimitSpec> specs = {spec(Algorithm::gcra, 1, 10 * kSec)};
    const std::array keyed = {KeyedLimits{"once", specs}};
    ASSERT_TRUE(decide(keyed, 1).decision.allowed);
    const auto name = keys_of(keyed)[0];
    const long long first = integer(conn_.get(), {"PTTL", name});
    std::this_thread::sleep_for(30ms);
    EXPECT_FALSE(decide(keyed, 1).decision.allowed);
    const long long later = integer(conn_.get(), {"PTTL", name});
    EXPECT_LE(later, first - 25);
}

TEST_F(RedisScript, CalendarWindowsCountPerWindowStart) {
    const std::vector<LimitSpec> specs = {calendar_spec(Calendar::minute, 3)};
    const std::array keyed = {KeyedLimits{"cal", specs}};
    // The caller's clock: a minute of its own choosing, 10 s in.
    const std::int64_t t1 = (server_now() / (60 * kSec)) * 60 * kSec + 10 * kSec;
    const Window w1 = calendar_window(Calendar::minute, t1, nullptr);
    for (std::uint64_t i = 0; i < 3; ++i) {
        const auto o = decide(keyed, 1, t1);
        EXPECT_TRUE(o.decision.allowed);
        EXPECT_EQ(o.decision.tightest.remaining, 2 - i);
        EXPECT_EQ(o.decision.tightest.reset_ns, w1.end - t1);  // on the caller's clock
    }
    const auto full = decide(keyed, 1, t1);
    EXPECT_FALSE(full.decision.allowed);
    EXPECT_EQ(full.decision.tightest.retry_after_ns, w1.end - t1);
    const std::string name = keys_of(keyed)[0];
    const long long pttl = integer(conn_.get(), {"PTTL", name});
    const std::int64_t bound = std::max(w1.end - full.server_ns, w1.end - t1);
    EXPECT_GT(pttl, 0);
    EXPECT_LE(pttl, (bound + kMs - 1) / kMs + kTtlMarginMs + 1000);  // up to the next whole second

    // Another window start: a fresh count.
    const std::int64_t t2 = t1 + 60 * kSec;
    const Window w2 = calendar_window(Calendar::minute, t2, nullptr);
    const auto next = decide(keyed, 1, t2);
    EXPECT_TRUE(next.decision.allowed);
    EXPECT_EQ(next.decision.tightest.remaining, 2U);
    EXPECT_EQ(next.decision.tightest.reset_ns, w2.end - t2);
    // A host whose clock is still in the older window counts in the newer one
    // (as check() does when its clock steps back): no second quota.
    const auto late = decide(keyed, 1, t1 + 50 * kSec);
    EXPECT_TRUE(late.decision.allowed);
    EXPECT_EQ(late.decision.tightest.remaining, 1U);
    EXPECT_EQ(late.decision.tightest.reset_ns, w2.end - (t1 + 50 * kSec));
    EXPECT_TRUE(decide(keyed, 1, t2).decision.allowed);
    EXPECT_FALSE(decide(keyed, 1, t1).decision.allowed);
}

// State left by a server whose clock was ahead (a failover, a step back):
// judged as check() judges a clock standing still, never as free capacity.
TEST_F(RedisScript, AClockBehindTheStoredStateGivesNoFreeCapacity) {
    const std::int64_t now = server_now();
    const std::int64_t ahead = now + 5 * kSec;
    // The script's state string: little-endian doubles, times as Unix seconds + ns.
    auto state_string = [](Algorithm a, std::int64_t at, double tokens, std::uint64_t current) {
        std::vector<double> fields = {static_cast<double>(at / kSec), static_cast<double>(at % kSec)};
        if (a == Algorithm::token_bucket)
            fields.push_back(tokens);
        if (a == Algorithm::sliding_window || a == Algorithm::fixed_window)
            fields.push_back(static_cast<double>(current));
        if (a == Algorithm::sliding_window)
            fields.push_back(0);  // previous
        fields.push_back(static_cast<double>(at / kSec + 100));  // the key's expiry, Unix s
        return packed(fields);
    };
    for (const auto a : kAlgorithms) {
        const std::vector<LimitSpec> specs = {spec(a, 5, kSec)};
        const std::array keyed = {KeyedLimits{"ahead", specs}};
        const std::string name = keys_of(keyed)[0];
        LimitState st;
        st.started = true;
        switch (a) {
        case Algorithm::token_bucket:  // refilled at `ahead`, nothing left
            st.a = ahead;
            st.tokens = 0.5;
            break;
        case Algorithm::gcra:  // TAT a whole burst beyond `ahead`
            st.a = ahead + kSec;
            break;
        case Algorithm::sliding_window:
        case Algorithm::fixed_window:  // a full window that begins at `ahead`
            st.a = ahead - ahead % kSec;
            st.current = 5;
            break;
        case Algorithm::sliding_log:  // five entries at `ahead` (a whole µs)
            st.log = std::make_shared<std::deque<std::int64_t>>(5, ahead - ahead % 1000);
            break;
        }
        if (a == Algorithm::sliding_log) {
            const std::string us = std::to_string((ahead - ahead % 1000) / 1000);
            for (int i = 1; i <= 5; ++i)
                integer(conn_.get(), {"ZADD", name, us, us + ":" + std::to_string(i)});
        } else {
            text(conn_.get(), {"SET", name, state_string(a, st.a, st.tokens, st.current)});
        }
        const auto o = decide(keyed, 1);
        const auto v = check(specs[0], st, o.server_ns, 1, false);
        EXPECT_FALSE(o.decision.allowed) << algorithm_name(a);
        EXPECT_EQ(o.decision.tightest.remaining, v.remaining) << algorithm_name(a);
        EXPECT_EQ(o.decision.tightest.reset_ns, v.reset_ns) << algorithm_name(a);
        EXPECT_EQ(o.decision.tightest.retry_after_ns, v.retry_after_ns) << algorithm_name(a);
        EXPECT_GT(o.decision.tightest.retry_after_ns, 0) << algorithm_name(a);
    }
}

TEST_F(RedisScript, NoscriptAfterScriptFlushThenLoadAgain) {
    const std::vector<LimitSpec> specs = {spec(Algorithm::gcra, 3, kSec)};
    const std::array keyed = {KeyedLimits{"k", specs}};
    EXPECT_TRUE(decide(keyed, 1).decision.allowed);
    ASSERT_EQ(text(conn_.get(), {"SCRIPT", "FLUSH"}), "OK");
    try {
        decide(keyed, 1);
        ADD_FAILURE() << "EVALSHA ran a flushed script";
    } catch (const std::runtime_error& e) {
        EXPECT_TRUE(std::string(e.what()).find("NOSCRIPT") != std::string::npos) << e.what();
    }
    EXPECT_EQ(text(conn_.get(), {"SCRIPT", "LOAD", std::string(decide_script())}), script_sha1());
    const auto o = decide(keyed, 1);
    EXPECT_TRUE(o.decision.allowed);
    EXPECT_EQ(o.decision.tightest.remaining, 1U);  // the state survived the flush
}

}  // namespace
}  // namespace rlgate::ratelimit::redis
