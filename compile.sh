#!/usr/bin/env bash
# Builds the single executable dist/raftlite with `deno compile`.
#
# deno compile glues the program onto Deno's `denort` runtime, which is not on
# npm: deno downloads it from dl.deno.land (about 40 MB) and caches the zip.
# Machines without that host need a local copy, so the runtime is taken from,
# in order:
#   1. DENORT_BIN=/path/to/denort   the extracted denort 2.9.6 executable
#   2. the cached zip               $DENO_DIR/dl/release/v2.9.6/denort-<target>.zip
#   3. a download                   done by deno compile itself, bounded in time
#
# Usage: ./compile.sh            build dist/raftlite
#        ./compile.sh --check    only say which runtime source would be used
# Exit codes: 0 ok, 1 compile error or bad setup, 2 no denort runtime available.
# Environment: DENO (path of the deno 2.9.6 executable), DENORT_BIN, DENO_DIR,
#              RAFTLITE_COMPILE_TIMEOUT_S (default 300; bounds the compile).
set -euo pipefail

# Deno prints a useless empty backtrace on every CLI error when this is 1.
export RUST_BACKTRACE=0

readonly DENO_VERSION="2.9.6"
readonly TARGET="x86_64-unknown-linux-gnu"
readonly OUT="dist/raftlite"
readonly TIMEOUT_S="${RAFTLITE_COMPILE_TIMEOUT_S:-300}"

die() {
  echo "compile.sh: $2" >&2
  exit "$1"
}

cd "$(dirname "${BASH_SOURCE[0]}")"

mode="compile"
case "${1:-}" in
  "") ;;
  --check) mode="check" ;;
  -h | --help)
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die 1 "unknown argument '$1' (use --check or --help)" ;;
esac

# The denort runtime must be the same version as the deno that compiles, and
# the cache path is versioned, so refuse any deno other than $DENO_VERSION.
deno_cmd=()
if [[ -n "${DENO:-}" ]]; then
  deno_cmd=("$DENO")
elif command -v deno >/dev/null 2>&1 &&
  deno --version 2>/dev/null | head -n 1 | grep -q "^deno ${DENO_VERSION} "; then
  deno_cmd=(deno)
else
  deno_cmd=(npx -y "deno@${DENO_VERSION}")
fi
version_line="$("${deno_cmd[@]}" --version 2>/dev/null | head -n 1)" ||
  die 1 "cannot run deno as '${deno_cmd[*]}'"
[[ "$version_line" == "deno ${DENO_VERSION} "* ]] ||
  die 1 "'${deno_cmd[*]}' is '${version_line}', need deno ${DENO_VERSION}"
deno_exe="$("${deno_cmd[@]}" eval 'console.log(Deno.execPath())' 2>/dev/null)" ||
  die 1 "cannot ask '${deno_cmd[*]}' for its executable path"

deno_dir="$("${deno_cmd[@]}" info --json 2>/dev/null |
  sed -n 's/^ *"denoDir": *"\([^"]*\)".*/\1/p' | head -n 1)"
[[ -n "$deno_dir" ]] || die 1 "cannot find DENO_DIR from '${deno_cmd[*]} info --json'"
readonly CACHE_ZIP="${deno_dir}/dl/release/v${DENO_VERSION}/denort-${TARGET}.zip"

how_to_provide() {
  cat >&2 <<EOF
compile.sh: no denort ${DENO_VERSION} runtime for ${TARGET} is available. Provide one of:
  - DENORT_BIN=/path/to/denort: the extracted denort ${DENO_VERSION} executable for ${TARGET}
    (from denort-${TARGET}.zip of the Deno ${DENO_VERSION} release), e.g.
    DENORT_BIN=/opt/denort ./compile.sh
  - the zip itself at ${CACHE_ZIP}
    (obtainable by running ./compile.sh once on a machine with internet access: deno caches the
    download at that same path under its DENO_DIR; copy the file over)
EOF
}

# Pick the runtime source. DENORT_BIN wins even when the cache also exists,
# because deno compile itself reads it first.
source_kind="none"
if [[ -n "${DENORT_BIN+set}" ]]; then
  [[ -n "$DENORT_BIN" ]] || die 1 "DENORT_BIN is set but empty; unset it or point it at denort"
  [[ -f "$DENORT_BIN" && -x "$DENORT_BIN" ]] ||
    die 1 "DENORT_BIN=${DENORT_BIN} is not an existing executable file"
  # The deno CLI is accepted by deno compile but yields a binary that ignores
  # the embedded program and starts the REPL, so catch that mistake here.
  [[ "$(realpath "$DENORT_BIN")" != "$(realpath "$deno_exe")" ]] ||
    die 1 "DENORT_BIN points at the deno CLI itself; it must be the denort runtime"
  source_kind="denort_bin"
  echo "runtime: DENORT_BIN=${DENORT_BIN}"
elif [[ -s "$CACHE_ZIP" ]]; then
  source_kind="cache"
  echo "runtime: cached zip ${CACHE_ZIP}"
fi

if [[ "$mode" == "check" ]]; then
  if [[ "$source_kind" == "none" ]]; then
    echo "runtime: none local (a compile would try to download it from dl.deno.land)"
    how_to_provide
    exit 2
  fi
  exit 0
fi

if [[ "$source_kind" == "none" ]]; then
  echo "runtime: none local; deno compile will try to download it (at most ${TIMEOUT_S}s)"
fi

mkdir -p "$(dirname "$OUT")"
# timeout runs the command in its own process group and signals the whole
# group, so an npx wrapper cannot leave an orphaned deno behind. That group is
# not the terminal's, so forward Ctrl-C / SIGTERM to it by hand.
# The V8 flags keep a node's memory low (lib/server/v8_flags.ts); baked into the binary.
V8_FLAGS="--max-semi-space-size=2,--max-old-space-size=1024"
timeout --kill-after=10 "$TIMEOUT_S" "${deno_cmd[@]}" compile -A --frozen \
  "--v8-flags=$V8_FLAGS" --target "$TARGET" -o "$OUT" main.ts &
compile_pid=$!
trap 'kill -TERM "$compile_pid" 2>/dev/null' INT TERM
status=0
wait "$compile_pid" || status=$?
# A trapped signal interrupts wait early; wait again for the real exit.
if kill -0 "$compile_pid" 2>/dev/null; then
  status=0
  wait "$compile_pid" || status=$?
fi
trap - INT TERM

if [[ "$status" -ne 0 ]]; then
  rmdir "$(dirname "$OUT")" 2>/dev/null || true # only if compile left it empty
  [[ "$status" -ne 124 ]] || echo "compile.sh: deno compile timed out after ${TIMEOUT_S}s" >&2
  # Without a local runtime a failure that left no cached zip is a runtime
  # problem (no network, timeout), not a program error: say what to provide.
  if [[ "$source_kind" == "none" && ! -s "$CACHE_ZIP" ]]; then
    how_to_provide
    exit 2
  fi
  die 1 "deno compile failed (exit ${status})"
fi
echo "built ${OUT}"
