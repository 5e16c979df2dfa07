#!/usr/bin/env bash
# Run the adversarial zoo under valgrind memcheck and report invalid reads/writes (and other
# memory errors) whose stack goes through refgraph's extension. Not part of CI (it takes many
# minutes); run it after `bash scripts/test.sh` has built .venv-test/3.11:
#
#   bash scripts/valgrind-zoo.sh [pytest -k expression]
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv-test/3.11/bin/python
expr=${1:-"matrix or callbacks or thread or whole_heap or freed or refcounts"}
log=${VALGRIND_LOG:-target/valgrind-zoo.log}
mkdir -p target
PYTHONMALLOC=malloc valgrind --tool=memcheck --error-limit=no --num-callers=40 \
  --log-file="$log" "$py" -m pytest -q -p no:cacheprovider tests/test_zoo.py -k "$expr" || true
"$py" - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.split(r"\n==\d+== \n", text)
kinds = {}
ours = []
for b in blocks:
    m = re.search(r"==\d+== (Invalid (?:read|write)[^\n]*|Conditional jump[^\n]*|Use of uninitialised[^\n]*|Invalid free[^\n]*|Mismatched free[^\n]*|Syscall param[^\n]*)", b)
    if not m:
        continue
    kind = m.group(1).split(" of size")[0]
    kinds[kind] = kinds.get(kind, 0) + 1
    if "_refgraph" in b or "refgraph_core" in b:
        ours.append(b)
summary = re.findall(r"ERROR SUMMARY: (\d+) errors", text)
print("valgrind error summary:", summary[-1] if summary else "?", "errors in all")
for k, n in sorted(kinds.items()):
    print(f"  {n:6d}  {k}")
print(f"errors with refgraph in the stack: {len(ours)}")
for b in ours[:5]:
    print(b[:3000])
sys.exit(1 if ours else 0)
PY
