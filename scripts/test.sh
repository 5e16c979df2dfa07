#!/usr/bin/env bash
# Run every test of refgraph: Rust (format, lints, unit tests), Python lints, then the Python
# suite against one abi3 wheel on python3 and on every CPython >= 3.10 that pyenv has.
# The suite includes the docstring examples (tests/test_docstrings.py); mypy.stubtest checks the
# .pyi stubs against the installed package and extension on each Python.
# Installs what it needs (maturin, pytest, ruff, objgraph, selenium, mypy from PyPI) into .venv-* folders,
# and Debian's chromium and chromium-driver when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
step() { printf '\n== %s (at %d s)\n' "$*" "$SECONDS"; }

step "Rust: format"
cargo fmt --all --check

step "Chromium for the HTML report's browser tests"
# Debian's chromium and chromium-driver (the tests drive them with selenium, from PyPI); the tests
# never download a browser. Installed once, as root, only when missing.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium and chromium-driver are missing (apt-get install chromium chromium-driver as root)" >&2
  fi
fi
/usr/bin/chromium --version 2>/dev/null || true

step "Tools (maturin, ruff) in .venv-tools"
if [ ! -x .venv-tools/bin/maturin ] || [ ! -x .venv-tools/bin/ruff ]; then
  python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
fi

step "Python: ruff"
.venv-tools/bin/ruff check python tests benchmarks examples
.venv-tools/bin/ruff format --check python tests benchmarks examples

step "Build one abi3 wheel (profile 'checked': optimised, debug assertions on)"
rm -rf target/test-wheels
.venv-tools/bin/maturin build -q --locked --profile checked -o target/test-wheels
wheel=$(ls target/test-wheels/refgraph-*.whl)

# Interpreters: python3 and pyenv's CPythons, 3.10 or newer, each version once.
interpreters=()
seen=" "
candidates=("$(command -v python3)")
if command -v pyenv >/dev/null 2>&1; then
  for p in "$(pyenv root)"/versions/*/bin/python; do candidates+=("$p"); done
fi
for p in "${candidates[@]}"; do
  [ -x "$p" ] || continue
  v=$("$p" -c 'import sys; ok = sys.version_info >= (3, 10) and sys.implementation.name == "cpython"; print("%d.%d" % sys.version_info[:2] if ok else "skip")' 2>/dev/null) || continue
  [ "$v" = "skip" ] && continue
  case "$seen" in *" $v "*) continue ;; esac
  seen="$seen$v "
  interpreters+=("$p")
done
case "$seen" in *" 3.11 "*) ;; *) echo "CPython 3.11 not found: it is required" >&2; exit 1 ;; esac

# One lane per Python: its venv, the wheel, the suite, stubtest; output in a log printed when it
# ends. The first interpreter (python3, 3.11) runs every test; the others skip those marked
# `slow` (long soak tests of the Python-independent layers: RSS over 10,000 calls, 100 attaches
# in a row, the 10^7 list, the benchmark smoke run) and those marked `one_python` (what does
# not depend on the CPython version: the report in the browser; attaching to the other
# versions). One more lane runs the Rust checks (clippy, unit tests) on one core. Two lanes run
# at once (the machine has two cores; the suites are mostly one process each).
mkdir -p target/test-logs
rust_lane() {
  {
    printf '\n== Rust: clippy, unit tests (one core)\n'
    status=0
    # Both in the wheel's `checked` profile (optimised, debug assertions on, as `dev` has
    # them): clippy then reuses the wheel's build scripts and proc macros (51 s on one core
    # here, 279 s in its own profile), and the drawing tests run optimised (a minute
    # unoptimised).
    cargo clippy -j 1 --profile checked --workspace --all-targets --locked -- -D warnings || status=1
    if [ $status = 0 ]; then
      cargo test -j 1 --workspace --locked -q --profile checked || status=1
    fi
    echo "$status" >target/test-logs/rust.status
    printf '== Rust: lane ended at %d s\n' "$SECONDS"
  } >target/test-logs/rust.log 2>&1 || true
  cat target/test-logs/rust.log
}
run_lane() {
  local py=$1 marks=$2 v venv log reqs
  v=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  venv=".venv-test/$v"
  log="target/test-logs/$v.log"
  # The lane that runs every test needs selenium and matplotlib too (requirements-test.txt).
  reqs=requirements-test-lane.txt
  [ -z "$marks" ] && reqs=requirements-test.txt
  {
    printf '\n== Python %s (%s)%s\n' "$v" "$py" "${marks:+, -m \"$marks\"}"
    # A venv without pip of its own: .venv-tools' pip installs into it (--python), without
    # compiling every module of every package first (75 -> 19 s a lane here).
    if [ ! -x "$venv/bin/python" ]; then
      "$py" -m venv --without-pip "$venv"
    fi
    pip_in() { .venv-tools/bin/pip --python "$venv/bin/python" install -q --no-compile --disable-pip-version-check "$@"; }
    pip_in -r "$reqs"
    pip_in --force-reinstall --no-deps "$wheel"
    status=0
    (cd "$root" && "$venv/bin/python" -m pytest -q -p no:cacheprovider --durations=40 ${marks:+-m "$marks"} tests) ||
      status=1
    # The stubs (.pyi) against the installed package and its extension, on this Python.
    "$venv/bin/python" -m mypy.stubtest refgraph --allowlist scripts/stubtest-allowlist.txt ||
      status=2
    echo "$status" >"target/test-logs/$v.status"
    printf '== Python %s: lane ended at %d s\n' "$v" "$SECONDS"
  } >"$log" 2>&1 || true
  cat "$log"
}

rm -f target/test-logs/*
# The longest lane (python3's, every test) and the Rust lane start first, then the other
# Pythons as lanes end.
lanes=("py:${interpreters[0]}" "rust")
for ((i = 1; i < ${#interpreters[@]}; i++)); do
  lanes+=("py:${interpreters[i]}")
done
for lane in "${lanes[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n || true; done
  case "$lane" in
    rust) rust_lane & ;;
    "py:${interpreters[0]}") run_lane "${lane#py:}" "" & ;;
    *) run_lane "${lane#py:}" "not slow and not one_python" & ;;
  esac
done
wait

failed=()
[ "$(cat target/test-logs/rust.status 2>/dev/null)" = 0 ] || failed+=("(Rust: clippy or unit tests)")
for py in "${interpreters[@]}"; do
  v=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  case "$(cat "target/test-logs/$v.status" 2>/dev/null)" in
    0) ;;
    2) failed+=("$v (stubtest)") ;;
    *) failed+=("$v") ;;
  esac
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "All tests passed on Python:$seen (in $SECONDS s)"
