"""The HTML report at scale: size of the page, time to write it, time to show it in Chromium.

    python benchmarks/report_bench.py --objects 1000000 [--types 10000] [--json out.json]
                                      [--no-browser] [--smoke]

Builds the benchmark heap (heap.py) plus ``--types`` classes with one instance each, takes a
base snapshot, grows the heap's leaking cache by 10%, takes a second one, saves and loads both,
then measures on the loaded snapshots (as ``refgraph report NEW --base OLD`` does): writing the
report (the dominator tree, the diff and the page, nothing cached), its size, and in headless
Chromium (Debian's chromium and chromium-driver, through selenium) the time until the first
view is drawn and the time to draw the types table. Targets at 1M objects: page <= 5 MB,
written <= 2 s, first view <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import heap  # noqa: E402

import refgraph  # noqa: E402

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def browser_figures(path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="refgraph-bench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts
    )
    try:
        driver.get("about:blank")  # the browser is up before timing starts
        t0 = time.perf_counter()
        driver.get("file://" + os.path.abspath(path))
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.documentElement.dataset.ready") == "1"
        )
        wall = time.perf_counter() - t0
        ready_ms = float(driver.execute_script("return document.documentElement.dataset.readyMs"))
        types_ms = driver.execute_script(
            "var t = performance.now(); document.getElementById('tab-types').click();"
            "return performance.now() - t;"
        )
        rows = driver.execute_script(
            "return document.querySelectorAll('#type-rows .grid-row').length"
        )
        dom_ms = driver.execute_script(
            "var t = performance.now(); document.getElementById('tab-dominators').click();"
            "return performance.now() - t;"
        )
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        return {
            "first_view_s": ready_ms / 1000,
            "load_wall_s": wall,
            "types_view_s": types_ms / 1000,
            "type_rows_in_dom": rows,
            "dominator_view_s": dom_ms / 1000,
            "console_errors": len(errors),
        }
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def run(args):
    n = args.objects
    classes = [type(f"BenchKind{i}", (), {}) for i in range(args.types)]
    instances = [c() for c in classes]
    heap.build(n)
    tmp = tempfile.mkdtemp(prefix="refgraph-report-bench-")
    try:
        old_path = os.path.join(tmp, "old.rgsnap")
        new_path = os.path.join(tmp, "new.rgsnap")
        refgraph.snapshot().save(old_path)
        # Grow: 10% more records in the leaking cache.
        extra = max(1, n // heap.PER_UNIT // 10)
        for i in range(extra):
            heap.CACHE[-1 - i] = [heap.Record(i)]
        refgraph.snapshot().save(new_path)
        del instances, classes
        heap.clear()
        t = time.perf_counter()
        old = refgraph.load(old_path)
        new = refgraph.load(new_path)
        load_s = time.perf_counter() - t
        out = os.path.join(args.out_dir or tmp, "report.html")
        t, c = time.perf_counter(), time.process_time()
        size = new.to_html(out, base=old)
        write_s, write_cpu_s = time.perf_counter() - t, time.process_time() - c
        res = {
            "objects": len(new),
            "types": new.info()["types"],
            "load_both_s": load_s,
            "write_s": write_s,
            "write_cpu_s": write_cpu_s,
            "size_bytes": size,
        }
        if not args.no_browser:
            res.update(browser_figures(out))
        return res
    finally:
        if not args.out_dir:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objects", type=int, default=1_000_000)
    p.add_argument("--types", type=int, default=10_000)
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--out-dir", help="keep the report in this folder")
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium figures")
    p.add_argument("--smoke", action="store_true", help="10k objects, 200 types")
    args = p.parse_args(argv)
    if args.smoke:
        args.objects, args.types = 10_000, 200
    res = run(args)
    print(
        f"report of a snapshot of {res['objects']:,} objects, {res['types']:,} types"
        f" (with a base; load average {os.getloadavg()[0]:.1f}):"
    )
    print(f"  load both snapshots  {res['load_both_s']:.2f} s")
    print(
        f"  write the report     {res['write_s']:.2f} s   (target <= 2 s at 1M;"
        f" {res['write_cpu_s']:.2f} s of CPU)"
    )
    print(f"  size                 {res['size_bytes'] / 1e6:.2f} MB (target <= 5 MB at 1M)")
    if "first_view_s" in res:
        print(
            f"  first view           {res['first_view_s']:.2f} s   (target <= 2 s at 1M;"
            f" {res['load_wall_s']:.2f} s as seen by the driver)"
        )
        print(
            f"  types view           {res['types_view_s'] * 1000:.0f} ms, "
            f"{res['type_rows_in_dom']} rows in the DOM"
        )
        print(f"  dominator view       {res['dominator_view_s'] * 1000:.0f} ms")
        print(f"  console errors       {res['console_errors']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
