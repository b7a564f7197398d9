// SPDX-License-Identifier: BSD-2-Clause
#include "core/ratelimit/redis_script.hpp"
#include "core/ratelimit/siphash.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <limits>

namespace rlgate::ratelimit::redis {
namespace {

// Lua 5.1 (Redis): numbers are doubles, exact for integers below 2^53. Unix
// ns (~1.7e18) are not, so every time inside is "ns since the second the
// server's TIME fell in" (NOW < 1e9), and absolute times travel as seconds +
// ns (state strings, ARGV windows split in the script) or as Unix µs (the
// sliding log's scores: every entry is a server TIME, a whole µs). Every
// formula is check()'s, step for step in the same double operations, so the
// results are the same to the nanosecond for the same instant.
constexpr std::string_view kScript = R"LUA(-- rlgate decide v1: see userspace/core/ratelimit/redis_script.hpp
local n = #KEYS
local STRIDE = 8
if #ARGV ~= 2 + STRIDE * n then
  return redis.error_reply('ERR rlgate: expected ' .. (2 + STRIDE * n) .. ' arguments, got ' .. #ARGV)
end
local TB, GCRA, SLOG, SWIN, FWIN, FCAL = 1, 2, 3, 4, 5, 6
local E9, MAX, MARGIN_MS = 1000000000, 9.2e18, 1000

local function num(s)
  if type(s) ~= 'string' or not string.match(s, '^%d+$') then return nil end
  return tonumber(s)
end
local cost = num(ARGV[1])
if not cost then return redis.error_reply('ERR rlgate: bad cost') end

local t = redis.call('TIME')
local now_s, now_us = tonumber(t[1]), tonumber(t[2])
local NOW = now_us * 1000                   -- every time below: ns since the second now_s began
local NOW_US = now_s * 1000000 + now_us     -- Unix us, exact

local function fmt(x) return string.format('%d', x) end
-- floor(a / b) exactly for integers below 2^53 (a / b alone may round up to the next integer).
local function floordiv(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  if r < 0 then q = q - 1 elseif r >= b then q = q + 1 end
  return q
end
local function mod(a, b) return a - floordiv(a, b) * b end
local function rel(sec, ns) return (sec - now_s) * E9 + ns end
local function split(r) local q = floordiv(r, E9) return now_s + q, r - q * E9 end
local function us_rel(us) return (us - now_s * 1000000) * 1000 end
local function parse_ns(s)  -- decimal Unix ns
  if not num(s) then return nil end
  local len = #s
  if len <= 9 then return rel(0, tonumber(s)) end
  return rel(tonumber(string.sub(s, 1, len - 9)), tonumber(string.sub(s, len - 8)))
end
local CALLER_NOW = parse_ns(ARGV[2])
if not CALLER_NOW then return redis.error_reply('ERR rlgate: bad calendar time') end

-- ns for `units` at limit per period, rounded up, saturating (check()'s ns_for).
local function ns_for(s, units)
  local ns = math.ceil(units * s.period / math.max(1, s.limit))
  if ns >= 9.2e18 then return MAX end
  return ns
end

-- Start of the window of length L holding now, windows aligned on Unix 0.
local function aligned_start(L)
  local m
  if L % 1000 == 0 then
    m = mod(NOW_US, L / 1000) * 1000
  else  -- (now_s * 1e9 + NOW) mod L, doubling and adding below 2^53
    local a, b, r = mod(now_s, L), mod(E9, L), 0
    while b > 0 do
      if b % 2 == 1 then r = mod(r + a, L) end
      a = mod(a + a, L)
      b = math.floor(b / 2)
    end
    m = mod(r + NOW, L)
  end
  return NOW - m
end

local specs = {}
for i = 1, n do
  local b = 2 + (i - 1) * STRIDE
  local s = {algo = num(ARGV[b + 1]), limit = num(ARGV[b + 2]), period = num(ARGV[b + 3]), cap = num(ARGV[b + 4]),
             group = num(ARGV[b + 7]), index = num(ARGV[b + 8])}
  if not (s.algo and s.limit and s.period and s.cap and s.group and s.index) or s.algo < TB or s.algo > FCAL
     or s.period < 1 then
    return redis.error_reply('ERR rlgate: bad limit ' .. i)
  end
  if s.algo == FCAL then
    s.wstart, s.wend = parse_ns(ARGV[b + 5]), parse_ns(ARGV[b + 6])
    if not s.wstart or not s.wend or s.wend <= s.wstart then
      return redis.error_reply('ERR rlgate: bad calendar window ' .. i)
    end
  end
  specs[i] = s
end

-- State, read once per key: a string for all but the sliding log.
local states = {}
local function scalar_state(key)
  local st = states[key]
  if st then return st end
  st = {started = false, a = 0, tokens = 0, current = 0, previous = 0, e = 0}
  local v = redis.call('GET', key)
  if v then
    local a_s, a_n, tk, cu, pr, e_s, e_n =
      string.match(v, '^(%-?%d+) (%d+) (%S+) (%d+) (%d+) (%-?%d+) (%d+)$')
    if a_s and tonumber(tk) then  -- anything else is garbage: start afresh
      st.started = true
      st.a = rel(tonumber(a_s), tonumber(a_n))
      st.tokens, st.current, st.previous = tonumber(tk), tonumber(cu), tonumber(pr)
      st.e = rel(tonumber(e_s), tonumber(e_n))
    end
  end
  states[key] = st
  return st
end
local function log_state(key)
  local st = states[key]
  if st then return st end
  local r = redis.call('ZRANGE', key, '-1', '-1', 'WITHSCORES')
  st = {log = true, back = r[2] and tonumber(r[2]) or nil, pending = 0}  -- back: newest entry, Unix us
  states[key] = st
  return st
end

local function token_bucket(s, st, commit)
  local cap = s.cap
  local tokens = st.started and st.tokens or cap
  local last = st.started and st.a or NOW
  if NOW > last then
    tokens = math.min(cap, tokens + (NOW - last) * s.limit / s.period)
    last = NOW
  end
  local v = {limit = cap}
  v.allowed = cost <= tokens and cost <= cap
  local left = v.allowed and tokens - cost or tokens
  v.remaining = math.floor(left)
  v.reset = ns_for(s, cap - left)
  v.retry = v.allowed and 0 or (cost > cap and v.reset or ns_for(s, cost - tokens))
  if commit and v.allowed then
    st.tokens, st.a, st.started = left, last, true
  end
  return v
end

local function gcra(s, st, commit)
  local interval = ns_for(s, 1)
  local tolerance = ns_for(s, s.cap)
  local tat = st.started and math.max(st.a, NOW) or NOW
  local increment = ns_for(s, cost)
  local new_tat = math.min(MAX, tat + increment)
  local v = {limit = s.cap}
  local allow_at = new_tat - tolerance
  v.allowed = cost <= s.cap and allow_at <= NOW
  local used_until = v.allowed and new_tat or tat
  local slack = tolerance - (used_until - NOW)
  v.remaining = (slack <= 0 or interval <= 0) and 0 or floordiv(slack, interval)
  v.reset = math.max(0, used_until - NOW)
  v.retry = v.allowed and 0 or (cost > s.cap and v.reset or math.max(0, allow_at - NOW))
  if commit and v.allowed then
    st.a, st.started = new_tat, true
  end
  return v
end

local function fixed_window(s, st, commit)
  local start, length
  if s.algo == FCAL then
    start, length = s.wstart, s.wend - s.wstart
  else
    length = s.period
    start = aligned_start(length)
  end
  local newer = st.started and st.a > start  -- a clock behind ours (or stepped back): stay in the newer window
  local count = (st.started and st.a >= start) and st.current or 0
  local window_start = newer and st.a or start
  local window_end
  if s.algo == FCAL then window_end = newer and st.e or s.wend else window_end = window_start + length end
  local v = {limit = s.limit}
  v.allowed = count + cost <= s.limit and cost <= s.limit
  local used = v.allowed and count + cost or count
  v.remaining = s.limit - math.min(s.limit, used)
  v.reset = math.max(0, window_end - (s.algo == FCAL and CALLER_NOW or NOW))
  v.retry = v.allowed and 0 or v.reset
  if commit and v.allowed then
    st.a, st.current, st.e, st.started = window_start, used, window_end, true
  end
  return v
end

local function sliding_window(s, st, commit)
  local length = s.period
  local start = aligned_start(length)
  local current, previous = 0, 0
  if st.started then
    if st.a > start then start = st.a end
    if st.a == start then
      current, previous = st.current, st.previous
    elseif st.a == start - length then
      previous = st.current
    end
  end
  local elapsed = math.max(0, NOW - start) / length
  local weighted = previous * (1.0 - math.min(1.0, elapsed)) + current
  local v = {limit = s.limit}
  v.allowed = weighted + cost <= s.limit and cost <= s.limit
  local used = v.allowed and weighted + cost or weighted
  v.remaining = math.max(0, math.floor(s.limit - used))
  v.reset = math.max(0, start + 2 * length - NOW)
  v.retry = 0
  if not v.allowed then
    if cost > s.limit then
      v.retry = v.reset
    elseif current + cost <= s.limit then
      local excess = weighted + cost - s.limit
      v.retry = math.max(1, math.ceil(excess / previous * length))
    else
      local share = (current + cost - s.limit) / current
      v.retry = (start + length - NOW) + math.ceil(share * length)
    end
  end
  if commit and v.allowed then
    st.a, st.current, st.previous, st.started = start, current + cost, previous, true
  end
  return v
end

-- Entries (Unix us) at or before `cut` have left the log; admitted units
-- wait in `pending` until every limit has admitted.
local function sliding_log(s, key, st, commit)
  local L = s.period
  local newest = st.back and math.max(NOW_US, st.back) or NOW_US
  local cut = newest - math.ceil(L / 1000)
  if st.cut ~= cut then
    st.cut = cut
    st.stored = redis.call('ZCOUNT', key, '(' .. fmt(cut), '+inf')
  end
  local n = st.stored + st.pending
  local back = nil
  if st.pending > 0 then back = newest elseif st.back and st.back > cut then back = st.back end
  local v = {limit = s.limit}
  v.allowed = n + cost <= s.limit
  local used = v.allowed and n + cost or n
  v.remaining = s.limit - math.min(s.limit, used)
  if n == 0 and not v.allowed then
    v.reset = 0
  else
    v.reset = math.max(0, us_rel((v.allowed or n == 0) and newest or back) + L - NOW)
  end
  v.retry = 0
  if not v.allowed then
    if cost > s.limit then
      v.retry = math.max(0, v.reset)
    else
      local idx = n + cost - s.limit - 1  -- the entry, oldest first, whose expiry makes room
      local at = newest
      if idx < st.stored then
        local expired = redis.call('ZCOUNT', key, '-inf', fmt(cut))
        local r = redis.call('ZRANGE', key, fmt(expired + idx), fmt(expired + idx), 'WITHSCORES')
        at = tonumber(r[2])
      end
      v.retry = math.max(1, us_rel(at) + L - NOW)
    end
  end
  if commit and v.allowed then
    st.pending, st.back = st.pending + cost, newest
  end
  return v
end

local function check(i, commit)
  local s, key = specs[i], KEYS[i]
  if s.algo == SLOG then return sliding_log(s, key, log_state(key), commit) end
  local st = scalar_state(key)
  if s.algo == TB then return token_bucket(s, st, commit) end
  if s.algo == GCRA then return gcra(s, st, commit) end
  if s.algo == SWIN then return sliding_window(s, st, commit) end
  return fixed_window(s, st, commit)
end

-- Denied: the one that makes the client wait longest; allowed: least left, then latest reset.
local function tighter(v, than)
  if not v.allowed then return than.allowed or v.retry > than.retry end
  return than.allowed and (v.remaining < than.remaining or (v.remaining == than.remaining and v.reset > than.reset))
end

if n == 0 then return {1, 0, 0, 0, 0, 0, 0, 0, now_s, now_us} end
local allowed, best, bi = true, nil, 1
for i = 1, n do
  local v = check(i, false)
  if best == nil or tighter(v, best) then best, bi = v, i end
  allowed = allowed and v.allowed
end

-- Until this state could not be told from a fresh key, rounded up to ms, plus a margin.
local function px(ns)
  local ms = math.ceil(math.max(0, ns) / 1000000) + MARGIN_MS
  return fmt(math.min(ms, 1e13))
end
if allowed then
  for i = 1, n do check(i, true) end
  local written = {}
  for i = 1, n do
    local s, key = specs[i], KEYS[i]
    local st = states[key]
    if not written[key] then
      written[key] = true
      if st.log then
        local newest = st.back and math.max(NOW_US, st.back) or NOW_US
        redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(newest - math.ceil(s.period / 1000)))
        if st.pending > 0 then
          local score = fmt(newest)
          local base = redis.call('ZCOUNT', key, score, score)  -- members "<us>:1".."<us>:base" exist
          local args = {'ZADD', key}
          for k = 1, st.pending do
            args[#args + 1] = score
            args[#args + 1] = score .. ':' .. fmt(base + k)
            if #args >= 1026 then redis.call(unpack(args)) args = {'ZADD', key} end
          end
          if #args > 2 then redis.call(unpack(args)) end
        end
        redis.call('PEXPIRE', key, px(us_rel(newest) + s.period - NOW))
      elseif st.started then
        local ttl
        if s.algo == TB then ttl = math.max(0, st.a - NOW) + ns_for(s, s.cap - st.tokens)
        elseif s.algo == GCRA then ttl = st.a - NOW
        elseif s.algo == SWIN then ttl = st.a + 2 * s.period - NOW
        elseif s.algo == FWIN then ttl = st.e - NOW
        else ttl = math.max(st.e - NOW, st.e - CALLER_NOW) end
        local a_s, a_n = split(st.a)
        local e_s, e_n = split(st.e)
        redis.call('SET', key, string.format('%d %d %.17g %d %d %d %d', a_s, a_n, st.tokens, st.current,
                   st.previous, e_s, e_n), 'PX', px(ttl))
      end
    end
  end
end

local function int(x)
  if x ~= x or x < 0 then return 0 end
  return math.floor(math.min(x, MAX))
end
local s = specs[bi]
return {allowed and 1 or 0, bi - 1, s.group, s.index, int(best.limit), int(best.remaining), int(best.reset),
        int(best.retry), now_s, now_us}
)LUA";

constexpr std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 14695981039346656037ULL;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

std::string hex16(std::uint64_t v) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4)
        out[static_cast<std::size_t>(i)] = kHex[v & 0xf];
    return out;
}

}  // namespace

std::string key_digest(std::string_view key) {
    // Fixed keys: the point is not secrecy of the hash but that API keys and
    // user names never appear in Redis (its dumps, MONITOR, replicas).
    return hex16(siphash13(key, 0x726c676174652d6bULL, 0x6579732d76310000ULL)) +
           hex16(siphash13(key, 0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL));
}

namespace {

int algorithm_code(const LimitSpec& s) {
    switch (s.algorithm) {
    case Algorithm::token_bucket: return 1;
    case Algorithm::gcra: return 2;
    case Algorithm::sliding_log: return 3;
    case Algorithm::sliding_window: return 4;
    case Algorithm::fixed_window: return s.calendar == Calendar::none ? 5 : 6;
    }
    return 2;
}

std::string shape(const LimitSpec& s) {
    const std::uint64_t capacity = s.burst ? s.burst : s.limit;
    const std::string rate = std::to_string(s.limit) + ":" + std::to_string(s.period_ns);
    switch (s.algorithm) {
    case Algorithm::token_bucket: return "tb:" + rate + ":" + std::to_string(capacity);
    case Algorithm::gcra: return "gcra:" + rate + ":" + std::to_string(capacity);
    case Algorithm::sliding_log: return "slog:" + rate;
    case Algorithm::sliding_window: return "swin:" + rate;
    case Algorithm::fixed_window: break;
    }
    if (s.calendar == Calendar::none)
        return "fwin:" + rate;
    std::string zone = s.zone ? s.zone->name() : "UTC";
    std::replace(zone.begin(), zone.end(), '|', '_');  // '|' separates the name's parts
    const char* unit = s.calendar == Calendar::minute ? "minute" : s.calendar == Calendar::hour ? "hour" : "day";
    return "fcal:" + std::to_string(s.limit) + ":" + unit + ":" + zone;
}

std::string unix_ns_arg(std::int64_t ns) { return std::to_string(std::max<std::int64_t>(0, ns)); }

}  // namespace

std::string_view decide_script() { return kScript; }

std::string script_sha1() {
    static const std::string sha = [] {
        std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
        unsigned int len = 0;
        if (EVP_Digest(kScript.data(), kScript.size(), md.data(), &len, EVP_sha1(), nullptr) != 1)
            return std::string();
        static constexpr char kHex[] = "0123456789abcdef";
        std::string out;
        for (unsigned int i = 0; i < len; ++i) {
            out.push_back(kHex[md[i] >> 4]);
            out.push_back(kHex[md[i] & 0xf]);
        }
        return out;
    }();
    return sha;
}

Call build_call(std::span<const KeyedLimits> keyed, std::uint64_t cost, std::string_view key_prefix,
                std::int64_t unix_ns_for_calendars, Tagging tagging) {
    Call call;
    std::size_t limits = 0;
    for (const auto& k : keyed)
        limits += k.specs.size();
    call.keys.reserve(limits);
    call.args.reserve(2 + limits * kArgsPerLimit);
    call.args.push_back(std::to_string(cost));
    call.args.push_back(unix_ns_arg(unix_ns_for_calendars));
    const std::string first_tag = keyed.empty() ? std::string() : hex16(fnv1a64(keyed.front().key));
    for (std::size_t g = 0; g < keyed.size(); ++g) {
        const auto& k = keyed[g];
        const std::string tag = tagging == Tagging::first_key ? first_tag : hex16(fnv1a64(k.key));
        for (std::size_t j = 0; j < k.specs.size(); ++j) {
            const LimitSpec& s = k.specs[j];
            std::string name;
            name.reserve(key_prefix.size() + tag.size() + k.key.size() + 48);
            name.append(key_prefix).append("{").append(tag).append("}").append(key_digest(k.key));
            name.append("|").append(std::to_string(j)).append("|").append(shape(s));
            call.keys.push_back(std::move(name));

            std::string start = "0", end = "0";
            if (s.algorithm == Algorithm::fixed_window && s.calendar != Calendar::none) {
                const Window w = calendar_window(s.calendar, unix_ns_for_calendars, s.zone.get());
                start = unix_ns_arg(w.start);
                end = unix_ns_arg(w.end);
            }
            call.args.push_back(std::to_string(algorithm_code(s)));
            call.args.push_back(std::to_string(s.limit));
            call.args.push_back(std::to_string(s.period_ns));
            call.args.push_back(std::to_string(s.burst ? s.burst : s.limit));
            call.args.push_back(std::move(start));
            call.args.push_back(std::move(end));
            call.args.push_back(std::to_string(g));
            call.args.push_back(std::to_string(j));
        }
    }
    return call;
}

std::optional<Decision> decode_reply(std::span<const long long> values, std::string* error,
                                     std::int64_t* server_time_ns) {
    auto fail = [&](std::string why) -> std::optional<Decision> {
        if (error)
            *error = "redis decide reply: " + std::move(why);
        return std::nullopt;
    };
    if (values.size() != kReplySize)
        return fail("expected " + std::to_string(kReplySize) + " integers, got " + std::to_string(values.size()));
    if (values[0] != 0 && values[0] != 1)
        return fail("allowed flag " + std::to_string(values[0]));
    for (std::size_t i = 1; i < kReplySize; ++i)
        if (values[i] < 0)
            return fail("negative value at " + std::to_string(i));
    if (values[9] >= 1'000'000)
        return fail("microseconds out of range");
    constexpr long long kNever = 9'200'000'000'000'000'000LL;  // the script's saturation
    auto duration = [&](long long v) {
        return v >= kNever ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(v);
    };
    if (values[8] > std::numeric_limits<std::int64_t>::max() / 1'000'000'000LL - 1)
        return fail("server time out of range");
    Decision d;
    d.allowed = values[0] == 1;
    d.tightest_group = static_cast<std::size_t>(values[2]);
    d.tightest_index = static_cast<std::size_t>(values[3]);
    d.tightest.allowed = d.allowed;
    d.tightest.limit = static_cast<std::uint64_t>(values[4]);
    d.tightest.remaining = static_cast<std::uint64_t>(values[5]);
    d.tightest.reset_ns = duration(values[6]);
    d.tightest.retry_after_ns = duration(values[7]);
    if (server_time_ns)
        *server_time_ns = static_cast<std::int64_t>(values[8]) * 1'000'000'000LL + static_cast<std::int64_t>(values[9]) * 1000;
    return d;
}

}  // namespace rlgate::ratelimit::redis
