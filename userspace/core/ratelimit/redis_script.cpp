// SPDX-License-Identifier: BSD-2-Clause
#include "core/ratelimit/redis_script.hpp"
#include "core/ratelimit/siphash.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <array>
#include <limits>
#include <charconv>
#include <map>

namespace rlgate::ratelimit::redis {
namespace {

// Lua 5.1 (Redis): numbers are doubles, exact for integers below 2^53. Unix
// ns (~1.7e18) are not, so every time inside is "ns since the second the
// server's TIME fell in" (NOW < 1e9), and absolute times travel as seconds +
// ns (states, ARGV windows split in the script) or as Unix µs (the sliding
// log's scores: every entry is a server TIME, a whole µs). Every formula is
// check()'s, step for step in the same double operations, so the results are
// the same to the nanosecond for the same instant.
//
// Speed: Redis runs the whole chunk on every call, in an interpreter where a
// VM instruction costs ~50 machine instructions and a C call (math.floor,
// tonumber ...) ~400, and each redis.call ~10000 (callgrind, Redis 7.0). So:
// no helper closures or per-limit tables (v1 made ~20 closures and a dozen
// tables per call, matched every number with string.match, formatted the
// state with string.format and evaluated every limit twice), numbers coerced
// by arithmetic (`s + 0`: one strtod, tonumber does two), states packed with
// struct. What was left for one GCRA limit was mostly Redis's own: the EVALSHA
// with its 10 arguments, TIME, GET, SET and the 10-integer reply; v3 pays the
// EVALSHA, TIME and one MGET once per batch of decisions, leaving about one
// SET and the arithmetic per decision.
constexpr std::string_view kScript = R"LUA(-- rlgate decide v4: see userspace/core/ratelimit/redis_script.hpp
-- Several decisions per call (a batch), each with its own limits, cost and
-- dry flag, all on one reading of the server's clock: Redis pays the EVALSHA,
-- TIME, the reads (one MGET) and the reply once per batch, each distinct
-- limit is parsed once, and each key's state is written once at the end,
-- whatever the number of decisions that charged it. Written for speed (Lua
-- 5.1 runs every line of this per call): no closure or table is made per
-- limit, every limit's arithmetic is inline in one loop (pass 1 judges, pass
-- 2 charges; one limit: both at once), C calls are few, and states are packed
-- doubles (struct), cheaper to read and write than decimal text.
local floor, ceil, call = math.floor, math.ceil, redis.call
local E9, MAX = 1000000000, 9.2e18
local nk, na = #KEYS, #ARGV

-- The distinct limits of the batch: ARGV[1] their number, then 7 each
-- (algorithm, limit, period, capacity; for a calendar window its start, end
-- and the caller's clock, Unix ns). ARGV numbers are read by arithmetic
-- coercion (one strtod; tonumber takes two): a non-numeric one is a Lua error
-- (the whole call), a negative or fractional one (or inf, nan: x % 1 is NaN)
-- an rlgate error for the decisions using it.
local S = tonumber(ARGV[1])
if not S or S < 0 or S % 1 ~= 0 or 1 + 7 * S >= na then return redis.error_reply('ERR rlgate: bad limit count') end
local S_algo, S_L, S_P, S_C, S_L1, S_int, S_tol, S_bad = {}, {}, {}, {}, {}, {}, {}, {}
for s = 1, S do
  local o = 2 + (s - 1) * 7
  local algo, L, P, C = ARGV[o] + 0, ARGV[o + 1] + 0, ARGV[o + 2] + 0, ARGV[o + 3] + 0
  if algo < 1 or algo > 6 or P < 1 or L < 0 or C < 0 or (algo % 1 + L % 1 + P % 1 + C % 1) ~= 0 then
    S_bad[s], algo = true, 0
  end
  local L1 = L < 1 and 1 or L  -- ns_for(u) = ceil(u * P / L1), saturated at MAX
  S_algo[s], S_L[s], S_P[s], S_C[s], S_L1[s] = algo, L, P, C, L1
  if algo == 2 then  -- GCRA's emission interval and tolerance (whole intervals: C of them fit in a burst)
    local interval = ceil(P / L1)
    if interval >= MAX then interval = MAX end
    local tolerance = interval * C
    S_int[s], S_tol[s] = interval, tolerance >= MAX and MAX or tolerance
  end
end

-- Then the decisions, in runs that share one header: the number of runs;
-- per run its length, the header (limits n, written -n-1 for a dry run; the
-- cost) and n limit numbers; each decision of a run has n keys, its next in
-- KEYS. Concurrent requests mostly share a header, so a batch of them costs
-- Redis one key each, not four arguments. A run of decisions without limits
-- is one long (nothing bounds its length by keys). The layout is checked
-- whole, and every number of it coerced (a non-numeric one fails the call
-- here), before anything is read or written.
local first = 2 + 7 * S     -- ARGV index of the run count
local R = tonumber(ARGV[first])
if not R or R < 1 or R % 1 ~= 0 or first + 3 * R > na then return redis.error_reply('ERR rlgate: bad run count') end
local o, k = first + 1, 0
for r = 1, R do
  if o + 2 > na then return redis.error_reply('ERR rlgate: bad layout at run ' .. r) end
  local len, n, cost = ARGV[o] + 0, ARGV[o + 1] + 0, ARGV[o + 2] + 0
  if n < 0 then n = -n - 1 end
  if len < 1 or len % 1 ~= 0 or n < 0 or n % 1 ~= 0 or o + 2 + n > na or (n == 0 and len ~= 1) then
    return redis.error_reply('ERR rlgate: bad layout at run ' .. r)
  end
  for i = 1, n do local _ = ARGV[o + 2 + i] + 0 end
  o, k = o + 3 + n, k + len * n
end
if o - 1 ~= na or k ~= nk then
  return redis.error_reply('ERR rlgate: expected ' .. (o - 1) .. ' arguments and ' .. k .. ' keys, got ' .. na .. ' and ' .. nk)
end

local t = call('TIME')
local now_s, now_us = t[1] + 0, t[2] + 0
local NOW = now_us * 1000                   -- every time below: ns since the second now_s began
local NOW_US = now_s * 1000000 + now_us     -- Unix us, exact

-- String states by key (false: none), as charged so far in this call, with
-- their TTLs; `dirty`: the keys to write at the end, in order.
local state, x_of, x_set, dirty = {}, {}, {}, {}
for c = 1, nk, 1000 do  -- every key (a sliding log's reads as false); bounded, so unpack stays within Lua's C stack
  local last = c + 999 < nk and c + 999 or nk
  local got = call('MGET', unpack(KEYS, c, last))
  for j = c, last do state[KEYS[j]] = got[j - c + 1] end
end

-- Decimal Unix ns (a calendar window) as ns since now_s, split so it stays exact.
local function parse_ns(s)
  if not string.find(s, '^%d+$') then return nil end
  local len = #s
  if len <= 9 then return (0 - now_s) * E9 + s end
  return (string.sub(s, 1, len - 9) - now_s) * E9 + string.sub(s, len - 8)
end
local function mod(A, B)  -- floor modulo, exact below 2^53
  local r = A - floor(A / B) * B
  if r < 0 then r = r + B elseif r >= B then r = r - B end
  return r
end
-- Window starts (length P, aligned on Unix 0) by limit number, computed once per call.
local W_start = {}

-- A charged key's expiry (Unix s): the first whole second at least 1 s after
-- its state turns fresh (`ttl` ns from now), never before it was to (`x`, as
-- read), so that most charges leave it alone (SET KEEPTTL, cheaper than PXAT).
local function expiry(ttl, x)
  local xn = now_s + floor((NOW + (ttl > 0 and ttl or 0)) / E9) + 2
  if xn > now_s + 1e10 then xn = now_s + 1e10 end
  if x and x > xn and x <= now_s + 1e10 then xn = x end  -- a foreign x: no further than the cap
  return xn
end

-- A charged key's new state, kept for the decisions after it and written once
-- at the end; `x` (as read) is what its TTL is now.
local ndirty = 0
local function keep(key, new, x, xn)
  if not x_of[key] then
    ndirty = ndirty + 1
    dirty[ndirty] = key
    x_set[key] = x or false
  end
  state[key], x_of[key] = new, xn
end

-- The small numbers of the headers repeat across a batch (limits "1", cost
-- "1", limit number "1"): each distinct string is coerced once.
local NUM = {}

local replies = {struct.pack('<dd', now_s, now_us)}

-- The common case, a run of decisions of one GCRA limit charged for real:
-- the general path's arithmetic for it (step for step, same results) without
-- the bookkeeping of several limits, passes and algorithms, with what depends
-- only on the limit and the cost worked out once per run, expiry() and keep()
-- written inline. Writes the run's replies from replies[d] on and answers
-- where the next goes.
local function gcra_run(ko, len, s, cost, d)
  local C, interval, tolerance = S_C[s], S_int[s], S_tol[s]
  local inc = interval * cost
  if inc >= MAX then inc = MAX end
  local fits = cost <= C
  local limit = C >= MAX and MAX or C
  local cap = now_s + 1e10
  for j = 1, len do
    local key = KEYS[ko + j]
    local raw, tat, x = state[key], NOW, nil
    if raw then
      local a_s, a_n
      if #raw == 24 then a_s, a_n, x = struct.unpack('<ddd', raw) end
      if a_s and a_n >= 0 and a_n < E9 then
        local a = (a_s - now_s) * E9 + a_n
        if a > NOW then tat = a end
      end
    end
    local new_tat = tat + inc
    if new_tat > MAX then new_tat = MAX end
    local allow_at = new_tat - tolerance
    local allowed = fits and allow_at <= NOW
    local used_until = allowed and new_tat or tat
    local slack = tolerance - (used_until - NOW)
    local rem = 0
    if not (slack <= 0 or interval <= 0) then  -- floor(slack / interval), exactly
      local q = floor(slack / interval)
      local r = slack - q * interval
      if r < 0 then q = q - 1 elseif r >= interval then q = q + 1 end
      rem = q
    end
    local reset = used_until - NOW
    if reset < 0 then reset = 0 end
    local retry = 0
    if not allowed then
      if not fits then retry = reset else retry = allow_at - NOW if retry < 0 then retry = 0 end end
    end
    if allowed then
      local q = floor(new_tat / E9)  -- new_tat as Unix seconds + ns
      local r = new_tat - q * E9
      if r < 0 then q = q - 1 elseif r >= E9 then q = q + 1 end
      local ttl = new_tat - NOW  -- expiry(), inline
      local xn = now_s + floor((NOW + (ttl > 0 and ttl or 0)) / E9) + 2
      if xn > cap then xn = cap end
      if x and x > xn and x <= cap then xn = x end
      if not x_of[key] then  -- keep(), inline
        ndirty = ndirty + 1
        dirty[ndirty] = key
        x_set[key] = x or false
      end
      state[key], x_of[key] = struct.pack('<ddd', now_s + q, new_tat - q * E9, xn), xn
    end
    if not (rem >= 0) then rem = 0 elseif rem >= MAX then rem = MAX end
    if not (reset >= 0) then reset = 0 elseif reset >= MAX then reset = MAX elseif reset % 1 ~= 0 then reset = floor(reset) end
    if not (retry >= 0) then retry = 0 elseif retry >= MAX then retry = MAX elseif retry % 1 ~= 0 then retry = floor(retry) end
    replies[d] = struct.pack('<dddddd', allowed and 1 or 0, 0, limit, rem, reset, retry)
    d = d + 1
  end
  return d
end

-- One decision: its limits are KEYS[ko + 1 ..], its header ARGV[ao ..].
-- Answers its record of the reply (6 doubles; an error: 2, its code, the limit).
local function decide(ko, ao)
  local a1, a2 = ARGV[ao], ARGV[ao + 1]
  local n, cost = NUM[a1], NUM[a2]
  if not n then n = a1 + 0 NUM[a1] = n end
  if not cost then cost = a2 + 0 NUM[a2] = cost end
  local dry = n < 0  -- judge only, write nothing
  if dry then n = -n - 1 end
  if cost < 0 or cost % 1 ~= 0 then return struct.pack('<dddddd', 2, 1, 0, 0, 0, 0) end  -- bad cost
  if n == 0 then return struct.pack('<dddddd', 1, 0, 0, 0, 0, 0) end

  local logs        -- sliding logs of this decision, by key
  local CALLER_NOW  -- the caller's clock, for a calendar window
  local allowed, pass2 = true, false
  local commit = n == 1 and not dry  -- one limit: judged and charged in one pass
  local bi, b_allowed, b_limit, b_rem, b_reset, b_retry
  local i = 1
  while true do
    local a3 = ARGV[ao + 1 + i]
    local s = NUM[a3]
    if not s then s = a3 + 0 NUM[a3] = s end
    local algo = S_algo[s]
    if not algo or S_bad[s] then return struct.pack('<dddddd', 2, 2, i, 0, 0, 0) end  -- bad limit
    local L, P, C, L1 = S_L[s], S_P[s], S_C[s], S_L1[s]
    local key = KEYS[ko + i]
    local v_allowed, v_limit, v_rem, v_reset, v_retry
    if algo == 3 then
      -- Sliding log, a sorted set (score: admission time in Unix us, member "<us>:<n>").
      -- Entries (Unix us) at or before `cut` have left the log; admitted units
      -- wait in `pending` until every limit has admitted.
      if not logs then logs = {} end
      local st = logs[key]
      if not st then
        local r = redis.pcall('ZRANGE', key, '-1', '-1', 'WITHSCORES')
        if r.err then return struct.pack('<dddddd', 2, 5, i, 0, 0, 0) end  -- not a sorted set: not ours
        local top = r[2] and r[2] + 0 or nil  -- the newest entry, Unix us
        st = {back = top, top = top, pending = 0, P = P}  -- back: the newest once charged
        logs[key] = st
      end
      local newest = st.back and math.max(NOW_US, st.back) or NOW_US
      local cut = newest - ceil(P / 1000)
      if st.cut ~= cut then
        st.cut = cut
        st.stored = call('ZCOUNT', key, '(' .. string.format('%d', cut), '+inf')
      end
      local count = st.stored + st.pending
      local back = nil
      if st.pending > 0 then back = newest elseif st.back and st.back > cut then back = st.back end
      v_limit = L
      v_allowed = count + cost <= L
      local used = v_allowed and count + cost or count
      v_rem = L - math.min(L, used)
      if count == 0 and not v_allowed then
        v_reset = 0
      else
        v_reset = math.max(0, (((v_allowed or count == 0) and newest or back) - now_s * 1000000) * 1000 + P - NOW)
      end
      v_retry = 0
      if not v_allowed then
        if cost > L then
          v_retry = math.max(0, v_reset)
        else
          local idx = count + cost - L - 1  -- the entry, oldest first, whose expiry makes room
          local at = newest
          if idx < st.stored then
            local expired = call('ZCOUNT', key, '-inf', string.format('%d', cut))
            local r = call('ZRANGE', key, string.format('%d', expired + idx), string.format('%d', expired + idx), 'WITHSCORES')
            at = r[2] + 0
          end
          v_retry = math.max(1, (at - now_s * 1000000) * 1000 + P - NOW)
        end
      end
      if commit and v_allowed then
        st.pending, st.back = st.pending + cost, newest
      end
    else
      -- Every other algorithm: a string of little-endian doubles, times as Unix
      -- seconds + ns (a: last refill / TAT / window start, e: calendar window end):
      --   token bucket a_s a_n tokens   GCRA a_s a_n   sliding window a_s a_n current previous
      --   fixed window a_s a_n current   calendar window a_s a_n current e_s e_n
      local raw = state[key]
      local started, a, tk, cu, pr, e = false, 0, 0, 0, 0, 0
      local x  -- the key's expiry (Unix s) as last written; nil: a fresh key
      if raw then  -- a string of another length is garbage: start afresh
        local len, a_s, a_n, e_s, e_n = #raw
        if algo == 2 then
          if len == 24 then a_s, a_n, x = struct.unpack('<ddd', raw) end
        elseif algo == 1 then
          if len == 32 then a_s, a_n, tk, x = struct.unpack('<dddd', raw) end
        elseif algo == 4 then
          if len == 40 then a_s, a_n, cu, pr, x = struct.unpack('<ddddd', raw) end
        elseif algo == 5 then
          if len == 32 then a_s, a_n, cu, x = struct.unpack('<dddd', raw) end
        elseif len == 48 then
          a_s, a_n, cu, e_s, e_n, x = struct.unpack('<dddddd', raw)
          e = (e_s - now_s) * E9 + e_n
        end
        if a_s and a_n >= 0 and a_n < E9 then
          started, a = true, (a_s - now_s) * E9 + a_n
        end
      end

      local start, length, wend  -- windows
      if algo >= 4 then
        if algo == 6 then
          -- Calendar window [start, end) and the caller's clock, from the caller.
          local so = 2 + (s - 1) * 7
          local ws, we, caller = parse_ns(ARGV[so + 4]), parse_ns(ARGV[so + 5]), parse_ns(ARGV[so + 6])
          if not ws or not we or not caller or we <= ws then
            return struct.pack('<dddddd', 2, 4, i, 0, 0, 0)  -- bad calendar window
          end
          CALLER_NOW = caller
          start, length, wend = ws, we - ws, we
        elseif W_start[s] then
          length, start = P, W_start[s]
        else
          -- Start of the window of length P holding now, windows aligned on Unix 0.
          length = P
          local m
          if P % 1000 == 0 then
            local d = P / 1000
            local q = floor(NOW_US / d)
            m = NOW_US - q * d  -- exact floor modulo for integers below 2^53
            if m < 0 then m = m + d elseif m >= d then m = m - d end
            m = m * 1000
          else  -- (now_s * 1e9 + NOW) mod P, doubling and adding below 2^53
            local u, b, r = mod(now_s, P), mod(E9, P), 0
            while b > 0 do
              if b % 2 == 1 then r = mod(r + u, P) end
              u = mod(u + u, P)
              b = floor(b / 2)
            end
            m = mod(r + NOW, P)
          end
          start = NOW - m
          W_start[s] = start
        end
      end

      -- Each algorithm: check()'s arithmetic, step for step. The state after a
      -- charge goes to a2 (a), v2 (tokens or current), e (end), with its TTL:
      -- the time until it could not be told from a fresh key.
      local a2, v2, ttl
      if algo == 2 then  -- GCRA
        local interval, tolerance = S_int[s], S_tol[s]
        local tat = NOW
        if started and a > NOW then tat = a end
        local inc = interval * cost
        if inc >= MAX then inc = MAX end
        local new_tat = tat + inc
        if new_tat > MAX then new_tat = MAX end
        local allow_at = new_tat - tolerance
        v_limit = C
        v_allowed = cost <= C and allow_at <= NOW
        local used_until = v_allowed and new_tat or tat
        local slack = tolerance - (used_until - NOW)
        if slack <= 0 or interval <= 0 then
          v_rem = 0
        else  -- floor(slack / interval), exactly
          local q = floor(slack / interval)
          local r = slack - q * interval
          if r < 0 then q = q - 1 elseif r >= interval then q = q + 1 end
          v_rem = q
        end
        v_reset = used_until - NOW
        if v_reset < 0 then v_reset = 0 end
        v_retry = 0
        if not v_allowed then
          if cost > C then v_retry = v_reset else v_retry = allow_at - NOW if v_retry < 0 then v_retry = 0 end end
        end
        a2, ttl = new_tat, new_tat - NOW
      elseif algo == 1 then  -- token bucket
        local tokens, last = C, NOW
        if started then tokens, last = tk, a end
        if NOW > last then
          tokens = tokens + (NOW - last) * L / P
          if not (tokens < C) then tokens = C end
          last = NOW
        end
        v_limit = C
        v_allowed = cost <= tokens and cost <= C
        local left = v_allowed and tokens - cost or tokens
        v_rem = floor(left)
        v_reset = ceil((C - left) * P / L1)
        if v_reset >= MAX then v_reset = MAX end
        v_retry = 0
        if not v_allowed then
          if cost > C then
            v_retry = v_reset
          else
            v_retry = ceil((cost - tokens) * P / L1)
            if v_retry >= MAX then v_retry = MAX end
          end
        end
        a2, v2 = last, left
        ttl = last - NOW
        if ttl < 0 then ttl = 0 end
        ttl = ttl + v_reset
      elseif algo == 4 then  -- sliding window
        local current, previous = 0, 0
        if started then
          if a > start then start = a end
          if a == start then
            current, previous = cu, pr
          elseif a == start - length then
            previous = cu
          end
        end
        local elapsed = NOW - start
        if elapsed < 0 then elapsed = 0 end
        elapsed = elapsed / length
        if not (elapsed < 1.0) then elapsed = 1.0 end
        local weighted = previous * (1.0 - elapsed) + current
        v_limit = L
        v_allowed = weighted + cost <= L and cost <= L
        local used = v_allowed and weighted + cost or weighted
        v_rem = floor(L - used)
        if not (v_rem > 0) then v_rem = 0 end
        v_reset = start + 2 * length - NOW
        if v_reset < 0 then v_reset = 0 end
        v_retry = 0
        if not v_allowed then
          if cost > L then
            v_retry = v_reset
          elseif current + cost <= L then
            local excess = weighted + cost - L
            v_retry = ceil(excess / previous * length)
            if not (v_retry > 1) then v_retry = 1 end
          else
            local share = (current + cost - L) / current
            v_retry = (start + length - NOW) + ceil(share * length)
          end
        end
        a2, v2, ttl = start, current + cost, start + 2 * length - NOW
        pr = previous
      else  -- fixed window (5), calendar window (6)
        local newer = started and a > start  -- a clock behind ours (or stepped back): stay in the newer window
        local count = (started and a >= start) and cu or 0
        local window_start = newer and a or start
        local window_end
        if algo == 6 then
          if newer then window_end = e else window_end = wend end
        else
          window_end = window_start + length
        end
        v_limit = L
        v_allowed = count + cost <= L and cost <= L
        local used = v_allowed and count + cost or count
        v_rem = L - math.min(L, used)
        v_reset = window_end - (algo == 6 and CALLER_NOW or NOW)
        if v_reset < 0 then v_reset = 0 end
        v_retry = v_allowed and 0 or v_reset
        a2, v2, e, ttl = window_start, used, window_end, window_end - NOW
        if algo == 6 and window_end - CALLER_NOW > ttl then ttl = window_end - CALLER_NOW end
      end

      if commit and v_allowed then
        local q = floor(a2 / E9)  -- a2 as Unix seconds + ns
        local r = a2 - q * E9
        if r < 0 then q = q - 1 elseif r >= E9 then q = q + 1 end
        local a_s, a_n = now_s + q, a2 - q * E9
        local xn = expiry(ttl, x)
        local new
        if algo == 2 then
          new = struct.pack('<ddd', a_s, a_n, xn)
        elseif algo == 1 or algo == 5 then
          new = struct.pack('<dddd', a_s, a_n, v2, xn)
        elseif algo == 4 then
          new = struct.pack('<ddddd', a_s, a_n, v2, pr, xn)
        else
          q = floor(e / E9)
          r = e - q * E9
          if r < 0 then q = q - 1 elseif r >= E9 then q = q + 1 end
          new = struct.pack('<dddddd', a_s, a_n, v2, now_s + q, e - q * E9, xn)
        end
        keep(key, new, x, xn)
      end
    end

  if not pass2 then
      -- Denied: the one that makes the client wait longest; allowed: least left, then latest reset.
      local tighter
      if not bi then
        tighter = true
      elseif not v_allowed then
        tighter = b_allowed or v_retry > b_retry
      else
        tighter = b_allowed and (v_rem < b_rem or (v_rem == b_rem and v_reset > b_reset))
      end
      if tighter then
        bi, b_allowed, b_limit, b_rem, b_reset, b_retry = i, v_allowed, v_limit, v_rem, v_reset, v_retry
      end
      allowed = allowed and v_allowed
    end
    i = i + 1
    if i > n then
      if commit or not allowed or dry then break end
      i, pass2, commit = 1, true, true  -- every limit admits: charge them all, in order
    end
  end

  -- Sliding logs are written now (a later decision of the batch reads them back);
  -- string states at the end of the call.
  if logs and allowed and not dry then
    for key, st in pairs(logs) do
      local P = st.P
      local newest = st.back and math.max(NOW_US, st.back) or NOW_US
      call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', newest - ceil(P / 1000)))
      if st.pending > 0 then
        local score = string.format('%d', newest)
        local base = 0  -- members "<us>:1".."<us>:base" exist: only if the log's newest is at `newest`
        if st.top and st.top >= newest then base = call('ZCOUNT', key, score, score) end
        local args = {'ZADD', key}
        for m = 1, st.pending do
          args[#args + 1] = score
          args[#args + 1] = score .. ':' .. string.format('%d', base + m)
          if #args >= 1026 then call(unpack(args)) args = {'ZADD', key} end
        end
        if #args > 2 then call(unpack(args)) end
      end
      local ttl = (newest - now_s * 1000000) * 1000 + P - NOW
      local ms = ceil((ttl > 0 and ttl or 0) / 1000000) + 1000  -- rounded up to ms, plus kTtlMarginMs
      if ms > 1e13 then ms = 1e13 end
      call('PEXPIRE', key, ms)
    end
  end
  -- Integers in the reply: 0 for NaN and below, MAX ("never") and above, else whole.
  if not (b_limit >= 0) then b_limit = 0 elseif b_limit >= MAX then b_limit = MAX elseif b_limit % 1 ~= 0 then b_limit = floor(b_limit) end
  if not (b_rem >= 0) then b_rem = 0 elseif b_rem >= MAX then b_rem = MAX elseif b_rem % 1 ~= 0 then b_rem = floor(b_rem) end
  if not (b_reset >= 0) then b_reset = 0 elseif b_reset >= MAX then b_reset = MAX elseif b_reset % 1 ~= 0 then b_reset = floor(b_reset) end
  if not (b_retry >= 0) then b_retry = 0 elseif b_retry >= MAX then b_retry = MAX elseif b_retry % 1 ~= 0 then b_retry = floor(b_retry) end
  return struct.pack('<dddddd', allowed and 1 or 0, bi - 1, b_limit, b_rem, b_reset, b_retry)
end

local ko, ao, d = 0, first + 1, 2
for r = 1, R do
  local len, n, cost = ARGV[ao] + 0, ARGV[ao + 1] + 0, ARGV[ao + 2] + 0
  local s = n == 1 and ARGV[ao + 3] + 0
  if s and cost >= 0 and cost % 1 == 0 and S_algo[s] == 2 and not S_bad[s] then
    d = gcra_run(ko, len, s, cost, d)
    ko = ko + len
  else
    if n < 0 then n = -n - 1 end
    for j = 1, len do
      replies[d] = decide(ko, ao + 1)
      ko, d = ko + n, d + 1
    end
  end
  ao = ao + 3 + n
end
local at_ms = {}  -- PXAT's argument by expiry: few distinct in a batch
for j = 1, ndirty do
  local key = dirty[j]
  local x = x_of[key]
  if x == x_set[key] then
    call('SET', key, state[key], 'KEEPTTL')
  else
    local at = at_ms[x]
    if not at then
      at = string.format('%d', x * 1000)
      at_ms[x] = at
    end
    call('SET', key, state[key], 'PXAT', at)
  end
end
return table.concat(replies)
)LUA";

constexpr std::uint64_t fnv1a64(std::string_view s) {
    std::uint64_t h = 14695981039346656037ULL;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

// The low `Digits` hex digits of v, most significant first.
template <int Digits>
void append_hex(std::string& out, std::uint64_t v) {
    static constexpr char kHex[] = "0123456789abcdef";
    char buf[Digits];
    for (int i = Digits - 1; i >= 0; --i, v >>= 4)
        buf[i] = kHex[v & 0xf];
    out.append(buf, sizeof(buf));
}

void append_hex16(std::string& out, std::uint64_t v) { append_hex<16>(out, v); }
void append_hex8(std::string& out, std::uint32_t v) { append_hex<8>(out, v); }

constexpr std::uint32_t fold32(std::uint64_t h) { return static_cast<std::uint32_t>(h ^ (h >> 32)); }

void append_key_digest(std::string& out, std::string_view key) {
    // Fixed keys: the point is not secrecy of the hash but that API keys and
    // user names never appear in Redis (its dumps, MONITOR, replicas).
    append_hex16(out, siphash13(key, 0x726c676174652d6bULL, 0x6579732d76310000ULL));
    append_hex16(out, siphash13(key, 0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL));
}

void append_number(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
    out.append(buf, end);
}

}  // namespace

std::string key_digest(std::string_view key) {
    std::string out;
    out.reserve(32);
    append_key_digest(out, key);
    return out;
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

void append_shape(std::string& out, const LimitSpec& s) {
    const std::uint64_t capacity = s.burst ? s.burst : s.limit;
    auto rate = [&](const char* name, bool with_capacity) {
        out.append(name);
        append_number(out, s.limit);
        out.push_back(':');
        append_number(out, s.period_ns);
        if (with_capacity) {
            out.push_back(':');
            append_number(out, capacity);
        }
    };
    switch (s.algorithm) {
    case Algorithm::token_bucket: return rate("tb3:", true);
    case Algorithm::gcra: return rate("gcra3:", true);
    case Algorithm::sliding_log: return rate("slog:", false);
    case Algorithm::sliding_window: return rate("swin3:", false);
    case Algorithm::fixed_window: break;
    }
    if (s.calendar == Calendar::none)
        return rate("fwin3:", false);
    std::string zone = s.zone ? s.zone->name() : "UTC";
    std::replace(zone.begin(), zone.end(), '|', '_');  // '|' separates the name's parts
    const char* unit = s.calendar == Calendar::minute ? "minute" : s.calendar == Calendar::hour ? "hour" : "day";
    out.append("fcal3:");
    append_number(out, s.limit);
    out.append(":").append(unit).append(":").append(zone);
}

}  // namespace

std::string limit_shape(const LimitSpec& s) {
    std::string out;
    append_shape(out, s);
    return out;
}

std::uint32_t shape_id(const LimitSpec& s) { return fold32(fnv1a64(limit_shape(s))); }

namespace {

// Appends shape_id(s) as 8 hex digits, the shape's text written in `out`'s
// own buffer first (no string of its own: this runs for every limit of every
// request). Short key names cost Redis less (hashed at every read and write).
void append_shape_id(std::string& out, const LimitSpec& s) {
    const std::size_t at = out.size();
    append_shape(out, s);
    const std::uint32_t id = fold32(fnv1a64(std::string_view(out).substr(at)));
    out.resize(at);
    append_hex8(out, id);
}

}  // namespace

namespace {

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
                std::int64_t unix_ns_for_calendars, Tagging tagging, bool dry_run) {
    Call call;
    std::size_t limits = 0;
    for (const auto& k : keyed)
        limits += k.specs.size();
    call.keys.reserve(limits);
    call.limits.reserve(limits);
    call.positions.reserve(limits);
    call.cost = cost;
    call.dry_run = dry_run;
    const std::uint64_t first_tag = keyed.empty() ? 0 : fnv1a64(keyed.front().key);
    for (std::size_t g = 0; g < keyed.size(); ++g) {
        const auto& k = keyed[g];
        std::string base;  // <prefix>{<tag>}<digest>|
        base.reserve(key_prefix.size() + 2 + 16 + 32 + 1);
        base.append(key_prefix).push_back('{');
        // Per key, the digest tells keys apart and the tag only spreads slots: 32
        // bits do. With the first key's tag, the tag is what keeps one first
        // key's copy of a shared key from another's: 64 bits.
        if (tagging == Tagging::first_key)
            append_hex16(base, first_tag);
        else
            append_hex8(base, fold32(fnv1a64(k.key)));
        base.push_back('}');
        append_key_digest(base, k.key);
        base.push_back('|');
        for (std::size_t j = 0; j < k.specs.size(); ++j) {
            const LimitSpec& s = k.specs[j];
            std::string name;
            name.reserve(base.size() + 64);  // room for the shape's text while it is hashed
            name.append(base);
            append_number(name, j);
            name.push_back('|');
            append_shape_id(name, s);
            call.keys.push_back(std::move(name));

            std::string start = "0", end = "0", caller = "0";
            if (s.algorithm == Algorithm::fixed_window && s.calendar != Calendar::none) {
                const Window w = calendar_window(s.calendar, unix_ns_for_calendars, s.zone.get());
                start = unix_ns_arg(w.start);
                end = unix_ns_arg(w.end);
                caller = unix_ns_arg(unix_ns_for_calendars);
            }
            call.limits.push_back({std::to_string(algorithm_code(s)), std::to_string(s.limit), std::to_string(s.period_ns),
                                   std::to_string(s.burst ? s.burst : s.limit), std::move(start), std::move(end),
                                   std::move(caller)});
            call.positions.emplace_back(g, j);
        }
    }
    return call;
}

std::vector<std::string> evalsha_command(std::string_view sha, std::span<const Call> decisions) {
    // Each distinct limit once; a decision names its limits by number (1-based).
    std::map<const LimitArgs*, std::size_t, decltype([](const LimitArgs* a, const LimitArgs* b) { return *a < *b; })>
        numbers;
    std::vector<const LimitArgs*> distinct;
    std::vector<std::size_t> refs;  // every decision's, in order
    std::size_t keys = 0;
    for (const auto& d : decisions) {
        keys += d.keys.size();
        for (const auto& limit : d.limits) {
            const auto [it, fresh] = numbers.try_emplace(&limit, distinct.size() + 1);
            if (fresh)
                distinct.push_back(&limit);
            refs.push_back(it->second);
        }
    }
    // Runs: consecutive decisions with the same header (dry flag, cost, limit numbers).
    struct Run {
        std::size_t first, length, refs_at;
    };
    std::vector<Run> runs;
    std::size_t at = 0;
    for (std::size_t i = 0; i < decisions.size(); ++i) {
        const Call& d = decisions[i];
        const std::size_t n = d.limits.size();
        if (!runs.empty()) {
            const Run& r = runs.back();
            const Call& head = decisions[r.first];
            if (n > 0 && head.dry_run == d.dry_run && head.cost == d.cost && head.limits.size() == n &&
                std::equal(refs.begin() + static_cast<std::ptrdiff_t>(r.refs_at),
                           refs.begin() + static_cast<std::ptrdiff_t>(r.refs_at + n),
                           refs.begin() + static_cast<std::ptrdiff_t>(at))) {
                ++runs.back().length;
                at += n;
                continue;
            }
        }
        runs.push_back({i, 1, at});
        at += n;
    }
    std::vector<std::string> command;
    command.reserve(5 + keys + distinct.size() * kArgsPerLimit + runs.size() * kArgsPerRun + refs.size());
    command.emplace_back("EVALSHA");
    command.emplace_back(sha);
    command.push_back(std::to_string(keys));
    for (const auto& d : decisions)
        command.insert(command.end(), d.keys.begin(), d.keys.end());
    command.push_back(std::to_string(distinct.size()));
    for (const auto* limit : distinct)
        command.insert(command.end(), limit->begin(), limit->end());
    command.push_back(std::to_string(runs.size()));
    for (const Run& r : runs) {
        // length, limits (-limits - 1: a dry run), cost, then the limit numbers
        const Call& d = decisions[r.first];
        const auto n = static_cast<long long>(d.limits.size());
        command.push_back(std::to_string(r.length));
        command.push_back(std::to_string(d.dry_run ? -n - 1 : n));
        command.push_back(std::to_string(d.cost));
        for (std::size_t i = 0; i < d.limits.size(); ++i)
            command.push_back(std::to_string(refs[r.refs_at + i]));
    }
    return command;
}

namespace {

// Little-endian doubles (Lua's struct.pack "<d"), each a whole number the
// script clamped to [0, 9.2e18]; nullopt for anything else.
std::optional<long long> whole_number_at(std::string_view bytes, std::size_t index) {
    std::uint64_t bits = 0;
    for (std::size_t b = 0; b < sizeof(bits); ++b)
        bits |= std::uint64_t{static_cast<unsigned char>(bytes[index * sizeof(double) + b])} << (8 * b);
    const double v = std::bit_cast<double>(bits);
    if (!(v >= 0.0 && v <= 9.2e18) || v != std::floor(v))
        return std::nullopt;
    return static_cast<long long>(v);
}

}  // namespace

std::optional<BatchReply> decode_replies(std::span<const Call> calls, std::string_view reply, std::string* error) {
    auto fail = [&](std::string why) -> std::optional<BatchReply> {
        if (error)
            *error = "redis decide reply: " + std::move(why);
        return std::nullopt;
    };
    constexpr std::size_t kRecord = kReplySize * sizeof(double);
    const std::size_t expected = kReplyPrefix * sizeof(double) + calls.size() * kRecord;
    if (reply.size() != expected)
        return fail("expected " + std::to_string(expected) + " bytes, got " + std::to_string(reply.size()));
    const auto seconds = whole_number_at(reply, 0), micros = whole_number_at(reply, 1);
    if (!seconds || !micros || *micros >= 1'000'000 ||
        *seconds > std::numeric_limits<std::int64_t>::max() / 1'000'000'000LL - 1)
        return fail("server time out of range");
    BatchReply out;
    out.server_time_ns = *seconds * 1'000'000'000LL + *micros * 1000;
    out.decisions.resize(calls.size());
    out.errors.resize(calls.size());
    constexpr long long kNever = 9'200'000'000'000'000'000LL;  // the script's saturation
    auto duration = [&](long long v) {
        return v >= kNever ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(v);
    };
    for (std::size_t c = 0; c < calls.size(); ++c) {
        const std::string_view record = reply.substr(kReplyPrefix * sizeof(double) + c * kRecord, kRecord);
        std::array<long long, kReplySize> values{};
        bool whole = true;
        for (std::size_t i = 0; i < kReplySize && whole; ++i) {
            const auto v = whole_number_at(record, i);
            whole = v.has_value();
            values[i] = v.value_or(0);
        }
        const Call& call = calls[c];
        if (!whole) {
            out.errors[c] = "redis decide reply: decision " + std::to_string(c) + " has a value out of range";
            continue;
        }
        if (values[0] == 2) {  // the script refused this decision: values[1] says why, values[2] which limit
            static constexpr std::array<const char*, 6> kWhy = {"?", "bad cost", "bad limit", "?", "bad calendar window",
                                                                "a key of another type at limit"};
            out.errors[c] = std::string("redis decide: ") + kWhy.at(values[1] >= 1 && values[1] <= 5 ? values[1] : 0) +
                            (values[1] == 1 ? "" : " " + std::to_string(values[2]));
            continue;
        }
        // The tightest limit, by its place among the call's limits (0 and no limits: nothing was checked).
        const auto tightest = static_cast<std::size_t>(values[1]);
        if (values[0] > 1 || (tightest >= call.positions.size() && !(tightest == 0 && call.positions.empty()))) {
            out.errors[c] = "redis decide reply: decision " + std::to_string(c) + " is malformed";
            continue;
        }
        Decision d;
        d.allowed = values[0] == 1;
        if (!call.positions.empty()) {
            d.tightest_group = call.positions[tightest].first;
            d.tightest_index = call.positions[tightest].second;
        }
        d.tightest.allowed = d.allowed;
        d.tightest.limit = static_cast<std::uint64_t>(values[2]);
        d.tightest.remaining = static_cast<std::uint64_t>(values[3]);
        d.tightest.reset_ns = duration(values[4]);
        d.tightest.retry_after_ns = duration(values[5]);
        out.decisions[c] = d;
    }
    return out;
}

}  // namespace rlgate::ratelimit::redis
