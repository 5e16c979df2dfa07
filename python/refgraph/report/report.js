// refgraph's HTML report. Every string that comes from the heap is inserted as text
// (textContent, createTextNode, setAttribute of a fixed list): no markup is ever parsed from data.
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("refgraph-data").textContent);
  var S = DATA.snapshot || null;
  var SUSPECTS = DATA.suspects || null;
  var DRAWINGS = DATA.drawings || [];
  var SOURCE = DATA.source || {};
  var SVGNS = "http://www.w3.org/2000/svg";

  // ------------------------------------------------------------------ helpers

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function append(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return parent;
  }
  function button(text, cls, onclick) {
    var b = el("button", cls || "small", text);
    b.type = "button";
    b.addEventListener("click", onclick);
    return b;
  }
  function num(x) {
    var n = Number(x);
    return isFinite(n) ? n : 0;
  }
  function fmtInt(n) {
    return Math.round(num(n)).toLocaleString("en-US");
  }
  function fmtBytes(n) {
    n = num(n);
    var sign = n < 0 ? "-" : "";
    n = Math.abs(n);
    if (n < 1024) return sign + n + " B";
    var units = ["KiB", "MiB", "GiB", "TiB"];
    var v = n / 1024, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return sign + v.toFixed(1) + " " + units[u];
  }
  function signed(n, f) {
    n = num(n);
    var t = f(n);
    return n > 0 ? "+" + t : t;
  }
  function deltaSpan(n, f) {
    var s = el("span", n > 0 ? "up" : n < 0 ? "down" : "muted", signed(n, f));
    return s;
  }
  function str(x) {
    return x === null || x === undefined ? "" : String(x);
  }
  function arr(x) {
    return Array.isArray(x) ? x : [];
  }

  // ------------------------------------------------------------------ views and tabs

  var views = {};
  var order = [];
  var current = null;
  var tabs = document.getElementById("tabs");
  var main = document.getElementById("views");

  function defineView(id, title, build, badge) {
    var section = el("section");
    section.id = "view-" + id;
    section.hidden = true;
    main.appendChild(section);
    var tab = el("button", null, title);
    tab.type = "button";
    tab.id = "tab-" + id;
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-selected", "false");
    if (badge !== undefined) append(tab, el("span", "badge", badge));
    tab.addEventListener("click", function () { show(id); });
    tabs.appendChild(tab);
    views[id] = { section: section, tab: tab, build: build, built: false, onshow: null };
    order.push(id);
  }

  function show(id) {
    var v = views[id];
    if (!v) return;
    if (!v.built) {
      v.built = true;
      v.build(v.section, v);
    }
    for (var i = 0; i < order.length; i++) {
      var w = views[order[i]];
      w.section.hidden = order[i] !== id;
      w.tab.setAttribute("aria-selected", order[i] === id ? "true" : "false");
    }
    current = id;
    if (v.onshow) v.onshow();
  }

  // ------------------------------------------------------------------ the snapshot's data

  var TYPES = S ? arr(S.types) : [];
  var NODES = S ? arr(S.nodes) : [];
  var HAS_BASE = !!(S && S.base);
  var TOTAL = S && S.summary ? num(S.summary.bytes) : 0;
  var examplesByRow = {};
  var newExamplesByRow = {};
  if (S) arr(S.examples).forEach(function (e) { examplesByRow[e[0]] = arr(e[1]); });
  if (S) arr(S.new_examples).forEach(function (e) { newExamplesByRow[e[0]] = arr(e[1]); });

  function typeName(node) {
    var row = TYPES[node.t];
    return row ? str(row[0]) : "?";
  }
  function shortType(name) {
    var i = name.lastIndexOf(".");
    return i >= 0 ? name.slice(i + 1) : name;
  }
  function nodeText(node) {
    if (node.g !== undefined) return str(node.g);
    if (node.l !== undefined) return str(node.l);
    if (node.n !== undefined) return fmtInt(node.n) + (num(node.n) === 1 ? " item" : " items");
    return "";
  }
  function nodeBadges(node, parent) {
    if (node.root) append(parent, el("span", "badge root", "root: " + node.root));
    if (node.w) append(parent, el("span", "badge weak", "weak reference"));
    if (node.del) append(parent, el("span", "badge warn", "__del__"));
  }
  function bar(bytes) {
    var b = el("div", "bar");
    var f = el("div");
    var pct = TOTAL > 0 ? Math.max(0, Math.min(100, (100 * bytes) / TOTAL)) : 0;
    f.style.width = pct.toFixed(2) + "%";
    b.appendChild(f);
    b.title = pct.toFixed(2) + "% of all bytes";
    return b;
  }
  function nodeCells(row, node, idx) {
    append(row, el("span", "type", typeName(node)));
    var text = nodeText(node);
    if (text) {
      var lab = el("span", "label", text);
      lab.title = text;
      append(row, lab);
    }
    nodeBadges(node, row);
    append(row, el("span", "grow"));
    append(row, el("span", "addr", str(node.a)));
    var sh = el("span", "n", fmtBytes(node.s));
    sh.title = "shallow size";
    var rt = el("span", "n", fmtBytes(node.r));
    rt.title = "retained size";
    append(row, sh, rt, bar(num(node.r)));
    row.dataset.node = String(idx);
  }

  // ------------------------------------------------------------------ summary

  function card(k, v, d) {
    var c = el("div", "card");
    append(c, el("div", "k", k), el("div", "v", v));
    if (d) append(c, append(el("div", "d"), d));
    return c;
  }

  function buildSummary(sec) {
    append(sec, el("h2", null, "Summary"));
    if (S) {
      var s = S.summary || {};
      var b = S.base;
      var cards = el("div", "cards");
      append(
        cards,
        card("objects", fmtInt(s.objects), b ? deltaSpan(num(s.objects) - num(b.objects), fmtInt) : null),
        card("bytes", fmtBytes(s.bytes), b ? deltaSpan(num(s.bytes) - num(b.bytes), fmtBytes) : null),
        card("tracked by the gc", fmtInt(s.tracked)),
        card("references", fmtInt(s.references)),
        card("types", fmtInt(s.types)),
        card(
          "roots",
          fmtInt(s.roots),
          fmtInt(s.modules) + " modules, " + fmtInt(s.thread_frames) + " frames, " +
            fmtInt(s.unreferenced) + " unreferenced" +
            (num(s.unrooted) ? ", " + fmtInt(s.unrooted) + " unrooted" : "")
        ),
        card("Python", str(s.python), "pid " + str(s.pid)),
        card("taken", s.created ? new Date(num(s.created) * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "?",
          s.collected ? "garbage left out" : "garbage kept")
      );
      cards.lastChild.classList.add("wide");
      sec.appendChild(cards);
      if (b) {
        append(sec, el("p", "muted", "Compared with a base snapshot of " + fmtInt(b.objects) + " objects, " +
          fmtBytes(b.bytes) + " (pid " + str(b.pid) + ")."));
      }

      if (b) {
        var grew = TYPES.map(function (r, i) { return i; }).filter(function (i) {
          return num(TYPES[i][7]) > 0 || num(TYPES[i][1]) > num(TYPES[i][4]);
        });
        grew.sort(function (x, y) {
          var a = TYPES[x], c = TYPES[y];
          return num(c[7]) - num(a[7]) || (num(c[1]) - num(c[4])) - (num(a[1]) - num(a[4])) || x - y;
        });
        append(sec, el("h2", null, "What grew since the base"));
        if (!grew.length) {
          append(sec, el("p", "muted", "No type grew."));
        } else {
          var g = el("table", "small");
          g.id = "grew";
          append(g, append(el("tr"), el("th", null, "type"), el("th", "n", "count"), el("th", "n", "change"),
            el("th", "n", "new objects"), el("th", "n", "they own")));
          grew.slice(0, 10).forEach(function (i) {
            var r = TYPES[i];
            append(g, append(el("tr"), append(el("td"), button(str(r[0]), "link", function () { openType(i); })),
              el("td", "n", fmtInt(r[1])), append(el("td", "n"), deltaSpan(num(r[1]) - num(r[4]), fmtInt)),
              el("td", "n", fmtInt(r[6])), el("td", "n", fmtBytes(r[7]))));
          });
          sec.appendChild(g);
          append(sec, el("p", "muted", "Types are ordered by the bytes their new objects own (retained by new objects " +
            "that no other new object keeps alive), so the type that leaks comes before what its objects hold."));
        }
      }

      append(sec, el("h2", null, "Biggest types by retained size"));
      var rows = TYPES.map(function (r, i) { return i; });
      rows.sort(function (x, y) { return num(TYPES[y][3]) - num(TYPES[x][3]); });
      var t = el("table", "small");
      var head = append(el("tr"), el("th", null, "type"), el("th", "n", "count"), el("th", "n", "shallow"), el("th", "n", "retained"));
      if (HAS_BASE) append(head, el("th", "n", "change"), el("th", "n", "new objects own"));
      append(t, head);
      rows.slice(0, 10).forEach(function (i) {
        var r = TYPES[i];
        var name = button(str(r[0]), "link", function () { openType(i); });
        var tr = append(el("tr"), append(el("td"), name), el("td", "n", fmtInt(r[1])), el("td", "n", fmtBytes(r[2])), el("td", "n", fmtBytes(r[3])));
        if (HAS_BASE) append(tr, append(el("td", "n"), deltaSpan(num(r[1]) - num(r[4]), fmtInt)), el("td", "n", fmtBytes(r[7])));
        append(t, tr);
      });
      sec.appendChild(t);

      append(sec, el("h2", null, "Biggest objects (dominator tree)"));
      var t2 = el("table", "small");
      append(t2, append(el("tr"), el("th", null, "object"), el("th", null, "address"), el("th", "n", "retained"), el("th", null, "")));
      arr(S.dominators).slice(0, 10).forEach(function (i) {
        var node = NODES[i];
        if (!node) return;
        var text = nodeText(node);
        var td = append(el("td"), el("span", "type", typeName(node)), text ? " " + text : null);
        append(t2, append(el("tr"), td, append(el("td"), el("span", "addr", str(node.a))), el("td", "n", fmtBytes(node.r)),
          append(el("td"), button("who keeps this alive", "small", function () { openRetainers(i); }))));
      });
      sec.appendChild(t2);
    }
    if (SUSPECTS) {
      var list = arr(SUSPECTS.suspects);
      append(sec, el("h2", null, "Leak suspects"));
      if (!list.length) {
        append(sec, el("p", "muted", "No suspect: nothing grew with the work."));
      } else {
        var p = el("p");
        append(p, fmtInt(list.length) + (list.length === 1 ? " suspect" : " suspects") + "; the first: ",
          el("code", null, str(list[0].holder)), " holding " + fmtInt(list[0].new_objects) + " new objects (" +
          fmtBytes(list[0].bytes_per_run) + " per run). ", button("show suspects", "small", function () { show("suspects"); }));
        sec.appendChild(p);
      }
    }
    if (S && S.limits) {
      var lim = S.limits;
      append(sec, el("p", "muted limits", "This report is a summary, not the heap: " + fmtInt(NODES.length) +
        " of " + fmtInt(S.summary.objects) + " objects are described (the " + fmtInt(lim.top_level) +
        " biggest top-level dominators, their biggest " + fmtInt(lim.children_per_node) +
        " children at each level, the biggest objects of the biggest types, and up to " +
        fmtInt(lim.referrers_per_node) + " referrers of each, " + fmtInt(lim.retainer_depth) + " steps back, " +
        "with the shortest path to a root of the biggest)."));
    }
  }

  // ------------------------------------------------------------------ types (virtualised)

  var typesState = null;

  function typeColumns() {
    var cols = [
      { label: "type", get: function (r) { return str(r[0]); }, text: true, fmt: str },
      { label: "count", get: function (r) { return num(r[1]); }, fmt: fmtInt },
      { label: "shallow", get: function (r) { return num(r[2]); }, fmt: fmtBytes },
      { label: "retained", get: function (r) { return num(r[3]); }, fmt: fmtBytes }
    ];
    if (HAS_BASE) {
      cols.push(
        { label: "Δ count", get: function (r) { return num(r[1]) - num(r[4]); }, fmt: function (n) { return signed(n, fmtInt); }, delta: true },
        { label: "Δ bytes", get: function (r) { return num(r[2]) - num(r[5]); }, fmt: function (n) { return signed(n, fmtBytes); }, delta: true },
        { label: "new objects", get: function (r) { return num(r[6]); }, fmt: fmtInt },
        { label: "new own", get: function (r) { return num(r[7]); }, fmt: fmtBytes }
      );
    }
    return cols;
  }

  function buildTypes(sec, view) {
    append(sec, el("h2", null, "Types"));
    var cols = typeColumns();
    var template = "minmax(220px, 1fr) " + cols.slice(1).map(function () { return "118px"; }).join(" ");
    var bar = el("div", "toolbar");
    var input = el("input");
    input.type = "search";
    input.id = "type-filter";
    input.placeholder = "filter types (substring, case-insensitive)";
    input.setAttribute("aria-label", "filter types");
    var count = el("span", "muted");
    count.id = "type-count";
    append(bar, input, count);
    sec.appendChild(bar);

    var head = el("div", "grid-head");
    head.id = "type-head";
    head.style.gridTemplateColumns = template;
    sec.appendChild(head);
    var scroller = el("div", "vscroll");
    scroller.id = "type-rows";
    var sizer = el("div", "vsizer");
    scroller.appendChild(sizer);
    sec.appendChild(scroller);
    var detail = el("div");
    detail.id = "type-detail";
    sec.appendChild(detail);

    var rowH = 24;
    var st = {
      cols: cols, sortCol: 3, desc: true, filter: "", order: [], pool: [], selected: -1,
      input: input, scroller: scroller, sizer: sizer, detail: detail
    };
    typesState = st;
    // Sort keys, computed once per column.
    var keys = cols.map(function (c) { return TYPES.map(c.get); });
    var lower = TYPES.map(function (r) { return str(r[0]).toLowerCase(); });

    var heads = cols.map(function (c, i) {
      var h = el("div", c.text ? "" : "n", c.label);
      h.setAttribute("role", "columnheader");
      h.dataset.col = String(i);
      h.addEventListener("click", function () {
        if (st.sortCol === i) st.desc = !st.desc;
        else { st.sortCol = i; st.desc = !c.text; }
        refresh();
      });
      head.appendChild(h);
      return h;
    });

    function refresh() {
      var f = st.filter;
      var idx = [];
      for (var i = 0; i < TYPES.length; i++) if (!f || lower[i].indexOf(f) >= 0) idx.push(i);
      var k = keys[st.sortCol];
      var dir = st.desc ? -1 : 1;
      if (cols[st.sortCol].text) {
        idx.sort(function (a, b) { return dir * (k[a] < k[b] ? -1 : k[a] > k[b] ? 1 : 0) || a - b; });
      } else {
        idx.sort(function (a, b) { return dir * (k[a] - k[b]) || a - b; });
      }
      st.order = idx;
      heads.forEach(function (h, i) {
        h.classList.toggle("sorted", i === st.sortCol);
        h.textContent = cols[i].label + (i === st.sortCol ? (st.desc ? " ▼" : " ▲") : "");
      });
      count.textContent = fmtInt(idx.length) + " of " + fmtInt(TYPES.length) + " types";
      sizer.style.height = idx.length * rowH + "px";
      render();
    }

    function makeRow() {
      var r = el("div", "grid-row");
      r.style.gridTemplateColumns = template;
      cols.forEach(function (c) { r.appendChild(el("div", c.text ? "" : "n")); });
      r.addEventListener("click", function () {
        var i = Number(r.dataset.row);
        if (i >= 0) selectType(i);
      });
      sizer.appendChild(r);
      return r;
    }

    function render() {
      var top = scroller.scrollTop;
      var h = scroller.clientHeight || 600;
      var first = Math.max(0, Math.floor(top / rowH) - 8);
      var last = Math.min(st.order.length, Math.ceil((top + h) / rowH) + 8);
      var need = last - first;
      while (st.pool.length < need) st.pool.push(makeRow());
      for (var j = 0; j < st.pool.length; j++) {
        var r = st.pool[j];
        if (j >= need) { r.hidden = true; r.dataset.row = "-1"; continue; }
        var i = st.order[first + j];
        var row = TYPES[i];
        r.hidden = false;
        r.dataset.row = String(i);
        r.style.transform = "translateY(" + (first + j) * rowH + "px)";
        r.classList.toggle("selected", i === st.selected);
        for (var c = 0; c < cols.length; c++) {
          var cell = r.children[c];
          var v = keys[c][i];
          cell.textContent = cols[c].fmt(v);
          if (cols[c].delta) cell.className = "n " + (v > 0 ? "up" : v < 0 ? "down" : "muted");
        }
        r.title = str(row[0]);
      }
    }

    var pending = false;
    scroller.addEventListener("scroll", function () {
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; render(); });
    });
    input.addEventListener("input", function () {
      st.filter = input.value.trim().toLowerCase();
      scroller.scrollTop = 0;
      refresh();
    });
    window.addEventListener("resize", function () { if (current === "types") render(); });
    st.refresh = refresh;
    st.render = render;
    view.onshow = render;
    refresh();
  }

  function selectType(i) {
    var st = typesState;
    st.selected = i;
    st.render();
    var d = st.detail;
    d.textContent = "";
    var r = TYPES[i];
    append(d, el("h3", null, str(r[0])));
    var p = el("p", "muted", fmtInt(r[1]) + " objects, " + fmtBytes(r[2]) + " shallow, " + fmtBytes(r[3]) + " retained" +
      (HAS_BASE ? "; " + signed(num(r[1]) - num(r[4]), fmtInt) + " objects since the base, " + fmtInt(r[6]) + " new" : "") + ".");
    d.appendChild(p);
    var ex = examplesByRow[i], nex = newExamplesByRow[i];
    if ((!ex || !ex.length) && (!nex || !nex.length)) {
      append(d, el("p", "muted", "No object of this type is described in the report (only the biggest objects of the biggest types are)."));
      return;
    }
    if (nex && nex.length) {
      append(d, el("p", null, "Its biggest new objects (that own what they hold):"));
      d.appendChild(objectList(nex));
    }
    if (ex && ex.length) {
      append(d, el("p", null, "Its biggest objects:"));
      d.appendChild(objectList(ex));
    }
  }

  function objectList(list) {
    var tree = el("div", "tree");
    list.forEach(function (ni) {
      var node = NODES[ni];
      if (!node) return;
      var row = el("div", "trow");
      append(row, el("span", "toggle"));
      nodeCells(row, node, ni);
      append(row, button("who keeps this alive", "small", function () { openRetainers(ni); }));
      tree.appendChild(row);
    });
    return tree;
  }

  function openType(i) {
    show("types");
    var st = typesState;
    st.input.value = "";
    st.filter = "";
    st.refresh();
    var pos = st.order.indexOf(i);
    if (pos >= 0) st.scroller.scrollTop = Math.max(0, pos * 24 - 48);
    st.render();
    selectType(i);
  }

  // ------------------------------------------------------------------ dominator tree

  function treeRow(depth, node, idx) {
    var row = el("div", "trow");
    row.style.paddingLeft = 4 + depth * 18 + "px";
    var t = el("button", "toggle", "▸");
    t.type = "button";
    row.appendChild(t);
    nodeCells(row, node, idx);
    return { row: row, toggle: t };
  }

  function noteRow(depth, text) {
    var r = el("div", "trow note", text);
    r.style.paddingLeft = 26 + depth * 18 + "px";
    return r;
  }

  function domRow(container, idx, depth) {
    var node = NODES[idx];
    if (!node) return;
    var parts = treeRow(depth, node, idx);
    var row = parts.row, t = parts.toggle;
    row.classList.add("dom");
    append(row, button("who keeps this alive", "small", function () { openRetainers(idx); }));
    container.appendChild(row);
    var kids = null;
    var hasKids = num(node.kc) > 0;
    if (!hasKids) { t.disabled = true; t.textContent = "·"; }
    t.setAttribute("aria-label", "expand");
    t.addEventListener("click", function () {
      if (!hasKids) return;
      if (kids) {
        kids.hidden = !kids.hidden;
        t.textContent = kids.hidden ? "▸" : "▾";
        return;
      }
      kids = el("div", "kids");
      row.after(kids);
      t.textContent = "▾";
      if (!node.k) {
        kids.appendChild(noteRow(depth + 1, fmtInt(node.kc) + " dominated objects, not in this report"));
        return;
      }
      node.k.forEach(function (c) { domRow(kids, c, depth + 1); });
      var km = arr(node.km);
      if (num(km[0]) > 0) {
        kids.appendChild(noteRow(depth + 1, "… " + fmtInt(km[0]) + " smaller dominated objects (" + fmtBytes(km[1]) + ") not in this report"));
      }
    });
  }

  function buildDominators(sec) {
    append(sec, el("h2", null, "Dominator tree"));
    append(sec, el("p", "muted", "Each object keeps alive the objects under it: they would be freed with it. " +
      "Top level: the roots (modules, thread frames, objects nothing refers to) and the objects that more than one root keeps alive. Biggest retained size first."));
    var tree = el("div", "tree");
    tree.id = "dominator-tree";
    arr(S.dominators).forEach(function (i) { domRow(tree, i, 0); });
    var more = arr(S.dominators_more);
    if (num(more[0]) > 0) tree.appendChild(noteRow(0, "… " + fmtInt(more[0]) + " smaller top-level objects (" + fmtBytes(more[1]) + ") not in this report"));
    sec.appendChild(tree);
  }

  // ------------------------------------------------------------------ retainers

  var retainersState = null;

  var retRows = new WeakMap();

  function retRow(container, idx, depth, edge, ancestors) {
    var node = NODES[idx];
    if (!node) return null;
    var parts = treeRow(depth, node, idx);
    var row = parts.row, t = parts.toggle;
    row.classList.add("ret");
    if (edge !== null) {
      var via = el("span", "edge", edge);
      via.title = "the name of the reference from this object to the one above";
      row.insertBefore(via, t.nextSibling);
    }
    if (depth === 0) row.classList.add("target");
    container.appendChild(row);
    var refs = node.p;
    var kids = null;
    if (ancestors.indexOf(idx) >= 0) {
      t.disabled = true;
      t.textContent = "↺";
      append(row, el("span", "badge weak", "cycle"));
    } else if (num(node.pc) === 0) {
      t.disabled = true;
      t.textContent = "·";
    }
    // Show the referrers (built on the first call); `toggle` hides them again when shown.
    function open(toggle) {
      if (t.disabled) return null;
      if (kids) {
        kids.hidden = toggle ? !kids.hidden : false;
        t.textContent = kids.hidden ? "▸" : "▾";
        return kids;
      }
      kids = el("div", "kids");
      row.after(kids);
      t.textContent = "▾";
      if (!refs) {
        kids.appendChild(noteRow(depth + 1, fmtInt(node.pc) + " referrers, not in this report"));
        return kids;
      }
      var chain = ancestors.concat([idx]);
      refs.forEach(function (r) {
        var rr = retRow(kids, r[0], depth + 1, r.length > 1 ? str(r[1]) : null, chain);
        if (rr && r[0] === node.h) rr.row.classList.add("hop");
      });
      var more = num(node.pc) - refs.length;
      if (more > 0) kids.appendChild(noteRow(depth + 1, "… " + fmtInt(more) + " more referrers not in this report"));
      return kids;
    }
    t.addEventListener("click", function () { open(true); });
    var obj = { row: row, idx: idx, open: open };
    retRows.set(row, obj);
    return obj;
  }

  function buildRetainers(sec) {
    append(sec, el("h2", null, "Who keeps this alive"));
    append(sec, el("p", "muted", "The objects that refer to the chosen one, then what refers to those, one level per click. " +
      "The name on a row is how that object holds the one above it. Pick an object in the dominator tree, " +
      "the types table or the search."));
    var bar = el("div", "toolbar");
    var pathBtn = button("expand the shortest path to a root", "small", function () { expandPath(); });
    pathBtn.id = "expand-path";
    append(bar, pathBtn);
    sec.appendChild(bar);
    var tree = el("div", "tree");
    tree.id = "retainer-tree";
    sec.appendChild(tree);
    retainersState = { tree: tree, target: null, root: null };
    var first = defaultTarget();
    if (first !== undefined) setRetainersTarget(first);
    else tree.appendChild(el("p", "empty", "No object in this report."));
  }

  // The first object to explain: with a base, the biggest object of the type whose new objects
  // own the most; else the biggest object that is not a root.
  function defaultTarget() {
    if (HAS_BASE) {
      var best = -1, bytes = 0;
      for (var r in newExamplesByRow) {
        var row = TYPES[r];
        if (row && num(row[7]) > bytes && newExamplesByRow[r].length) { bytes = num(row[7]); best = Number(r); }
      }
      if (best >= 0) return newExamplesByRow[best][0];
    }
    var first = arr(S.dominators).filter(function (i) { return NODES[i] && !NODES[i].root; })[0];
    return first === undefined ? arr(S.dominators)[0] : first;
  }

  function setRetainersTarget(idx) {
    var st = retainersState;
    st.tree.textContent = "";
    st.target = idx;
    st.root = retRow(st.tree, idx, 0, null, []);
    if (st.root) st.root.open(false);
  }

  // Open the referrers along the next steps to a root (`h`), as far as the report has them.
  function expandPath() {
    var cur = retainersState.root;
    for (var steps = 0; cur && steps < 500; steps++) {
      var node = NODES[cur.idx];
      if (!node || node.h === undefined) break;
      var kids = cur.open(false);
      if (!kids) break;
      var next = null;
      for (var c = kids.firstChild; c; c = c.nextSibling) {
        if (c.dataset && c.dataset.node === String(node.h)) { next = retRows.get(c); break; }
      }
      if (!next) break;
      cur = next;
    }
    if (cur) cur.row.scrollIntoView({ block: "center" });
  }

  function openRetainers(idx) {
    show("retainers");
    setRetainersTarget(idx);
    window.scrollTo(0, 0);
  }

  // ------------------------------------------------------------------ suspects

  var ALLOWED_SVG = { svg: 1, g: 1, rect: 1, path: 1, polygon: 1, polyline: 1, ellipse: 1, circle: 1, line: 1, text: 1, tspan: 1, title: 1 };
  var ALLOWED_ATTR = {
    x: 1, y: 1, width: 1, height: 1, viewBox: 1, fill: 1, stroke: 1, "stroke-width": 1, "stroke-dasharray": 1, d: 1,
    points: 1, cx: 1, cy: 1, rx: 1, ry: 1, r: 1, x1: 1, y1: 1, x2: 1, y2: 1, "font-size": 1, "font-family": 1,
    "font-weight": 1, "font-style": 1, "text-anchor": 1, textLength: 1, lengthAdjust: 1, "class": 1, transform: 1, opacity: 1
  };

  // Copy a drawing into the page element by element: only drawing elements and presentation
  // attributes (no event handler, no link, no style, no url()), text as text.
  function importSvg(text) {
    var doc = new DOMParser().parseFromString(str(text), "image/svg+xml");
    var root = doc.documentElement;
    if (!root || root.localName !== "svg" || root.namespaceURI !== SVGNS || doc.getElementsByTagName("parsererror").length) return null;
    function copy(node) {
      var out = document.createElementNS(SVGNS, node.localName);
      for (var i = 0; i < node.attributes.length; i++) {
        var a = node.attributes[i];
        if (a.namespaceURI === null && ALLOWED_ATTR[a.name] === 1 && !/url\s*\(|javascript:/i.test(a.value)) {
          out.setAttribute(a.name, a.value);
        }
      }
      for (var c = node.firstChild; c; c = c.nextSibling) {
        if (c.nodeType === 1) {
          if (c.namespaceURI === SVGNS && ALLOWED_SVG[c.localName] === 1) out.appendChild(copy(c));
        } else if (c.nodeType === 3) {
          out.appendChild(document.createTextNode(c.data));
        }
      }
      return out;
    }
    return copy(root);
  }

  function panZoom(box, svg) {
    var vb = (svg.getAttribute("viewBox") || "").split(/[\s,]+/).map(Number);
    if (vb.length !== 4 || vb.some(function (x) { return !isFinite(x); })) {
      vb = [0, 0, num(svg.getAttribute("width")) || 800, num(svg.getAttribute("height")) || 600];
    }
    var home = vb.slice();
    var v = vb.slice();
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    function apply() { svg.setAttribute("viewBox", v.map(function (x) { return x.toFixed(2); }).join(" ")); }
    function zoom(f, cx, cy) {
      var nw = v[2] * f, nh = v[3] * f;
      if (nw < home[2] / 50 || nw > home[2] * 20) return;
      v = [cx - (cx - v[0]) * f, cy - (cy - v[1]) * f, nw, nh];
      apply();
    }
    function toSvg(ev) {
      var r = svg.getBoundingClientRect();
      var s = Math.max(v[2] / r.width, v[3] / r.height);
      var ox = v[0] + (v[2] - r.width * s) / 2, oy = v[1] + (v[3] - r.height * s) / 2;
      return [ox + (ev.clientX - r.left) * s, oy + (ev.clientY - r.top) * s, s];
    }
    box.addEventListener("wheel", function (ev) {
      if (!ev.deltaY) return; // a sideways scroll
      ev.preventDefault();
      var p = toSvg(ev);
      zoom(ev.deltaY < 0 ? 1 / 1.2 : 1.2, p[0], p[1]);
    }, { passive: false });
    var drag = null;
    box.addEventListener("pointerdown", function (ev) {
      drag = { x: ev.clientX, y: ev.clientY, v: v.slice(), s: toSvg(ev)[2] };
      box.classList.add("dragging");
      if (box.setPointerCapture) box.setPointerCapture(ev.pointerId);
    });
    box.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      v[0] = drag.v[0] - (ev.clientX - drag.x) * drag.s;
      v[1] = drag.v[1] - (ev.clientY - drag.y) * drag.s;
      apply();
    });
    function end() { drag = null; box.classList.remove("dragging"); }
    box.addEventListener("pointerup", end);
    box.addEventListener("pointercancel", end);
    return {
      zoomIn: function () { zoom(1 / 1.25, v[0] + v[2] / 2, v[1] + v[3] / 2); },
      zoomOut: function () { zoom(1.25, v[0] + v[2] / 2, v[1] + v[3] / 2); },
      fit: function () { v = home.slice(); apply(); },
      view: function () { return v.slice(); }
    };
  }

  function drawingPanel(i, holder) {
    var panel = el("div", "drawing-panel");
    var svg = importSvg(DRAWINGS[i]);
    if (!svg) {
      append(panel, el("p", "empty", "No drawing for this suspect."));
      return panel;
    }
    var box = el("div", "drawing");
    box.appendChild(svg);
    var pz = panZoom(box, svg);
    var bar = el("div", "toolbar");
    append(bar, el("span", "muted", "path of " + holder + " — drag to pan, wheel to zoom"),
      button("+", "small", pz.zoomIn), button("−", "small", pz.zoomOut), button("fit", "small", pz.fit));
    append(panel, bar, box);
    panel.panZoom = pz;
    return panel;
  }

  function buildSuspects(sec) {
    var list = arr(SUSPECTS.suspects);
    append(sec, el("h2", null, "Leak suspects"));
    append(sec, el("p", "muted", fmtInt(SUSPECTS.runs) + " runs of " + fmtInt(SUSPECTS.calls_per_run) +
      " calls each. A suspect is the object through which most new objects are kept alive."));
    if (!list.length) {
      append(sec, el("p", "empty", "No suspect: nothing grew with the work."));
      return;
    }
    list.forEach(function (s, i) {
      var box = el("div", "suspect");
      box.id = "suspect-" + i;
      var h = el("h3");
      append(h, "#" + (i + 1) + " ", el("code", "holder", str(s.holder)), " ", el("span", "badge", str(s.holder_type)));
      box.appendChild(h);
      append(box, el("p", null, fmtInt(s.new_objects) + " new objects, " + fmtBytes(s.bytes_per_run) + " per run, " +
        (num(s.share) * 100).toFixed(1) + "% of the new objects."));
      var types = arr(s.types);
      if (types.length) {
        var t = el("table", "small");
        append(t, append(el("tr"), el("th", null, "type of the new objects"), el("th", "n", "per run")));
        types.forEach(function (ty) {
          append(t, append(el("tr"), el("td", "mono", str(ty.type)), el("td", "n", num(ty.per_run).toFixed(1))));
        });
        box.appendChild(t);
      }
      var path = arr(s.path);
      if (path.length) {
        append(box, el("h3", null, "Example path, from the root to a leaked object"));
        var chain = el("div", "chain");
        path.forEach(function (step, j) {
          var row = el("div", "step");
          append(row, el("span", "type", str(step.type)), el("span", "label", str(step.label)));
          chain.appendChild(row);
          if (j + 1 < path.length) {
            var via = el("div", "via");
            append(via, "↓ ");
            if (step.edge !== null && step.edge !== undefined) append(via, el("span", "edge", str(step.edge)));
            else append(via, el("span", "muted", "(unnamed reference)"));
            chain.appendChild(via);
          }
        });
        box.appendChild(chain);
      }
      var alloc = arr(s.allocated_at);
      if (alloc.length) {
        var a = el("p");
        append(a, "Allocated at: ");
        alloc.forEach(function (x, j) {
          if (j) append(a, ", ");
          append(a, el("code", null, str(x.file) + ":" + fmtInt(x.line)));
        });
        box.appendChild(a);
      }
      var slot = el("div");
      var open = null;
      var b = button("show the drawing", "small draw", function () {
        if (open) { open.hidden = !open.hidden; b.textContent = open.hidden ? "show the drawing" : "hide the drawing"; return; }
        open = drawingPanel(i, str(s.holder));
        slot.appendChild(open);
        b.textContent = "hide the drawing";
        open.scrollIntoView({ block: "nearest" });
      });
      append(box, b, slot);
      sec.appendChild(box);
    });
  }

  // ------------------------------------------------------------------ search

  function buildSearch(sec) {
    append(sec, el("h2", null, "Search"));
    var bar = el("div", "toolbar");
    var input = el("input");
    input.type = "search";
    input.id = "search-input";
    input.placeholder = "type name or address (0x…)";
    input.setAttribute("aria-label", "search");
    append(bar, input);
    sec.appendChild(bar);
    var out = el("div");
    out.id = "search-results";
    sec.appendChild(out);
    var lowerTypes = TYPES.map(function (r) { return str(r[0]).toLowerCase(); });
    function run() {
      out.textContent = "";
      var q = input.value.trim().toLowerCase();
      if (!q) return;
      var hex = /^(0x)?[0-9a-f]+$/.test(q) ? (q.indexOf("0x") === 0 ? q : "0x" + q) : null;
      var tmatch = [];
      for (var i = 0; i < TYPES.length && tmatch.length < 50; i++) if (lowerTypes[i].indexOf(q) >= 0) tmatch.push(i);
      var nmatch = [];
      for (var j = 0; j < NODES.length && nmatch.length < 100; j++) {
        var n = NODES[j];
        if ((hex && str(n.a).indexOf(hex) === 0) || lowerTypes[n.t] === q || (n.g !== undefined && str(n.g).toLowerCase().indexOf(q) >= 0)) nmatch.push(j);
      }
      append(out, el("h3", null, "Types (" + tmatch.length + (tmatch.length === 50 ? "+" : "") + ")"));
      var t = el("table", "small");
      tmatch.forEach(function (i) {
        var r = TYPES[i];
        append(t, append(el("tr"), append(el("td"), button(str(r[0]), "link", function () { openType(i); })),
          el("td", "n", fmtInt(r[1])), el("td", "n", fmtBytes(r[3]))));
      });
      out.appendChild(t);
      append(out, el("h3", null, "Objects in this report (" + nmatch.length + (nmatch.length === 100 ? "+" : "") + ")"));
      var tree = el("div", "tree");
      nmatch.forEach(function (ni) {
        var row = el("div", "trow");
        append(row, el("span", "toggle"));
        nodeCells(row, NODES[ni], ni);
        append(row, button("who keeps this alive", "small", function () { openRetainers(ni); }));
        tree.appendChild(row);
      });
      out.appendChild(tree);
      if (!nmatch.length) append(out, el("p", "muted", "Only the objects this report describes can be found by address."));
    }
    input.addEventListener("input", run);
  }

  // ------------------------------------------------------------------ start

  var src = [];
  if (SOURCE.snapshot) src.push(str(SOURCE.snapshot));
  if (SOURCE.base) src.push("compared with " + str(SOURCE.base));
  if (SOURCE.generated) src.push("written " + str(SOURCE.generated));
  document.getElementById("source").textContent = src.join(" · ");

  defineView("summary", "Summary", buildSummary);
  if (SUSPECTS) defineView("suspects", "Leak suspects", buildSuspects, String(arr(SUSPECTS.suspects).length));
  if (S) {
    defineView("types", "Types", buildTypes, fmtInt(TYPES.length));
    defineView("dominators", "Dominator tree", buildDominators);
    defineView("retainers", "Who keeps this alive", buildRetainers);
    defineView("search", "Search", buildSearch);
  }
  // A page of leak suspects alone opens on them; a snapshot's page on its summary.
  show(!S && SUSPECTS && arr(SUSPECTS.suspects).length ? "suspects" : "summary");
  document.documentElement.dataset.readyMs = String(Math.round(performance.now()));
  document.documentElement.dataset.ready = "1";
})();
