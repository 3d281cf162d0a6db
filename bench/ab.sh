#!/usr/bin/env bash
# A/B comparison of one benchmark between two checkouts, run back to back on the same machine so
# that both see the same conditions: the figures are read as ratios, B against A.
# Usage: A=/path/to/reference/checkout B=/path/to/candidate bench/ab.sh NAME [VAR=value...]
#   NAME: a script of bench/ (live, reserve, recording, ...); VAR=value: its environment
#   (e.g. CAMERAS=500 SECONDS_PER_RUN=40). Output: /tmp/bench/NAME-{a,b}.{jsonl,log}.
#   FREEZE='regex' stops (SIGSTOP) the processes whose command line matches it while each side
#   runs, e.g. other builds on the same machine, and resumes them afterwards.
# A reference checkout: git worktree add /tmp/ref <commit>; each side builds its own release.
set -u
name=$1; shift
: "${A:?set A to the reference checkout}" "${B:=$(cd "$(dirname "$0")/.." && pwd)}"
out=${OUT_DIR:-/tmp/bench}; mkdir -p "$out"
freeze() { [ -n "${FREEZE:-}" ] && pgrep -f "$FREEZE" | grep -vx "$$" | xargs -r kill -"$1" 2>/dev/null; true; }
trap 'freeze CONT' EXIT
for side in a b; do
  dir=$A; [ $side = b ] && dir=$B
  freeze STOP; sleep 2
  echo "== $name $side ($dir) $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd "$dir" && env "$@" bash bench/"$name".sh "$out/$name-$side.jsonl") > "$out/$name-$side.log" 2>&1
  echo "exit $? $(date -u +%T)"
  freeze CONT; sleep 5
done
