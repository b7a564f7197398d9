#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# rlgate-l7 behind nginx's auth_request, with the configs of
# docs/l7-integration.md: rlgate-l7 (forward_auth, "deny_status": 403), a
# stand-in API (a second nginx server answering "upstream ok") and the
# proxy, all on free ports of 127.0.0.1. Checks what a client sees: three
# anonymous requests pass with the rate-limit headers, the fourth gets
# nginx's 429 (Retry-After, headers, JSON body), the premium key still
# passes, a second client address has its own budget (rlgate-l7 keys on the
# X-Forwarded-For nginx sets, not on nginx's own address), and spoofed
# X-Forwarded-For / Forwarded / X-Original-URI headers change nothing.
#
# Usage: nginx_forward_auth.sh PATH/TO/rlgate-l7
# Exit: 0 passed, 1 failed, 77 skipped (nginx, its auth_request module or
# curl missing; root without a 'nobody' user). With CI=true a missing
# prerequisite is a failure, never a skip.
set -euo pipefail

L7=${1:-}
# shellcheck source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"

[[ -n "$L7" && -x "$L7" ]] || fail "usage: $0 PATH/TO/rlgate-l7 (got '${L7}')"
require_tools nginx curl
nginx -V 2>&1 | grep -q -- --with-http_auth_request_module || skip "nginx lacks http_auth_request_module"
l7_user_args
make_workdir

PUB=$(free_port)
L7_PORT=$(free_port)
APP=$(free_port)
CLIENT_A=127.0.0.2
CLIENT_B=127.0.0.3

# rlgate-l7: the doc's config, ports and escalation socket replaced.
doc_block l7.json |
    sed -e "s/127\.0\.0\.1:8081/127.0.0.1:$L7_PORT/" -e "s|/run/rlgate/escalate.sock|$WORK/escalate.sock|" \
        >"$WORK/l7.json"
no_placeholders "$WORK/l7.json"
grep -q '"deny_status": 403' "$WORK/l7.json" || fail "the doc's l7.json lost \"deny_status\": 403 (nginx needs it)"

# nginx: the doc's server blocks inside a minimal main config of the test's
# own (paths in $WORK), plus the stand-in API.
doc_block nginx.conf |
    sed -e "s/listen 8080;/listen 127.0.0.1:$PUB;/" -e "s/127\.0\.0\.1:8081/127.0.0.1:$L7_PORT/" \
        -e "s/127\.0\.0\.1:9000/127.0.0.1:$APP/" >"$WORK/api.conf"
no_placeholders "$WORK/api.conf"
mkdir -p "$WORK/tmp"
user_line=""
[[ $EUID -eq 0 ]] && user_line="user nobody $(id -gn nobody);"
cat >"$WORK/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log notice;
events { worker_connections 64; }
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;

    include $WORK/api.conf;

    # The stand-in API.
    server {
        listen 127.0.0.1:$APP;
        location / {
            default_type text/plain;
            return 200 "upstream ok\n";
        }
    }
}
EOF
NGINX=(nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log")
"${NGINX[@]}" -t >"$WORK/nginx-t.log" 2>&1 || {
    cat "$WORK/nginx-t.log" >&2
    fail "nginx -t refuses the config"
}

start_l7 "$L7" "$WORK/l7.json" "$L7_PORT"
start_bg nginx "${NGINX[@]}" -g 'daemon off;'
wait_port "$PUB" nginx
wait_port "$APP" nginx
URL="http://127.0.0.1:$PUB/api/items?x=1"

# 1-3: anonymous client A passes, and sees its budget going down.
for i in 1 2 3; do
    req "a$i" --interface "$CLIENT_A" "$URL"
    expect_status "a$i" 200 "anonymous request $i"
    [[ $(body "a$i") == "upstream ok" ]] || fail "anonymous request $i: body '$(body "a$i")', expected 'upstream ok'"
    expect_header "a$i" X-RateLimit-Limit '^3$' "anonymous request $i"
    expect_header "a$i" X-RateLimit-Remaining "^$((3 - i))\$" "anonymous request $i"
    expect_header "a$i" X-RateLimit-Reset '^[0-9]+$' "anonymous request $i"
    expect_header "a$i" RateLimit-Policy '^"3/1m";q=3;w=60$' "anonymous request $i"
    expect_header "a$i" RateLimit "^\"3/1m\";r=$((3 - i));t=[0-9]+\$" "anonymous request $i"
done
echo "ok: 3 anonymous requests passed with X-RateLimit-* and RateLimit headers"

# 4: refused by rlgate-l7 (403), answered 429 by nginx.
req a4 --interface "$CLIENT_A" "$URL"
expect_status a4 429 "the 4th anonymous request"
expect_header a4 Retry-After '^[1-9][0-9]*$' "the 429"
expect_header a4 Content-Type '^application/json' "the 429"
expect_header a4 X-RateLimit-Limit '^3$' "the 429"
expect_header a4 X-RateLimit-Remaining '^0$' "the 429"
expect_header a4 RateLimit '^"3/1m";r=0;t=[0-9]+$' "the 429"
retry=$(hdr a4 Retry-After)
reset=$(hdr a4 X-RateLimit-Reset)
json=$(body a4)
[[ $json == *'"error":"rate_limit_exceeded"'* ]] || fail "the 429's body: '$json'"
[[ $json == *"\"retry_after\":$retry,"* && $json == *"\"reset_at\":$reset}"* ]] ||
    fail "the 429's body does not repeat Retry-After $retry and X-RateLimit-Reset $reset: '$json'"
if command -v python3 >/dev/null; then
    python3 -c 'import json, sys; json.loads(sys.argv[1])' "$json" || fail "the 429's body is not JSON: '$json'"
fi
echo "ok: the 4th got 429, Retry-After $retry, body $json"

# The client's own claims change nothing: nginx overwrites X-Forwarded-For
# and X-Original-URI and removes Forwarded.
req spoof --interface "$CLIENT_A" -H "X-Forwarded-For: 10.9.9.9" -H "Forwarded: for=10.9.9.8" \
    -H "X-Original-URI: not-a-path" "$URL"
expect_status spoof 429 "client A with spoofed X-Forwarded-For, Forwarded and X-Original-URI"
echo "ok: spoofed X-Forwarded-For / Forwarded / X-Original-URI ignored"

# The premium key: another tier, another limit.
req premium --interface "$CLIENT_A" -H "X-API-Key: k-premium" "$URL"
expect_status premium 200 "client A with the key k-premium"
[[ $(body premium) == "upstream ok" ]] || fail "premium: body '$(body premium)'"
expect_header premium X-RateLimit-Limit '^1000$' "premium"
expect_header premium X-RateLimit-Remaining '^999$' "premium"
echo "ok: k-premium passes (limit 1000)"

# Client B: nginx connects to rlgate-l7 from 127.0.0.1 for both clients, so
# B passing proves rlgate-l7 counted by the X-Forwarded-For nginx set.
req b1 --interface "$CLIENT_B" "$URL"
expect_status b1 200 "anonymous client B"
expect_header b1 X-RateLimit-Remaining '^2$' "client B"
echo "ok: client B has its own budget (X-Forwarded-For from nginx)"

# An API key rlgate-l7 refuses (over 256 bytes): 403 from rlgate-l7, which
# nginx must not present as a rate limit.
long_key=$(printf 'k%.0s' {1..300})
req badkey --interface "$CLIENT_B" -H "X-API-Key: $long_key" "$URL"
expect_status badkey 403 "an over-long API key"
echo "ok: a refused API key is a plain 403, not a 429"

# rlgate-l7's own count of what it decided.
metrics=$(curl -sS --max-time 5 "http://127.0.0.1:$L7_PORT/metrics") || fail "GET /metrics from rlgate-l7"
anon_allowed=$(metric "$metrics" 'rlgate_l7_decisions_total{tier="anonymous",endpoint="-",verdict="allowed"}')
anon_limited=$(metric "$metrics" 'rlgate_l7_decisions_total{tier="anonymous",endpoint="-",verdict="limited"}')
prem_allowed=$(metric "$metrics" 'rlgate_l7_decisions_total{tier="premium",endpoint="-",verdict="allowed"}')
((anon_allowed == 4)) || fail "metrics: $anon_allowed anonymous requests allowed, expected 4 (A 3, B 1)"
((anon_limited >= 1)) || fail "metrics: no anonymous request limited"
((anon_limited == 2)) || fail "metrics: $anon_limited anonymous requests limited, expected 2"
((prem_allowed >= 1)) || fail "metrics: no premium request allowed"
echo "ok: rlgate-l7 metrics: anonymous allowed $anon_allowed, limited $anon_limited; premium allowed $prem_allowed"

echo "PASS"
