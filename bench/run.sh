#!/usr/bin/env bash
# Reproduces every figure of tokend's load tool in one command: builds
# tokend and tokend-bench into a temporary directory, starts `tokend serve`
# on a free loopback port with a fresh SQLite database, provisions a
# confidential client, a public client and a user with the CLI, runs
# `tokend-bench -scenario all` (and/or wrk, BENCH_TOOL), prints the
# machine, stops the server and removes everything it made.
#
# With wrk (Debian: apt-get install wrk), each scenario's ceiling is served
# by a process of its own (`tokend-bench -serve-ceiling`), and wrk loads
# tokend and the ceiling alternately, BENCH_REPEAT times each, with the
# same connections, duration and request (bench/wrk.lua); the round with
# the median ratio is reported, every round beside it.
#
# Usage: bench/run.sh
# Settings, from the environment:
#   BENCH_TOOL=tokend-bench  tokend-bench, wrk, or both
#   BENCH_WRK_SCENARIO=client_credentials,introspect,jwks  what wrk loads
#   BENCH_WRK_T=2       wrk threads (-t)
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
#   BENCH_SERVE_FLAGS="--lockout-threshold 0 --rate-limit off"  more flags for
#                       tokend serve. Both limits are off by default here:
#                       they count logins in flight before the password is
#                       hashed, and 64 workers logging in to one account from
#                       one address are more than either allows (10 and 30),
#                       so the password scenarios would measure 429s, not
#                       hashing
#   BENCH_TOKEND=       a tokend binary to measure instead of building this
#                       tree's (e.g. one built from an older commit, to
#                       compare before and after with the same load tools)
#   BENCH_PROFILE=      a directory (wrk only): where the time and the tail go.
#                       tokend serves its profiler (--pprof-addr) and logs
#                       every collection (GODEBUG=gctrace=1); each wrk
#                       scenario gets one more tokend run, not counted in the
#                       figures, during which a 3 s execution trace and 5 s
#                       CPU, mutex and block profiles are saved there, and a
#                       summary of each is printed (go tool pprof, go tool
#                       trace -pprof=sched)
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
ceil_pid=
cleanup() {
	for p in $bench_pid $ceil_pid $pid; do
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
tool=${BENCH_TOOL:-tokend-bench}
case $tool in
tokend-bench | wrk | both) ;;
*) say "run.sh: BENCH_TOOL=$tool: want tokend-bench, wrk or both"; exit 2 ;;
esac
if [[ $tool != tokend-bench ]] && ! command -v wrk >/dev/null; then
	say "run.sh: BENCH_TOOL=$tool needs wrk (Debian: apt-get install wrk)"
	exit 1
fi

say "building tokend and tokend-bench..."
if [[ -n ${BENCH_TOKEND:-} ]]; then
	cp "$BENCH_TOKEND" "$tmp/tokend"
else
	(cd "$root" && go build -o "$tmp/tokend" ./cmd/tokend)
fi
(cd "$root" && go build -o "$tmp/tokend-bench" ./cmd/tokend-bench)
say "built in ${SECONDS}s"

db="${BENCH_DB:-sqlite:$tmp/tokend.db}"
read -ra serve_flags <<<"${BENCH_SERVE_FLAGS---lockout-threshold 0 --rate-limit off}"
prof=${BENCH_PROFILE:-}
serve_env=()
if [[ -n $prof ]]; then
	[[ $tool != tokend-bench ]] || { say "run.sh: BENCH_PROFILE needs BENCH_TOOL=wrk or both"; exit 2; }
	mkdir -p "$prof"
	prof=$(cd "$prof" && pwd)
	serve_env=(GODEBUG=gctrace=1)
fi
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
	extra=()
	if [[ -n $prof ]]; then
		pprof_url="http://127.0.0.1:$(free_port)"
		extra=(--pprof-addr "${pprof_url#http://}")
	fi
	# The binary itself, not through the function, so that $! is its pid.
	env "${serve_env[@]}" "$tmp/tokend" serve --addr "127.0.0.1:$port" --db "$db" --log-level warn "${serve_flags[@]}" "${extra[@]}" >>"$tmp/tokend.log" 2>&1 &
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
if [[ -n ${BENCH_TOKEND:-} ]]; then
	echo "tokend:  $BENCH_TOKEND (load tools from $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown))"
else
	echo "tokend:  $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$root" && git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
fi
if [[ -n ${BENCH_DB:-} ]]; then echo "store:   BENCH_DB (${BENCH_DB%%:*})"; else echo "store:   SQLite (a fresh file)"; fi
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "serve:   tokend serve ${serve_flags[*]}"
echo "command: BENCH_TOOL=$tool BENCH_C=$c BENCH_D=$d BENCH_WARMUP=$warmup BENCH_SCENARIO=$scenario BENCH_REPEAT=$repeat bench/run.sh"
echo

export TOKEND_BENCH_CLIENT_ID=$client_id TOKEND_BENCH_CLIENT_SECRET=$client_secret \
	TOKEND_BENCH_PUBLIC_CLIENT_ID=$public_id TOKEND_BENCH_USERNAME=bench-user TOKEND_BENCH_PASSWORD=$password

# In the background and waited for, so that a signal reaches the trap at
# once instead of after the whole run.
status=0
if [[ $tool != wrk ]]; then
	"$tmp/tokend-bench" -url "$url" -scenario "$scenario" -c "$c" -d "$d" -warmup "$warmup" -json="$json" -ceiling="$ceiling" -repeat="$repeat" &
	bench_pid=$!
	wait "$bench_pid" || status=$?
	bench_pid=
fi

# wrk: one run of wrk against $1 (a base URL) for $2 (a duration); prints
# its wrk-result line (bench/wrk.lua). The request comes from WRK_METHOD,
# WRK_PATH, WRK_BODY and WRK_AUTH.
wrk_run() {
	local out
	out=$(wrk -t "${BENCH_WRK_T:-2}" -c "$c" -d "$2" -s "$root/bench/wrk.lua" "$1$WRK_PATH")
	grep '^wrk-result ' <<<"$out" || { say "run.sh: wrk printed no result: $out"; return 1; }
}
# profile_run SCENARIO BODY: one more wrk run against tokend, not counted,
# while its profiler records; then a summary of what it recorded.
profile_run() {
	local sc=$1 gc0 gc1 p
	gc0=$(grep -c '^gc ' "$tmp/tokend.log" || true)
	(
		sleep 2
		curl -fsS -o "$prof/$sc.trace" "$pprof_url/debug/pprof/trace?seconds=3" &
		curl -fsS -o "$prof/$sc.cpu.pprof" "$pprof_url/debug/pprof/profile?seconds=5" &
		curl -fsS -o "$prof/$sc.mutex.pprof" "$pprof_url/debug/pprof/mutex?seconds=5" &
		curl -fsS -o "$prof/$sc.block.pprof" "$pprof_url/debug/pprof/block?seconds=5" &
		wait
	) &
	p=$!
	WRK_BODY=$2 wrk_run "$url" 9s >"$prof/$sc.wrk" || true
	wait "$p" || say "run.sh: a profile of $sc could not be taken"
	gc1=$(grep -c '^gc ' "$tmp/tokend.log" || true)
	echo "profile $sc (9 s under wrk, files in $prof): $((gc1 - gc0)) collections; $(cut -d' ' -f2- "$prof/$sc.wrk")"
	for p in cpu mutex block; do
		[[ -s $prof/$sc.$p.pprof ]] || continue
		echo "  $p profile, top 10:"
		go tool pprof -top -nodecount 10 "$prof/$sc.$p.pprof" 2>/dev/null | sed -n '/flat%/,$p' | sed 's/^/    /'
	done
	if [[ -s $prof/$sc.trace ]] && go tool trace -pprof=sched "$prof/$sc.trace" >"$prof/$sc.sched.pprof" 2>/dev/null; then
		echo "  waiting to be scheduled (execution trace), top 8:"
		go tool pprof -top -nodecount 8 "$prof/$sc.sched.pprof" 2>/dev/null | sed -n '/flat%/,$p' | sed 's/^/    /'
	fi
}

# kv KEY LINE: the value of KEY=... in a wrk-result line.
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

wrk_scenario() {
	local sc=$1 line ceil_url ceil_token tok
	export WRK_METHOD=POST WRK_AUTH="Basic $(printf '%s:%s' "$client_id" "$client_secret" | base64 | tr -d '\n')"
	case $sc in
	client_credentials) WRK_PATH=/oauth2/token WRK_BODY=grant_type=client_credentials ;;
	introspect) WRK_PATH=/oauth2/introspect ;;
	jwks) WRK_METHOD=GET WRK_PATH=/.well-known/jwks.json WRK_BODY= WRK_AUTH= ;;
	*) say "run.sh: no wrk scenario $sc (want client_credentials, introspect, jwks)"; return 1 ;;
	esac
	export WRK_PATH WRK_BODY WRK_AUTH
	# The ceiling, in a process of its own, shaped like tokend's answers.
	"$tmp/tokend-bench" -url "$url" -scenario "$sc" -serve-ceiling 127.0.0.1:0 >"$tmp/ceiling.out" 2>>"$tmp/ceiling.log" &
	ceil_pid=$!
	for _ in $(seq 100); do
		[[ -s $tmp/ceiling.out ]] && break
		kill -0 "$ceil_pid" 2>/dev/null || break
		sleep 0.1
	done
	line=$(head -n1 "$tmp/ceiling.out")
	ceil_url=$(json_field url <<<"$line")
	ceil_token=$(json_field token <<<"$line")
	if [[ -z $ceil_url ]]; then
		say "run.sh: the $sc ceiling did not start: $(cat "$tmp/ceiling.log")"
		return 1
	fi
	local tokend_body=$WRK_BODY ceil_body=$WRK_BODY
	if [[ $sc == introspect ]]; then
		tok=$(curl -fsS -u "$client_id:$client_secret" -d grant_type=client_credentials "$url/oauth2/token" | json_field access_token)
		tokend_body="token=$tok" ceil_body="token=$ceil_token"
	fi
	local rounds=() i t ceil
	if [[ -n $prof ]]; then
		profile_run "$sc" "$tokend_body"
	fi
	for ((i = 1; i <= repeat; i++)); do
		if [[ $warmup != 0 && $warmup != 0s ]]; then
			WRK_BODY=$tokend_body wrk_run "$url" "$warmup" >/dev/null
		fi
		t=$(WRK_BODY=$tokend_body wrk_run "$url" "$d") || return 1
		if [[ $warmup != 0 && $warmup != 0s ]]; then
			WRK_BODY=$ceil_body wrk_run "$ceil_url" "$warmup" >/dev/null
		fi
		ceil=$(WRK_BODY=$ceil_body wrk_run "$ceil_url" "$d") || return 1
		rounds+=("$t|$ceil")
	done
	kill -TERM "$ceil_pid" 2>/dev/null
	wait "$ceil_pid" 2>/dev/null || true
	ceil_pid=
	rm -f "$tmp/ceiling.out"
	# One line per round, then the round with the median ratio.
	local r rows=""
	for r in "${rounds[@]}"; do
		t=${r%%|*} ceil=${r#*|}
		rows+="$(kv requests "$t") $(kv duration_us "$t") $(kv p50_us "$t") $(kv p99_us "$t") $(kv status_errors "$t") $(kv errors "$t") "
		rows+="$(kv requests "$ceil") $(kv duration_us "$ceil") $(kv p50_us "$ceil") $(kv p99_us "$ceil") $(kv status_errors "$ceil") $(kv errors "$ceil")"$'\n'
	done
	printf '%s' "$rows" | awk -v sc="$sc" '
		NF == 12 {
			n++
			trps[n] = $1 / ($2 / 1e6); tp50[n] = $3 / 1000; tp99[n] = $4 / 1000; tbad[n] = $5 + $6
			crps[n] = $7 / ($8 / 1e6); cp50[n] = $9 / 1000; cp99[n] = $10 / 1000; cbad[n] = $11 + $12
			ratio[n] = trps[n] / crps[n]; order[n] = n
		}
		END {
			for (i = 1; i <= n; i++) {
				printf "wrk %-18s round %d: tokend %8.0f/s p50 %6.2f ms p99 %6.2f ms | ceiling %8.0f/s p50 %6.2f ms p99 %6.2f ms | ratio %.2f, p99 %.2fx the ceiling'"'"'s | errors %d, %d\n", \
					sc, i, trps[i], tp50[i], tp99[i], crps[i], cp50[i], cp99[i], ratio[i], tp99[i] / cp99[i], tbad[i], cbad[i]
				runs = runs sprintf(" %.2f", ratio[i])
			}
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (ratio[order[j]] < ratio[order[i]]) { k = order[i]; order[i] = order[j]; order[j] = k }
			m = order[int((n + 1) / 2)]
			printf "wrk %-18s MEDIAN  tokend %8.0f/s p50 %6.2f ms p99 %6.2f ms | ceiling %8.0f/s p50 %6.2f ms p99 %6.2f ms | ratio %.2f (runs%s), p99 %.2fx the ceiling'"'"'s\n", \
				sc, trps[m], tp50[m], tp99[m], crps[m], cp50[m], cp99[m], ratio[m], runs, tp99[m] / cp99[m]
		}'
}

if [[ $tool != tokend-bench ]]; then
	echo
	echo "wrk $(wrk --version 2>&1 | head -n1 | cut -d' ' -f2): -t ${BENCH_WRK_T:-2} -c $c -d $d, warm-up $warmup before each run, tokend and the ceiling alternately, $repeat rounds"
	IFS=, read -ra wrk_scenarios <<<"${BENCH_WRK_SCENARIO:-client_credentials,introspect,jwks}"
	for sc in "${wrk_scenarios[@]}"; do
		wrk_scenario "$sc" || status=1
	done
fi

if [[ -s $tmp/tokend.log ]]; then
	say
	say "tokend's log during the run (--log-level warn), lines by level and message:"
	sed -n 's/.* level=\([A-Z]*\) msg=\("[^"]*"\|[^ ]*\).*/\1 \2/p' "$tmp/tokend.log" | sort | uniq -c | sort -rn | head -n 20 >&2
	if [[ -n $prof ]]; then
		grep '^gc ' "$tmp/tokend.log" >"$prof/gctrace.log" || true
		say "every collection tokend ran (GODEBUG=gctrace=1): $prof/gctrace.log"
	fi
fi
say "run.sh: done in ${SECONDS}s"
exit "$status"
