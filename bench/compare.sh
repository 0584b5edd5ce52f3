#!/usr/bin/env bash
# Compares two builds of tokend on one load scenario: builds each (a commit
# of this repository, or a path to a tokend binary), then measures them
# alternately, ROUNDS times each, with bench/run.sh and tokend-bench, on a
# fresh store for every run, and prints each round's rates, the ratio
# after/before, and the median ratio.
#
# Usage: bench/compare.sh BEFORE AFTER [ROUNDS]
#   e.g. bench/compare.sh fb19e68 HEAD 5
# Settings, from the environment:
#   COMPARE_DB=        a postgres:// URL (e.g.
#                      postgres://postgres@127.0.0.1:5432/test?sslmode=disable):
#                      each run gets the schema tokend_compare, dropped and
#                      made again (then a CHECKPOINT) before it; needs psql.
#                      Empty: a fresh SQLite file for each run.
#   BENCH_SCENARIO=refresh_token  one scenario of tokend-bench
#   BENCH_D=10s, BENCH_C=64, BENCH_SERVE_FLAGS=...  as for bench/run.sh
# The in-process ceiling is not measured (BENCH_CEILING=0): a before/after
# compares the two builds with each other.
set -euo pipefail

say() { printf '%s\n' "$*" >&2; }
[[ $# -ge 2 && $# -le 3 ]] || { say "usage: bench/compare.sh BEFORE AFTER [ROUNDS]"; exit 2; }
rounds=${3:-5}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { say "compare.sh: ROUNDS must be a positive number"; exit 2; }
scenario=${BENCH_SCENARIO:-refresh_token}
[[ $scenario != *,* && $scenario != all ]] || { say "compare.sh: BENCH_SCENARIO must name one scenario"; exit 2; }
db=${COMPARE_DB:-}
if [[ -n $db ]]; then
	[[ $db == postgres://* || $db == postgresql://* ]] || { say "compare.sh: COMPARE_DB must be a postgres:// URL"; exit 2; }
	command -v psql >/dev/null || { say "compare.sh: COMPARE_DB needs psql (Debian: apt-get install postgresql-client)"; exit 1; }
fi

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokend-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# build NAME REV-OR-BINARY: a tokend binary at $tmp/NAME.
build() {
	local name=$1 what=$2
	if [[ -f $what && -x $what ]]; then
		cp "$what" "$tmp/$name"
		return
	fi
	local rev
	rev=$(git -C "$root" rev-parse --verify --quiet "$what^{commit}") || { say "compare.sh: $what is neither a commit nor a binary"; exit 2; }
	mkdir "$tmp/src-$name"
	git -C "$root" archive "$rev" | tar -x -C "$tmp/src-$name"
	(cd "$tmp/src-$name" && go build -o "$tmp/$name" ./cmd/tokend)
	rm -rf "$tmp/src-$name"
}
say "building $1 and $2..."
build before "$1"
build after "$2"

schema=tokend_compare
fresh_db() {
	[[ -n $db ]] || return 0
	psql -q -X -v ON_ERROR_STOP=1 "$db" -c "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema" -c CHECKPOINT >/dev/null 2>&1 ||
		{ say "compare.sh: could not reset schema $schema in COMPARE_DB"; exit 1; }
}
bench_db() {
	[[ -n $db ]] || return 0
	if [[ $db == *\?* ]]; then echo "$db&search_path=$schema"; else echo "$db?search_path=$schema"; fi
}

# measure NAME: tokend's ok/s in one run of bench/run.sh (and its line).
measure() {
	fresh_db
	local out line
	out=$(BENCH_TOKEND="$tmp/$1" BENCH_DB="$(bench_db)" BENCH_SCENARIO=$scenario BENCH_CEILING=0 \
		BENCH_TOOL=tokend-bench BENCH_REPEAT=1 BENCH_JSON=0 "$root/bench/run.sh" 2>"$tmp/run.log") ||
		{ cat "$tmp/run.log" >&2; say "compare.sh: bench/run.sh failed"; exit 1; }
	line=$(grep -E '^  tokend +[0-9]' <<<"$out" | head -1)
	[[ -n $line ]] || { printf '%s\n' "$out" >&2; say "compare.sh: no figure for tokend in the output"; exit 1; }
	echo "$line"
}

store="SQLite (a fresh file for each run)"
[[ -z $db ]] || store="PostgreSQL (schema $schema, made afresh for each run)"
echo "compare: $1 (before) against $2 (after), $scenario, ${BENCH_D:-10s} per run, $rounds rounds, store: $store"
ratios=()
for r in $(seq "$rounds"); do
	b=$(measure before)
	a=$(measure after)
	rb=$(awk '{print $2}' <<<"$b")
	ra=$(awk '{print $2}' <<<"$a")
	ratio=$(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
	ratios+=("$ratio")
	echo "round $r before:${b#  tokend}"
	echo "round $r after: ${a#  tokend}"
	echo "round $r after/before $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "after/before: median $median (rounds: ${ratios[*]})"
