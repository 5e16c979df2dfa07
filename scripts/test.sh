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
step() { printf '\n== %s\n' "$*"; }

step "Rust: format, clippy, unit tests"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked -q

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

failed=()
for py in "${interpreters[@]}"; do
  v=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  step "Python $v ($py)"
  venv=".venv-test/$v"
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements-test.txt
  "$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"
  (cd "$root" && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests) || failed+=("$v")
  # The stubs (.pyi) against the installed package and its extension, on this Python.
  "$venv/bin/python" -m mypy.stubtest refgraph --allowlist scripts/stubtest-allowlist.txt ||
    failed+=("$v (stubtest)")
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED on Python ${failed[*]}" >&2
  exit 1
fi
echo "All tests passed on Python:$seen"
