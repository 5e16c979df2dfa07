"""The HTML report in a real headless Chromium (Debian's chromium and chromium-driver, driven by
selenium): opened from file://, with no console error, the views work when clicked and typed
into, and hostile strings from the heap run nothing.

Screenshots of each view go to $REFGRAPH_SHOTS (a folder) when it is set, else to pytest's
temporary folder. Without Chromium (or selenium) these tests are skipped, except under CI, where
they fail."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import pytest

import refgraph
from refgraph import report

# The browser's side of the report (the page, its script) is the same on every CPython.
pytestmark = pytest.mark.one_python

sys.path.insert(0, os.path.dirname(__file__))
from test_report import (  # noqa: E402
    HOSTILE,
    Bus,
    Session,
    hostile_leak_json,
    leak_json,
    make_hostile_snapshot,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - reported below
    webdriver = None

_MISSING = (
    "selenium is not installed"
    if webdriver is None
    else None
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
    else "chromium or chromedriver is not installed"
)
if _MISSING and not os.environ.get("CI"):
    pytest.skip(_MISSING, allow_module_level=True)

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


@pytest.fixture(scope="module")
def browser():
    if _MISSING:  # under CI: every test of the browser fails (a lane that deselects them
        # needs neither selenium nor Chromium)
        pytest.fail(f"browser tests need Chromium under CI: {_MISSING}")
    profile = tempfile.mkdtemp(prefix="refgraph-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = os.environ.get("REFGRAPH_SHOTS")
    if d:
        os.makedirs(d, exist_ok=True)
        return d
    return str(tmp_path_factory.mktemp("shots"))


def open_report(driver, path):
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get("file://" + os.path.abspath(path))
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.documentElement.dataset.ready") == "1"
    )


def console_problems(driver):
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def tab(driver, name):
    driver.find_element(By.ID, "tab-" + name).click()
    section = driver.find_element(By.ID, "view-" + name)
    assert section.is_displayed()
    return section


def last_row_y(driver):
    return driver.execute_script(
        "var m = -1; document.querySelectorAll('#type-rows .grid-row').forEach(function (r) {"
        " if (!r.hidden) m = Math.max(m, new DOMMatrix(getComputedStyle(r).transform).m42);"
        " }); return m;"
    )


def visible_type_rows(driver):
    """The cells' text of the type rows displayed, top to bottom, as the driver's
    is_displayed() sees them: not hidden, rendered, not outside a box that hides its overflow
    (rows of a scrolling box count). One script: asking the driver for each row and cell (700
    round trips a call) made the test that calls this six times 40 s long."""
    rows = driver.execute_script(
        """
        var out = [];
        document.querySelectorAll('#type-rows .grid-row').forEach(function (r) {
          if (r.hidden || !r.checkVisibility({visibilityProperty: true})) return;
          var box = r.getBoundingClientRect();
          for (var a = r.parentElement; a; a = a.parentElement) {
            var overflow = getComputedStyle(a).overflowY;
            if (overflow !== 'hidden' && overflow !== 'clip') continue;
            var clip = a.getBoundingClientRect();
            if (box.bottom <= clip.top || box.top >= clip.bottom) return;
          }
          var y = new DOMMatrix(getComputedStyle(r).transform).m42;
          out.push([y, Array.from(r.children, function (c) { return c.textContent; })]);
        });
        return out;
        """
    )
    return [cells for _, cells in sorted(rows, key=lambda row: row[0])]


@pytest.fixture(scope="module")
def leak_page(tmp_path_factory):
    """A report of a snapshot after 400 Sessions were added to a bus, with a base snapshot and
    hand-made leak suspects of the LeakReport.to_json() schema."""
    import types as _types

    app = _types.ModuleType("leakapp")
    app.bus = Bus()
    sys.modules["leakapp"] = app
    try:
        old = refgraph.snapshot()
        app.bus._listeners.extend(Session(i) for i in range(400))
        new = refgraph.snapshot()
    finally:
        del sys.modules["leakapp"]
    path = tmp_path_factory.mktemp("rep") / "leak.html"
    new.to_html(path, base=old, suspects=leak_json())
    return str(path)


def test_summary_and_types(browser, leak_page, shots):
    open_report(browser, leak_page)
    summary = browser.find_element(By.ID, "view-summary")
    assert summary.is_displayed()
    text = summary.text
    assert "objects" in text and "Biggest types by retained size" in text
    # With a base: what grew, the leaking type first (its new objects own the most).
    grew = browser.find_element(By.ID, "grew").find_elements(By.CSS_SELECTOR, "tr")
    assert grew[1].find_element(By.CSS_SELECTOR, "td").text == "test_report.Session"
    assert [td.text for td in grew[1].find_elements(By.CSS_SELECTOR, "td")][2:4] == ["+400", "400"]
    assert "__main__.bus._listeners" in text  # the first suspect, from the hand-made dict
    browser.save_screenshot(os.path.join(shots, "1-summary.png"))

    tab(browser, "types")
    rows = visible_type_rows(browser)
    assert 10 < len(rows) < 120
    total = browser.execute_script(
        "return JSON.parse(document.getElementById('refgraph-data').textContent)"
        ".snapshot.types.length"
    )
    assert browser.find_element(By.ID, "type-count").text == f"{total:,} of {total:,} types"
    # Sorted by retained size, biggest first, with diff columns.
    heads = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#type-head > div")]
    assert heads[3] == "retained ▼" and "Δ count" in heads and "new objects" in heads

    # Typing in the filter makes rows go.
    f = browser.find_element(By.ID, "type-filter")
    f.send_keys("session")
    rows = visible_type_rows(browser)
    assert rows and len(rows) < 5
    assert all("session" in r[0].lower() for r in rows)
    sess = next(r for r in rows if r[0] == "test_report.Session")
    assert sess[1] == "400" and sess[4] == "+400", sess
    assert "of" in browser.find_element(By.ID, "type-count").text
    browser.save_screenshot(os.path.join(shots, "2-types-filtered.png"))
    f.clear()
    f.send_keys(" ")  # clear() sends no input event; a space is trimmed away
    assert len(visible_type_rows(browser)) > 10

    # Sorting a column: count, biggest first, then smallest first.
    count_head = browser.find_elements(By.CSS_SELECTOR, "#type-head > div")[1]
    count_head.click()
    counts = [int(r[1].replace(",", "")) for r in visible_type_rows(browser)]
    assert counts == sorted(counts, reverse=True) and counts[0] > 1000
    count_head.click()
    counts = [int(r[1].replace(",", "")) for r in visible_type_rows(browser)]
    assert counts == sorted(counts) and counts[0] <= 1
    name_head = browser.find_elements(By.CSS_SELECTOR, "#type-head > div")[0]
    name_head.click()
    names = [r[0] for r in visible_type_rows(browser)]
    assert names == sorted(names)
    browser.save_screenshot(os.path.join(shots, "3-types-sorted-by-name.png"))

    # A click on a row shows the biggest objects of that type, with a way to their retainers.
    count_head.click()
    first = browser.find_elements(By.CSS_SELECTOR, "#type-rows .grid-row")[0]
    first.click()
    detail = browser.find_element(By.ID, "type-detail")
    assert detail.find_elements(By.CSS_SELECTOR, ".trow"), detail.text
    assert console_problems(browser) == []


def test_dominator_tree_expands(browser, leak_page, shots):
    open_report(browser, leak_page)
    tab(browser, "dominators")
    tree = browser.find_element(By.ID, "dominator-tree")
    top = tree.find_elements(By.CSS_SELECTOR, ":scope > .trow")
    assert len(top) >= 10
    retained = [
        b.get_attribute("textContent") for b in tree.find_elements(By.CSS_SELECTOR, ".trow .n")
    ]
    assert retained
    top[0].find_element(By.CSS_SELECTOR, ".toggle").click()
    kids = tree.find_element(By.CSS_SELECTOR, ":scope > .kids")
    children = kids.find_elements(By.CSS_SELECTOR, ":scope > .trow")
    assert children, "children of the biggest top-level object"
    # Children are indented under their parent.
    pad = lambda e: float(e.value_of_css_property("padding-left").rstrip("px"))  # noqa: E731
    assert pad(children[0]) > pad(top[0])
    # Collapsing hides them again.
    top[0].find_element(By.CSS_SELECTOR, ".toggle").click()
    assert not kids.is_displayed()
    top[0].find_element(By.CSS_SELECTOR, ".toggle").click()
    assert kids.is_displayed()
    browser.save_screenshot(os.path.join(shots, "4-dominators.png"))
    assert console_problems(browser) == []


def test_retainers_expand_one_level_per_click(browser, leak_page, shots):
    open_report(browser, leak_page)
    tab(browser, "retainers")
    tree = browser.find_element(By.ID, "retainer-tree")
    target = tree.find_element(By.CSS_SELECTOR, ".trow.target")
    # With a base, the first object shown is of the type whose new objects own the most.
    assert "Session" in target.find_element(By.CSS_SELECTOR, ".type").text
    level1 = tree.find_elements(By.CSS_SELECTOR, ":scope > .kids > .trow")
    assert level1, "the Session's referrers"
    lst = next(r for r in level1 if r.find_element(By.CSS_SELECTOR, ".type").text == "list")
    assert "400 items" in lst.text
    before = len(tree.find_elements(By.CSS_SELECTOR, ".trow"))
    lst.find_element(By.CSS_SELECTOR, ".toggle").click()
    after = len(tree.find_elements(By.CSS_SELECTOR, ".trow"))
    assert after > before, "expanding the list shows who holds it"
    level2 = lst.find_element(By.XPATH, "following-sibling::div[1]")
    assert "kids" in level2.get_attribute("class")
    assert level2.find_elements(By.CSS_SELECTOR, ".trow")
    browser.save_screenshot(os.path.join(shots, "5-retainers.png"))
    # The shortest path to a root opens to a root.
    browser.find_element(By.ID, "expand-path").click()
    roots = tree.find_elements(By.CSS_SELECTOR, ".trow .badge.root")
    assert [r.text for r in roots] == ["root: module"]
    # Edge names the snapshot knows are shown: the module's __dict__ and its global `bus`.
    edges = [e.text for e in tree.find_elements(By.CSS_SELECTOR, ".edge")]
    assert edges[-2:] == ["bus", "__dict__"], edges
    module_row = roots[0].find_element(By.XPATH, "..")
    assert "leakapp" in module_row.text
    browser.save_screenshot(os.path.join(shots, "6-retainers-path-to-root.png"))
    assert console_problems(browser) == []


def viewbox(browser):
    svg = browser.find_element(By.CSS_SELECTOR, ".drawing svg")
    text = browser.execute_script("return arguments[0].getAttribute('viewBox')", svg)
    return [float(x) for x in text.split()]


def test_suspect_drawing_pans_and_zooms(browser, leak_page, shots):
    open_report(browser, leak_page)
    sec = tab(browser, "suspects")
    cards = sec.find_elements(By.CSS_SELECTOR, ".suspect")
    assert len(cards) == 2
    first = cards[0]
    assert first.find_element(By.CSS_SELECTOR, ".holder").text == "__main__.bus._listeners"
    assert "97.0% of the new objects" in first.text and "app/session.py:42" in first.text
    edges = [e.text for e in first.find_elements(By.CSS_SELECTOR, ".chain .edge")]
    assert edges == ["bus", "_listeners", "[2917]", "__self__"]
    first.find_element(By.CSS_SELECTOR, "button.draw").click()
    svg = first.find_element(By.CSS_SELECTOR, ".drawing svg")
    texts = [t.get_attribute("textContent") for t in svg.find_elements(By.CSS_SELECTOR, "text")]
    assert "_listeners" in texts and "Session" in texts and "[2917]" in texts
    browser.save_screenshot(os.path.join(shots, "7-suspect-drawing.png"))
    first.find_element(By.CSS_SELECTOR, ".drawing-panel").screenshot(
        os.path.join(shots, "7b-suspect-drawing-panel.png")
    )
    v0 = viewbox(browser)
    box = first.find_element(By.CSS_SELECTOR, ".drawing")
    ActionChains(browser).scroll_to_element(box).perform()  # a wheel event with no deltaY
    assert viewbox(browser) == v0
    # A real wheel turn over the drawing zooms in.
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(box), 0, -100).perform()
    v1 = viewbox(browser)
    assert v1[2] < v0[2] and v1[3] < v0[3], (v0, v1)  # zoomed in
    ActionChains(browser).move_to_element(box).click_and_hold().move_by_offset(
        120, 40
    ).release().perform()
    v2 = viewbox(browser)
    assert v2[0] < v1[0] and v2[1] < v1[1] and v2[2] == v1[2], (v1, v2)  # panned
    browser.save_screenshot(os.path.join(shots, "8-suspect-drawing-zoomed.png"))
    first.find_element(By.XPATH, ".//button[text()='fit']").click()
    assert viewbox(browser) == v0
    assert console_problems(browser) == []


def test_search_by_type_and_address(browser, leak_page, shots):
    open_report(browser, leak_page)
    data = browser.execute_script(
        "return JSON.parse(document.getElementById('refgraph-data').textContent).snapshot"
    )
    node = data["nodes"][data["dominators"][0]]
    tab(browser, "search")
    box = browser.find_element(By.ID, "search-input")
    box.send_keys(node["a"])
    res = browser.find_element(By.ID, "search-results")
    addrs = [a.text for a in res.find_elements(By.CSS_SELECTOR, ".addr")]
    assert node["a"] in addrs
    # An address is text: one click selects all of it, ready to copy.
    addr = next(a for a in res.find_elements(By.CSS_SELECTOR, ".addr") if a.text == node["a"])
    addr.click()
    assert browser.execute_script("return window.getSelection().toString()") == node["a"]
    box.clear()
    box.send_keys("Session")
    assert "test_report.Session" in res.text
    browser.save_screenshot(os.path.join(shots, "9-search.png"))
    res.find_element(By.XPATH, ".//button[text()='test_report.Session']").click()
    assert browser.find_element(By.ID, "view-types").is_displayed()
    assert "test_report.Session" in browser.find_element(By.ID, "type-detail").text
    assert console_problems(browser) == []


def test_ten_thousand_types_render_only_visible_rows(browser, tmp_path, shots):
    classes = [type(f"Kind{i:05d}", (), {}) for i in range(12_000)]
    objs = [c() for c in classes]
    snap = refgraph.snapshot()
    path = tmp_path / "many.html"
    snap.to_html(path)
    del objs, classes
    open_report(browser, path)
    tab(browser, "types")
    total = browser.execute_script(
        "return JSON.parse(document.getElementById('refgraph-data').textContent)"
        ".snapshot.types.length"
    )
    assert total > 12_000
    in_dom = len(browser.find_elements(By.CSS_SELECTOR, "#type-rows .grid-row"))
    assert in_dom < 150, in_dom
    # Scrolled to the end, the last rows are drawn, still with few elements.
    browser.execute_script(
        "var s = document.getElementById('type-rows'); s.scrollTop = s.scrollHeight;"
    )
    WebDriverWait(browser, 5).until(lambda d: last_row_y(d) >= (total - 1) * 24)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#type-rows .grid-row")) < 150
    f = browser.find_element(By.ID, "type-filter")
    f.send_keys("Kind1199")
    names = [r[0] for r in visible_type_rows(browser)]
    assert names == [f"{__name__}.Kind1199{i}" for i in range(10)]
    browser.save_screenshot(os.path.join(shots, "10-many-types.png"))
    assert console_problems(browser) == []


def test_hostile_strings_run_nothing(browser, tmp_path, shots):
    page = tmp_path / "hostile.html"
    snap = make_hostile_snapshot()
    snap.to_html(page, suspects=hostile_leak_json())
    open_report(browser, page)
    for view in ("summary", "suspects", "types", "dominators", "retainers", "search"):
        tab(browser, view)
    # Types named by the hostile strings show them as text.
    tab(browser, "types")
    browser.find_element(By.ID, "type-filter").send_keys("</script>")
    rows = visible_type_rows(browser)
    assert any(r[0] == HOSTILE[0] + "." + HOSTILE[0] for r in rows), rows
    browser.save_screenshot(os.path.join(shots, "11-hostile-types.png"))
    # A hostile global: find it, and walk its retainers.
    tab(browser, "search")
    browser.find_element(By.ID, "search-input").send_keys("onerror=window")
    res = browser.find_element(By.ID, "search-results")
    assert HOSTILE[1] in res.get_attribute("textContent")
    btns = res.find_elements(By.XPATH, ".//button[text()='who keeps this alive']")
    assert btns
    btns[0].click()
    tree = browser.find_element(By.ID, "retainer-tree")
    for _ in range(5):  # open the first closed referrer, five times
        closed = [
            t
            for t in tree.find_elements(By.CSS_SELECTOR, ".toggle:not([disabled])")
            if t.text == "▸" and t.is_displayed()
        ]
        if not closed:
            break
        closed[0].click()
    edges = [e.get_attribute("textContent") for e in tree.find_elements(By.CSS_SELECTOR, ".edge")]
    assert any(HOSTILE[1] in e for e in edges), edges
    browser.save_screenshot(os.path.join(shots, "12-hostile-retainers.png"))
    # The hostile suspect, and its drawing.
    sec = tab(browser, "suspects")
    card = sec.find_element(By.CSS_SELECTOR, ".suspect")
    assert card.find_element(By.CSS_SELECTOR, ".holder").text == HOSTILE[0]
    card.find_element(By.CSS_SELECTOR, "button.draw").click()
    svg_text = card.find_element(By.CSS_SELECTOR, ".drawing svg").get_attribute("textContent")
    for text in (HOSTILE[0], HOSTILE[2], "nul\ufffdbyte", "line\u2028sep"):
        assert text in svg_text, (text, svg_text)
    browser.save_screenshot(os.path.join(shots, "13-hostile-suspect.png"))
    # Nothing ran, nothing was inserted as markup.
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    counts = browser.execute_script(
        "return [document.scripts.length, document.querySelectorAll("
        "'img, iframe, object, embed, link, base, form, foreignObject').length,"
        " document.querySelectorAll('[onerror], [onload], [onclick]').length]"
    )
    assert counts == [2, 0, 0], counts
    assert console_problems(browser) == []


def test_suspects_only_page(browser, tmp_path, shots):
    """LeakReport.to_html's page: suspects without a snapshot."""
    path = tmp_path / "leaks.html"
    report.write_page(path, report.suspects_page(leak_json(), source={"snapshot": "find_leaks"}))
    open_report(browser, path)
    tabs = [b.get_attribute("id") for b in browser.find_elements(By.CSS_SELECTOR, "nav button")]
    assert tabs == ["tab-summary", "tab-suspects"]
    # A page of suspects alone opens on them.
    selected = browser.find_element(By.ID, "tab-suspects").get_attribute("aria-selected")
    assert selected == "true"
    assert browser.find_element(By.ID, "view-suspects").is_displayed()
    assert "2 suspects" in tab(browser, "summary").text
    sec = tab(browser, "suspects")
    sec.find_elements(By.CSS_SELECTOR, "button.draw")[1].click()
    assert sec.find_elements(By.CSS_SELECTOR, ".drawing svg text")
    browser.save_screenshot(os.path.join(shots, "14-suspects-only.png"))
    assert console_problems(browser) == []
    data = json.loads(path.read_text().split('id="refgraph-data">')[1].split("</script>")[0])
    assert data["snapshot"] is None
