#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# rlgate-l7's Redis store against the npm rate-limiter-flexible (RateLimiterRedis
# + ioredis), side by side on one redis-server started here on loopback:
# decisions/s, Redis commands/s and commands per decision, for random keys far
# under their limit and for one hot key far over it. Both run ROUNDS times,
# interleaved (ours, ours with leasing, theirs, again...), and the table shows
# each one's median: on a shared 2-core host one run moves by 20 % or more.
#   scripts/bench-l7-redis.sh [BUILD_DIR] [--seconds N] [--concurrency N] [--rounds N]
# Needs redis-server, redis-cli, node and npm (the npm packages go to
# BUILD_DIR/bench-node, not into the repository).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
build=build/default
seconds=5 concurrency=64 keys=10000 rounds=3
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
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

ours=() leased=() theirs=() counted=()
for ((round = 1; round <= rounds; round++)); do
  ours+=("$("$bench" l7redis --redis "127.0.0.1:$port" --seconds "$seconds" --concurrency "$concurrency" --keys "$keys" --json)")
  redis-cli -p "$port" FLUSHALL >/dev/null
  # The same with token leasing (store.redis.lease_size 10): not exact per decision, see docs/l7.md.
  leased+=("$("$bench" l7redis --redis "127.0.0.1:$port" --seconds "$seconds" --concurrency "$concurrency" --keys "$keys" \
    --lease 10 --json)")
  redis-cli -p "$port" FLUSHALL >/dev/null
  # rate-limiter-flexible: Redis's own command count around it splits its commands per decision.
  before=$(commands)
  theirs+=("$(NODE_PATH="$PWD/$node_dir/node_modules" node scripts/bench/rate-limiter-flexible.js "$port" "$seconds" \
    "$concurrency" "$keys")")
  after=$(commands)
  counted+=("$((after - before - 1))")
  redis-cli -p "$port" FLUSHALL >/dev/null
done

python3 - "$rlf_version" "$(redis-server --version | awk '{print $3}')" "$rounds" "${ours[@]}" "${leased[@]}" \
  "${theirs[@]}" "${counted[@]}" <<'PY'
import json, statistics, sys
version, redis, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = sys.argv[4:]
ours, leased, theirs = (
    [json.loads(x) for x in runs[i * rounds:(i + 1) * rounds]] for i in range(3))
counted = [int(x) for x in runs[3 * rounds:]]

def by_name(results, label_suffix=""):
    out = {}
    for run in results:
        for r in run["results"]:
            out.setdefault(r["name"] + label_suffix, []).append(r)
    return out

mine = by_name(ours)
mine.update(by_name(leased, " lease10"))
rlf = by_name(theirs)
median = statistics.median
print(f"redis {redis}, concurrency {ours[0]['concurrency']}, rate-limiter-flexible {version}, "
      f"median of {rounds} interleaved rounds")
print(f"{'scenario':<28} {'rlgate dec/s':>13} {'rlf dec/s':>11} {'ratio':>7} {'rlgate trips/dec':>17} "
      f"{'rlgate cmds/dec':>16} {'Redis CPU us/dec rlgate/rlf':>28}  rlgate runs / rlf runs")
for label, rs in mine.items():
    name = rs[0]["name"]
    o = median(r["decisions_per_sec"] for r in rs)
    t_runs = [r["decisions"] / r["seconds"] for r in rlf[name]]
    t = median(t_runs)
    print(f"{label:<28} {o:>13.0f} {t:>11.0f} {o / t:>6.2f}x "
          f"{median(r['round_trips_per_decision'] for r in rs):>17.3f} "
          f"{median(r['redis_commands_per_decision'] for r in rs):>16.3f} "
          f"{median(r['redis_cpu_us_per_decision'] for r in rs):>14.2f} / "
          f"{median(r['redis_cpu_us_per_decision'] for r in rlf[name]):<11.2f}  "
          + " ".join("%.0f" % r["decisions_per_sec"] for r in rs) + " / " + " ".join("%.0f" % x for x in t_runs))
print("cmds: Redis's total_commands_processed, which counts the commands inside scripts too; "
      "Redis CPU: its used_cpu_user + used_cpu_sys over the run, per decision")
total = sum(r["decisions"] for run in theirs for r in run["results"])
print(f"rate-limiter-flexible: {sum(counted) / max(total, 1):.3f} Redis commands per decision over both scenarios")
PY
