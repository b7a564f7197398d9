#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# rlgate-l7's Redis store against the npm rate-limiter-flexible (RateLimiterRedis
# + ioredis), side by side on one redis-server started here on loopback:
# decisions/s, Redis commands/s and commands per decision, for random keys far
# under their limit and for one hot key far over it.
#   scripts/bench-l7-redis.sh [BUILD_DIR] [--seconds N] [--concurrency N]
# Needs redis-server, redis-cli, node and npm (the npm packages go to
# BUILD_DIR/bench-node, not into the repository).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
build=build/default
seconds=5 concurrency=64 keys=10000
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
for tool in redis-server redis-cli node npm; do
  command -v $tool >/dev/null || { echo "bench-l7-redis: $tool is missing" >&2; exit 1; }
done
bench=$build/userspace/tools/bench/rlgate-bench
[[ -x $bench ]] || { echo "bench-l7-redis: build $bench first" >&2; exit 1; }

node_dir=$build/bench-node
if [[ ! -d $node_dir/node_modules/rate-limiter-flexible || ! -d $node_dir/node_modules/ioredis ]]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm init -y >/dev/null && npm install --no-audit --no-fund rate-limiter-flexible ioredis >/dev/null)
fi
rlf_version=$(node -p "require('./$node_dir/node_modules/rate-limiter-flexible/package.json').version")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 16399)
dir=$(mktemp -d /tmp/rlgate-bench-redis.XXXXXX)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize no \
  >"$dir/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.05; done
commands() { redis-cli -p "$port" INFO stats | tr -d '\r' | sed -n 's/^total_commands_processed://p'; }

ours=$("$bench" l7redis --redis "127.0.0.1:$port" --seconds "$seconds" --concurrency "$concurrency" --keys "$keys" --json)
redis-cli -p "$port" FLUSHALL >/dev/null
# The same with token leasing (store.redis.lease_size 10): not exact per decision, see docs/l7.md.
leased=$("$bench" l7redis --redis "127.0.0.1:$port" --seconds "$seconds" --concurrency "$concurrency" --keys "$keys" \
  --lease 10 --json)
redis-cli -p "$port" FLUSHALL >/dev/null
# rate-limiter-flexible, once per scenario so that Redis's own command count splits.
before=$(commands)
theirs=$(NODE_PATH="$PWD/$node_dir/node_modules" node scripts/bench/rate-limiter-flexible.js "$port" "$seconds" \
  "$concurrency" "$keys")
after=$(commands)

python3 - "$ours" "$theirs" "$before" "$after" "$rlf_version" "$(redis-server --version | awk '{print $3}')" "$leased" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
before, after, version, redis = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
for r in json.loads(sys.argv[7])["results"]:
    ours["results"].append(dict(r, name=r["name"], label=r["name"] + " lease10"))
t = {r["name"]: r for r in theirs["results"]}
total_theirs = sum(r["decisions"] for r in theirs["results"])
print(f"redis {redis}, concurrency {ours['concurrency']}, rate-limiter-flexible {version}")
print(f"{'scenario':<28} {'rlgate dec/s':>13} {'rlf dec/s':>11} {'ratio':>7} {'rlgate trips/dec':>17} "
      f"{'rlgate cmds/dec':>16} {'rlgate cmds/s':>14}")
for r in ours["results"]:
    o = t[r["name"]]
    rlf = o["decisions"] / o["seconds"]
    print(f"{r.get('label', r['name']):<28} {r['decisions_per_sec']:>13.0f} {rlf:>11.0f} {r['decisions_per_sec'] / rlf:>6.2f}x "
          f"{r['round_trips_per_decision']:>17.3f} {r['redis_commands_per_decision']:>16.3f} {r['redis_commands_per_sec']:>14.0f}")
print("cmds: Redis's total_commands_processed, which counts the commands inside scripts too")
print(f"rate-limiter-flexible: {(after - before - 1) / max(total_theirs, 1):.3f} Redis commands per decision over both scenarios")
PY
