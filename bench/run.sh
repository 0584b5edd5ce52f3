#!/usr/bin/env bash
# Reproduces every figure of tokend's load tool in one command: builds
# tokend and tokend-bench into a temporary directory, starts `tokend serve`
# on a free loopback port with a fresh SQLite database, provisions a
# confidential client, a public client and a user with the CLI, runs
# `tokend-bench -scenario all`, prints the machine, stops the server and
# removes everything it made.
#
# Usage: bench/run.sh
# Settings, from the environment:
#   BENCH_C=64          connections (tokend-bench -c)
#   BENCH_D=10s         measured duration of each run (-d)
#   BENCH_WARMUP=1s     warm-up of each run (-warmup)
#   BENCH_SCENARIO=all  scenarios (-scenario)
#   BENCH_JSON=0        1: JSON lines instead of text (-json)
#   BENCH_CEILING=1     0: no in-process ceiling (-ceiling=false)
#   BENCH_DB=           a store for tokend (--db) instead of a fresh SQLite
#                       file: e.g. a postgres:// URL of an EMPTY database or
#                       schema (search_path=...)
#   BENCH_REPEAT=1      measure tokend and the ceiling N times alternately
#                       and report the median ratio (-repeat)
# With the defaults it takes about 3.5 minutes (9 scenarios, each measured
# against tokend and against the ceiling).
set -euo pipefail

c=${BENCH_C:-64}
d=${BENCH_D:-10s}
warmup=${BENCH_WARMUP:-1s}
scenario=${BENCH_SCENARIO:-all}
json=false
[[ ${BENCH_JSON:-0} == 1 ]] && json=true
ceiling=true
[[ ${BENCH_CEILING:-1} == 0 ]] && ceiling=false
repeat=${BENCH_REPEAT:-1}

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokend-bench.XXXXXX")
pid=
bench_pid=
cleanup() {
	for p in $bench_pid $pid; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }

command -v curl >/dev/null || { say "run.sh: needs curl"; exit 1; }

say "building tokend and tokend-bench..."
(cd "$root" && go build -o "$tmp/tokend" ./cmd/tokend && go build -o "$tmp/tokend-bench" ./cmd/tokend-bench)
say "built in ${SECONDS}s"

db="${BENCH_DB:-sqlite:$tmp/tokend.db}"
tokend() { "$tmp/tokend" "$@"; }

# A loopback port nobody listens on (bash's /dev/tcp fails to connect).
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	say "run.sh: no free port found"
	exit 1
}

# Start the server; retry on another port if this one was taken meanwhile.
for attempt in 1 2 3; do
	port=$(free_port)
	url="http://127.0.0.1:$port"
	# The binary itself, not through the function, so that $! is its pid.
	"$tmp/tokend" serve --addr "127.0.0.1:$port" --db "$db" --log-level warn >>"$tmp/tokend.log" 2>&1 &
	pid=$!
	ready=
	for _ in $(seq 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		if curl -fsS -o /dev/null "$url/readyz" 2>/dev/null; then
			ready=1
			break
		fi
		sleep 0.1
	done
	[[ -n $ready ]] && break
	wait "$pid" 2>/dev/null || true
	pid=
done
if [[ -z $ready ]]; then
	say "run.sh: tokend did not start; its log:"
	cat "$tmp/tokend.log" >&2
	exit 1
fi
say "tokend serving at $url (log level warn)"

# Provision with the CLI, against the same database, while the server runs.
json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n1; }
out=$(tokend client add bench-service --grant client_credentials --grant refresh_token --db "$db" --json)
client_id=$(json_field client_id <<<"$out")
client_secret=$(json_field client_secret <<<"$out")
out=$(tokend client add bench-webapp --public --grant password --grant refresh_token --db "$db" --json)
public_id=$(json_field client_id <<<"$out")
password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')
printf '%s\n' "$password" | tokend user add bench-user --password-stdin --role ROLE_USER --db "$db" >/dev/null
if [[ -z $client_id || -z $client_secret || -z $public_id ]]; then
	say "run.sh: provisioning failed"
	exit 1
fi

# The server picks up changes within a second; wait until the client works.
for _ in $(seq 50); do
	if curl -fsS -o /dev/null -u "$client_id:$client_secret" -d grant_type=client_credentials "$url/oauth2/token" 2>/dev/null; then
		break
	fi
	sleep 0.1
done

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n1), $(uname -sr)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) before the run; other work on the machine skews every figure"
echo "go:      $(go version)"
echo "tokend:  $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$root" && git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
if [[ -n ${BENCH_DB:-} ]]; then echo "store:   BENCH_DB (${BENCH_DB%%:*})"; else echo "store:   SQLite (a fresh file)"; fi
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "command: BENCH_C=$c BENCH_D=$d BENCH_WARMUP=$warmup BENCH_SCENARIO=$scenario BENCH_REPEAT=$repeat bench/run.sh"
echo

# In the background and waited for, so that a signal reaches the trap at
# once instead of after the whole run.
status=0
TOKEND_BENCH_CLIENT_ID=$client_id TOKEND_BENCH_CLIENT_SECRET=$client_secret \
	TOKEND_BENCH_PUBLIC_CLIENT_ID=$public_id TOKEND_BENCH_USERNAME=bench-user TOKEND_BENCH_PASSWORD=$password \
	"$tmp/tokend-bench" -url "$url" -scenario "$scenario" -c "$c" -d "$d" -warmup "$warmup" -json="$json" -ceiling="$ceiling" -repeat="$repeat" &
bench_pid=$!
wait "$bench_pid" || status=$?
bench_pid=

if [[ -s $tmp/tokend.log ]]; then
	say
	say "tokend's log during the run (--log-level warn), lines by level and message:"
	sed -n 's/.* level=\([A-Z]*\) msg=\("[^"]*"\|[^ ]*\).*/\1 \2/p' "$tmp/tokend.log" | sort | uniq -c | sort -rn | head -n 20 >&2
fi
say "run.sh: done in ${SECONDS}s"
exit "$status"
