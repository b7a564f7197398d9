#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# rlgate-l7's forward-auth check against nginx limit_req serving `return 200`,
# side by side under wrk on loopback: requests/s and latency percentiles, for
# a caller under its limit (every request answered 200) and over it (429).
# Each server gets one worker pinned to CPU 0, wrk one thread on CPU 1.
#   scripts/bench-l7-http.sh [BUILD_DIR] [--seconds N] [--connections N]
set -euo pipefail

BUILD=${1:-build/default}
SECONDS_PER_RUN=10
CONNECTIONS=64
shift || true
while (($#)); do
  case "$1" in
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

L7="$BUILD/userspace/rlgate-l7"
for tool in nginx wrk taskset "$L7"; do
  command -v "$tool" >/dev/null || { echo "bench-l7-http: $tool not found (sudo scripts/setup-deps.sh --tests; build first)" >&2; exit 1; }
done
NGINX=$(command -v nginx)
CPUS=$(nproc)
SERVER_CPU=0
CLIENT_CPU=$((CPUS > 1 ? 1 : 0))

DIR=$(mktemp -d /tmp/rlgate-bench-l7.XXXXXX)
chmod 755 "$DIR"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

NGINX_PORT=18480
L7_PORT=18481
L7_OVER_PORT=18482
NGINX_OVER_PORT=18483
NGINX_RETURN_PORT=18484

# nginx: one worker, limit_req keyed on the client address, like rlgate-l7's anonymous tier.
mkdir -p "$DIR/nginx/logs"
cat >"$DIR/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log $DIR/nginx/logs/error.log warn;
pid $DIR/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx/tmp; proxy_temp_path $DIR/nginx/tmp;
  fastcgi_temp_path $DIR/nginx/tmp; uwsgi_temp_path $DIR/nginx/tmp; scgi_temp_path $DIR/nginx/tmp;
  limit_req_zone \$binary_remote_addr zone=under:10m rate=10000000r/s;
  limit_req_zone \$binary_remote_addr zone=over:10m rate=1r/m;
  limit_req_status 429;
  # limit_req runs in the preaccess phase, after "return" (rewrite phase) has
  # already answered: with "return 200" nginx never checks the limit. The
  # content here is an empty file, so limit_req does run.
  server {
    listen 127.0.0.1:$NGINX_PORT;
    keepalive_requests 1000000;
    location / { limit_req zone=under burst=1000000 nodelay; root $DIR/www; try_files /ok =404; }
  }
  server {
    listen 127.0.0.1:$NGINX_OVER_PORT;
    keepalive_requests 1000000;
    location / { limit_req zone=over; root $DIR/www; try_files /ok =404; }
  }
  server {
    listen 127.0.0.1:$NGINX_RETURN_PORT;
    keepalive_requests 1000000;
    location / { limit_req zone=over; return 200; }
  }
}
EOF
mkdir -p "$DIR/nginx/tmp" "$DIR/www"
: >"$DIR/www/ok"
chmod -R a+rX "$DIR/www"
taskset -c $SERVER_CPU "$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

l7_config() {  # port limit
  cat <<EOF
{
  "mode": "forward_auth",
  "listen": "127.0.0.1:$1",
  "anonymous_tier": "anonymous",
  "tiers": {"anonymous": {"limits": [{"limit": $2, "per": "1s", "algorithm": "token_bucket"}]}},
  "escalation": {"enabled": false},
  "log_level": "warn"
}
EOF
}
l7_config $L7_PORT 1000000000 >"$DIR/under.json"
l7_config $L7_OVER_PORT 1 >"$DIR/over.json"
USER_OPT=()
[[ $EUID -eq 0 ]] && USER_OPT=(--user nobody)
for cfg in under over; do
  taskset -c $SERVER_CPU "$L7" --config "$DIR/$cfg.json" --threads 1 "${USER_OPT[@]}" &
  PIDS+=($!)
done

for port in $NGINX_PORT $NGINX_OVER_PORT $NGINX_RETURN_PORT $L7_PORT $L7_OVER_PORT; do
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.05
  done
done

# wrk's --latency table: requests/s and the 50/99th percentiles (in microseconds).
run() {  # label url [header]
  local out
  if [[ -n "${3:-}" ]]; then
    out=$(taskset -c $CLIENT_CPU wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency -H "$3" "$2")
  else
    out=$(taskset -c $CLIENT_CPU wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$2")
  fi
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  printf '%-44s %12s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
  echo "$rps" >"$DIR/$4.rps"
}

echo "wrk -t1 -c$CONNECTIONS -d${SECONDS_PER_RUN}s on CPU $CLIENT_CPU; each server one worker on CPU $SERVER_CPU"
run "nginx 'limit_req; return 200' (limit never runs)" "http://127.0.0.1:$NGINX_RETURN_PORT/api/x" "" nginx_return
run "nginx limit_req + empty file (under limit)" "http://127.0.0.1:$NGINX_PORT/api/x" "" nginx_under
run "rlgate-l7 forward-auth /check (under limit)" "http://127.0.0.1:$L7_PORT/check" "X-Forwarded-Uri: /api/x" l7_under
run "nginx limit_req (over limit: 429)" "http://127.0.0.1:$NGINX_OVER_PORT/api/x" "" nginx_over
run "rlgate-l7 forward-auth /check (over limit: 429)" "http://127.0.0.1:$L7_OVER_PORT/check" "X-Forwarded-Uri: /api/x" l7_over
awk -v a="$(cat "$DIR/l7_under.rps")" -v b="$(cat "$DIR/nginx_under.rps")" -v c="$(cat "$DIR/l7_over.rps")" \
    -v d="$(cat "$DIR/nginx_over.rps")" -v e="$(cat "$DIR/nginx_return.rps")" \
    'BEGIN { printf "ratio rlgate-l7 / nginx limit_req: under the limit %.2f, over the limit %.2f (goal >= 1.00); / nginx return 200: %.2f\n", a / b, c / d, a / e }'
