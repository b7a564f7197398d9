// SPDX-License-Identifier: BSD-2-Clause
// The Redis store's decision as one Lua script, and its pure codec: the
// script's keys and arguments built from a decision's limits, and its reply
// decoded back into a Decision. No I/O here: the client sends the Call by
// EVALSHA (SCRIPT LOAD of decide_script() on NOSCRIPT) and hands the reply's
// integers to decode_reply().
//
// What the script does (Redis >= 5, effects replication; written for Redis 7):
//  - Reads the server's clock once (TIME) and decides every limit of every
//    key at that instant, with the arithmetic of algorithms.cpp's check()
//    done in the same double/integer steps: first every limit is evaluated
//    without writing; only if all admit `cost` are all of them charged
//    (MemoryStore::decide_keys semantics, including the tightest limit).
//  - One Redis key per limit of each key (KEYS[i] for limit i of the
//    flattened list). Sliding logs are sorted sets (score: admission time in
//    Unix µs, member "<µs>:<n>", one per unit); every other algorithm keeps
//    a string of little-endian IEEE doubles (Lua's struct.pack "<d..."):
//      token bucket   a_s a_ns tokens        GCRA            a_s a_ns
//      sliding window a_s a_ns current previous
//      fixed window   a_s a_ns current       calendar window a_s a_ns current end_s end_ns
//    (a: last refill / TAT / window start, end: calendar window end, as Unix
//    seconds + nanoseconds so no time passes through a double above 2^53).
//    A string of any other length is taken for a fresh key.
//  - Every written key gets a TTL (PX / PEXPIRE) of the time after which its
//    state is indistinguishable from a fresh key, rounded up to ms, plus
//    kTtlMarginMs: token bucket until full, GCRA until TAT, sliding log until
//    its newest entry + period, sliding window until its window start + 2
//    periods, fixed window until the window's end. A refused decision writes
//    nothing (and so refreshes no TTL).
//  - Calendar fixed windows (minute/hour/day, possibly in a time zone) are
//    computed by the caller (calendar_window() on its own clock) and passed
//    as [start, end) in Unix ns; the count is kept per window start (a
//    different, older start = a fresh window; a newer stored start = the
//    clock of another host is ahead: keep counting in that newer window, as
//    check() does for a clock stepping back). Hosts whose clocks disagree can
//    therefore disagree only around the boundary, by their skew. The reset
//    of a calendar window is measured on the caller's clock
//    (`unix_ns_for_calendars`), so it is never 0 while the caller still is
//    inside the window.
//
// Reply (kReplySize integers, in this order):
//   0 allowed (0/1)           1 tightest, index in the flattened limits
//   2 tightest_group          3 tightest_index (within its group)
//   4 limit                   5 remaining
//   6 reset_ns                7 retry_after_ns
//   8 server time, Unix seconds   9 server time, microseconds in that second
// Durations are ns, exact below 2^53 ns (104 days); 9.2e18 and above means
// "never" (decoded as INT64_MAX, what check() saturates to). The server's
// time is sent in two parts because Lua numbers are doubles.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/ratelimit/decision.hpp"
#include "core/ratelimit/memory_store.hpp"

namespace rlgate::ratelimit::redis {

using KeyedLimits = MemoryStore::KeyedLimits;

inline constexpr std::int64_t kTtlMarginMs = 1000;  // added to every key's TTL
inline constexpr std::size_t kReplySize = 10;
inline constexpr std::size_t kArgsPerLimit = 8;     // ARGV per limit, after the 2 leading ones

// The Lua source (static storage).
std::string_view decide_script();
// Lower-case hex SHA1 of decide_script(), what EVALSHA takes.
std::string script_sha1();

// How the Redis Cluster hash tag `{...}` of each key is chosen.
//  first_key: every key of the decision carries the tag of its FIRST key
//    (one slot, so the script runs anywhere, Redis Cluster included). The
//    state of a key shared between decisions (e.g. "global") is then kept
//    once per first key: a shared limit is enforced per first key.
//  per_key: each key carries its own tag: a key's state is the same whatever
//    decision it is part of, but a decision spanning keys of different slots
//    is refused by Redis Cluster (CROSSSLOT); fine on a standalone Redis.
enum class Tagging { first_key, per_key };

struct Call {
    std::vector<std::string> keys;  // KEYS: one per limit, flattened in decision order
    std::vector<std::string> args;  // ARGV
};

// Key of limit j of key K (j: index within K's limits):
//   <prefix>{<tag>}<key_digest(K)>|<j>|<shape>
// K itself never reaches Redis: it may hold an API key or a user name.
// tag: 16 hex digits of FNV-1a 64 of the tagging key (no braces ever, so a
// key's own bytes cannot move it to another slot; a prefix holding "{...}"
// would, and must not be used). shape: the state's meaning, so a changed
// limit starts on fresh keys instead of misreading old state:
//   tb2:<limit>:<period_ns>:<capacity>  gcra2:<limit>:<period_ns>:<capacity>
//   slog:<limit>:<period_ns>  swin2:<limit>:<period_ns>  fwin2:<limit>:<period_ns>
//   fcal2:<limit>:<minute|hour|day>:<zone name, or UTC>
// (the 2: the packed state of script v2; v1 kept decimal text under the names
// without it, which v2 thus never reads. Sliding logs did not change.)
// ARGV: [1] cost, [2] unix_ns_for_calendars (decimal ns, clamped at 0), then
// per limit kArgsPerLimit: algorithm code (1 token bucket, 2 GCRA, 3 sliding
// log, 4 sliding window, 5 fixed window, 6 calendar fixed window), limit,
// period_ns, capacity (burst, or limit when burst is 0), window start and
// end (Unix ns, calendar only, else 0), group, index within the group.
// Numbers are decimal integers; the script reads them by Lua's arithmetic
// coercion, so a non-numeric one fails as a Lua error, a negative or fractional
// one as "ERR rlgate: bad ..."; [2] is read only for a calendar window.
// `dry_run` appends one last ARGV, "dry": the script judges and replies as
// usual but writes nothing (Redis Cluster: a decision whose keys live in
// several slots is judged in each slot first, then charged in each).
// 32 hex digits (two SipHash-1-3 of `key`): how a key appears in Redis key names.
std::string key_digest(std::string_view key);

Call build_call(std::span<const KeyedLimits> keyed, std::uint64_t cost, std::string_view key_prefix,
                std::int64_t unix_ns_for_calendars, Tagging tagging = Tagging::first_key, bool dry_run = false);

// The script's reply as a Decision; nullopt (and *error, if given) when it is
// not a well-formed reply. `server_time_ns`, if given, receives the server's
// clock used for the decision (Unix ns).
std::optional<Decision> decode_reply(std::span<const long long> values, std::string* error,
                                     std::int64_t* server_time_ns = nullptr);

}  // namespace rlgate::ratelimit::redis
