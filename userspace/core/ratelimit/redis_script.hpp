// SPDX-License-Identifier: BSD-2-Clause
// The Redis store's decision as one Lua script, and its pure codec: the
// script's keys and arguments built from a decision's limits, and its reply
// decoded back into a Decision. No I/O here: the client sends the calls by
// EVALSHA (SCRIPT LOAD of decide_script() on NOSCRIPT) and hands the reply
// to decode_replies().
//
// What the script does (Redis >= 6.2 for SET KEEPTTL and PXAT, effects
// replication; written for Redis 7):
//  - Runs a batch of decisions, one after the other, as if each were a call
//    of its own: a decision sees what the ones before it charged. Batching is
//    how a client amortizes EVALSHA, TIME and the reads over concurrent
//    requests (evalsha_command()); a batch of one is one decision.
//  - Reads the server's clock once (TIME) and decides every limit of every
//    key at that instant, with the arithmetic of algorithms.cpp's check()
//    done in the same double/integer steps: first every limit is evaluated
//    without writing; only if all admit `cost` are all of them charged
//    (MemoryStore::decide_keys semantics, including the tightest limit).
//  - Reads every string state of the batch with one MGET and writes each
//    charged one once, at the end; sliding logs are read and written per
//    decision. A run of decisions of one GCRA limit (the default algorithm)
//    takes a straight-line copy of the general path's arithmetic.
//  - One Redis key per limit of each key (KEYS[i] for limit i of the
//    flattened list). Sliding logs are sorted sets (score: admission time in
//    Unix µs, member "<µs>:<n>", one per unit); every other algorithm keeps
//    a string of little-endian IEEE doubles (Lua's struct.pack "<d..."):
//      token bucket   a_s a_ns tokens x      GCRA            a_s a_ns x
//      sliding window a_s a_ns current previous x
//      fixed window   a_s a_ns current x     calendar window a_s a_ns current end_s end_ns x
//    (a: last refill / TAT / window start, end: calendar window end, as Unix
//    seconds + nanoseconds so no time passes through a double above 2^53;
//    x: the key's expiry, Unix seconds). A string of any other length is
//    taken for a fresh key.
//  - Every written key expires once its state is indistinguishable from a
//    fresh key's (token bucket full, GCRA at its TAT, sliding window at its
//    start + 2 periods, fixed window at its end), plus 1 to 2 s: a string
//    state at x, the first whole second at least 1 s after that (never
//    earlier than x was), so that most charges keep the TTL (SET KEEPTTL;
//    SET PXAT when x moves); a sliding log (PEXPIRE) kTtlMarginMs after its
//    newest entry + period, rounded up to ms. A refused decision writes
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
// Reply: one string of little-endian doubles (struct.pack: far cheaper in
// Redis than arrays of integers): kReplyPrefix for the server's clock (Unix
// seconds, then microseconds in that second), then kReplySize per decision, in
// order:
//   0 allowed (0/1)           1 tightest, index in the decision's limits
//   2 limit                   3 remaining
//   4 reset_ns                5 retry_after_ns
// A decision the script refuses (a number out of range: the others are
// decided) has 2 at 0, at 1 why (1 cost, 2 limit, 4 calendar window, 5 a
// sliding log's key holds another type) and at 2 which limit (1-based). A malformed layout is one error reply for the
// whole call, before anything is read.
// Durations are ns, exact below 2^53 ns (104 days); 9.2e18 means "never"
// (decoded as INT64_MAX, what check() saturates to).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ratelimit/decision.hpp"
#include "core/ratelimit/memory_store.hpp"

namespace rlgate::ratelimit::redis {

using KeyedLimits = MemoryStore::KeyedLimits;

inline constexpr std::int64_t kTtlMarginMs = 1000;  // a key lives at least this long after its state turns fresh
inline constexpr std::size_t kReplyPrefix = 2;      // doubles: the server's clock
inline constexpr std::size_t kReplySize = 6;        // doubles per decision
inline constexpr std::size_t kArgsPerRun = 3;       // a run's header in ARGV
inline constexpr std::size_t kArgsPerLimit = 7;     // ARGV per distinct limit

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

using LimitArgs = std::array<std::string, kArgsPerLimit>;

// One decision's part of a call (see evalsha_command for the whole).
struct Call {
    std::vector<std::string> keys;    // one per limit, flattened in decision order
    std::uint64_t cost = 0;
    bool dry_run = false;
    std::vector<LimitArgs> limits;    // per limit, as in `keys`
    std::vector<std::pair<std::size_t, std::size_t>> positions;  // per limit: its group, its index in the group
};

// Key of limit j of key K (j: index within K's limits):
//   <prefix>{<tag>}<key_digest(K)>|<j>|<shape_id>
// K itself never reaches Redis: it may hold an API key or a user name.
// tag: FNV-1a 64 of the tagging key, 16 hex digits with first_key tagging
// (the tag then tells copies of a shared key apart), 8 (folded to 32 bits)
// per key (the digest does; the tag only spreads keys over slots) (no
// braces ever, so a key's own bytes cannot move it to another slot; a prefix
// holding "{...}" would, and must not be used). shape_id: 8 hex digits of
// shape_id(), a hash of the limit's shape, the meaning of its state, so a
// changed limit starts on fresh keys instead of misreading old state:
//   tb3:<limit>:<period_ns>:<capacity>  gcra3:<limit>:<period_ns>:<capacity>
//   slog:<limit>:<period_ns>  swin3:<limit>:<period_ns>  fwin3:<limit>:<period_ns>
//   fcal3:<limit>:<minute|hour|day>:<zone name, or UTC>
// (the 3: the state of script v3 and later, with its expiry). Names are
// short because Redis hashes and compares them at every read and write:
// script v3's (16-digit tag, the shape in clear, ~90 bytes) cost it ~8 %
// more per decision. Hosts of other versions use other names, so they never
// misread each other's states: while both run, each keeps its own count.
// ARGV: [1] the number of distinct limits of the batch, each as
// kArgsPerLimit: algorithm code (1 token bucket, 2 GCRA, 3 sliding log, 4
// sliding window, 5 fixed window, 6 calendar fixed window), limit, period_ns,
// capacity (burst, or limit when burst is 0), and for a calendar window its
// start, end and the caller's clock, `unix_ns_for_calendars` (Unix ns clamped
// at 0; all three 0 for other algorithms). Then the decisions in runs of
// consecutive decisions with the same header: the number of runs, and per
// run a header of kArgsPerRun (its length, limits n or -n-1 for a dry run,
// cost) and n limit numbers (1-based, into the distinct limits); each
// decision of the run has n keys, in KEYS order. A batch thus parses each
// distinct limit once and each shared header once: concurrent requests of
// one tier cost Redis one key per decision.
// Numbers are decimal integers; the script reads them by Lua's arithmetic
// coercion, so a non-numeric one fails as a Lua error (the whole call, before
// any write). A negative or fractional count (runs, run length, limits) is a
// layout error for the whole call; a negative or fractional cost or limit
// field refuses the decisions using it. A run without limits has length 1.
// `dry_run`: the script judges and replies as usual but writes nothing for
// that decision (Redis Cluster: a decision whose keys live in several slots
// is judged in each slot first, then charged in each).
// 32 hex digits (two SipHash-1-3 of `key`): how a key appears in Redis key names.
std::string key_digest(std::string_view key);
// A limit's shape as text (above), and the 32-bit hash of it in its key names.
std::string limit_shape(const LimitSpec& s);
std::uint32_t shape_id(const LimitSpec& s);

Call build_call(std::span<const KeyedLimits> keyed, std::uint64_t cost, std::string_view key_prefix,
                std::int64_t unix_ns_for_calendars, Tagging tagging = Tagging::first_key, bool dry_run = false);

// The command running `decisions` (parts made by build_call) in one call, in
// order: EVALSHA sha numkeys KEYS... ARGV... as above.
std::vector<std::string> evalsha_command(std::string_view sha, std::span<const Call> decisions);

// The script's reply to `calls` (in the order evalsha_command sent them):
// each decision, or why the script refused it; nullopt (and *error, if given)
// when the reply is not one for these calls.
struct BatchReply {
    std::int64_t server_time_ns = 0;                 // the clock the decisions were made on, Unix ns
    std::vector<std::optional<Decision>> decisions;  // nullopt: refused by the script, see errors
    std::vector<std::string> errors;                 // per decision, empty when decided
};
std::optional<BatchReply> decode_replies(std::span<const Call> calls, std::string_view reply, std::string* error);

}  // namespace rlgate::ratelimit::redis
