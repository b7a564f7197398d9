// SPDX-License-Identifier: BSD-2-Clause
// The npm rate-limiter-flexible's RateLimiterRedis (with ioredis) driven like
// `rlgate-bench l7redis`: CONCURRENCY decisions in flight, random keys far
// under their limit, then one hot key far over it. Prints one JSON line.
// Usage: node rate-limiter-flexible.js PORT SECONDS CONCURRENCY KEYS
'use strict';
const { RateLimiterRedis } = require('rate-limiter-flexible');
const Redis = require('ioredis');

const [port, seconds, concurrency, keys] = process.argv.slice(2).map(Number);

// Redis's own CPU time so far (INFO cpu: used_cpu_user + used_cpu_sys), seconds.
async function redisCpu(redis) {
  const info = await redis.info('cpu');
  let total = 0;
  for (const field of ['used_cpu_user', 'used_cpu_sys']) {
    const m = info.match(new RegExp('^' + field + ':([0-9.]+)', 'm'));
    if (m) total += Number(m[1]);
  }
  return total;
}

async function scenario(name, limiter, keyOf, redis) {
  const cpuBefore = await redisCpu(redis);
  const end = Date.now() + seconds * 1000;
  let decisions = 0, allowed = 0;
  const worker = async (id) => {
    while (Date.now() < end) {
      try {
        await limiter.consume(keyOf(), 1);
        allowed++;
      } catch (rejection) {
        if (rejection instanceof Error) throw rejection;  // a Redis error, not a refusal
      }
      decisions++;
    }
  };
  const start = Date.now();
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const elapsed = (Date.now() - start) / 1000;
  const redisCpuUs = (await redisCpu(redis) - cpuBefore) * 1e6;
  return { name, seconds: elapsed, decisions, allowed, redis_cpu_us_per_decision: decisions ? redisCpuUs / decisions : 0 };
}

(async () => {
  const redis = new Redis({ port, host: '127.0.0.1', enableOfflineQueue: true, lazyConnect: false });
  const roomy = new RateLimiterRedis({ storeClient: redis, keyPrefix: 'rlf-roomy', points: 1e9, duration: 60 });
  const tight = new RateLimiterRedis({ storeClient: redis, keyPrefix: 'rlf-tight', points: 1, duration: 3600 });
  const results = [];
  results.push(await scenario('random_keys', roomy, () => 'k' + Math.floor(Math.random() * keys), redis));
  results.push(await scenario('hot_key_over_limit', tight, () => 'hot', redis));
  console.log(JSON.stringify({ concurrency, results }));
  redis.disconnect();
})().catch((e) => { console.error(e); process.exit(1); });
