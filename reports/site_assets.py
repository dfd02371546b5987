"""The site's static assets: one stylesheet and one script, written by the harness (no network asset, no library).

``site.js`` holds the chunk loader (JSONP-style: a chunk is a script calling ``HarnessSite.loaded(key, data)``,
because browsers refuse ``fetch()`` of ``file://`` JSON), the table filters, a small Python syntax highlighter
and the renderers of task details and side-by-side diffs. Every text that comes from a program, a model reply or
a record is put into the page with ``textContent`` (never ``innerHTML``), so it shows as text whatever it holds.
"""

from __future__ import annotations

SITE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem 2rem; color: #212529;
       max-width: 1400px; }
a { color: #1864ab; }
nav.crumbs { font-size: 0.9rem; margin-bottom: 0.5rem; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #dee2e6; padding: 0.3rem 0.6rem; text-align: right; vertical-align: top; }
th[scope=row], thead th:first-child, td.left, th.left { text-align: left; }
thead th { border-bottom: 2px solid #495057; background: #f8f9fa; position: sticky; top: 0; }
caption { caption-side: top; text-align: left; color: #495057; padding-bottom: 0.3rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; font-size: 0.9rem; }
dl.facts dt { color: #495057; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.changed { background: #fff3bf; }
.st-pass { color: #2b8a3e; } .st-fail, .st-wrong { color: #c92a2a; } .st-timeout { color: #e67700; }
.st-error { color: #862e9c; } .st-mixed { color: #1864ab; }
.filters { display: flex; flex-wrap: wrap; gap: 0.8rem; align-items: center; margin: 0.8rem 0; }
.filters label { font-size: 0.9rem; }
button.task { font: inherit; background: none; border: none; color: #1864ab; cursor: pointer; padding: 0;
              text-decoration: underline; text-align: left; }
tr.detail > td { background: #f8f9fa; text-align: left; }
pre.code { background: #fff; border: 1px solid #dee2e6; padding: 0.5rem 0.7rem; overflow: auto; max-height: 36rem;
           font-size: 0.82rem; line-height: 1.35; margin: 0.3rem 0; white-space: pre; }
pre.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.sample { border-left: 4px solid #ced4da; padding: 0.2rem 0 0.2rem 0.7rem; margin: 0.8rem 0; }
.sample.pass { border-color: #2b8a3e; } .sample.fail { border-color: #c92a2a; }
.sample.timeout { border-color: #e67700; } .sample.error { border-color: #862e9c; }
.sample h4 { margin: 0.2rem 0; font-size: 0.95rem; }
.failing { font-size: 0.88rem; } .failing th { text-align: left; color: #495057; font-weight: normal; }
.failing td { text-align: left; }
.failing td pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 12rem; overflow: auto; }
.k { color: #7048e8; font-weight: 600; } .s { color: #2b8a3e; } .c { color: #868e96; font-style: italic; }
.n { color: #d9480f; } .b { color: #1971c2; } .d { color: #c2255c; } .f { color: #0b7285; font-weight: 600; }
table.diff { width: 100%; table-layout: fixed; font-size: 0.8rem; }
table.diff td { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap;
                overflow-wrap: anywhere; text-align: left; border: none; padding: 0 0.4rem; }
table.diff col.no { width: 3.5em; }
table.diff td.no { color: #868e96; text-align: right; user-select: none; }
table.diff tr.del td.a, table.diff tr.rep td.a { background: #ffe3e3; }
table.diff tr.ins td.b, table.diff tr.rep td.b { background: #d3f9d8; }
table.diff th { text-align: left; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.muted, small { color: #868e96; } .warn { color: #c92a2a; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e9ecef; }
figcaption { color: #495057; font-size: 0.85rem; }
tr.worse td, tr.worse th { background: #fff0f0; } tr.better td, tr.better th { background: #effaf1; }
tr.incomparable td { color: #868e96; }
details { margin: 0.4rem 0; } details p { margin: 0.3rem 1rem; font-size: 0.9rem; }
ul.notes { color: #495057; font-size: 0.9rem; }
#runs { font-size: 0.85rem; }
.pager { margin: 0.5rem 0; }
"""

SITE_JS = r"""
"use strict";
(function () {
  const H = (window.HarnessSite = window.HarnessSite || {});
  const cache = {};
  const pending = {};

  // ------------------------------------------------------------------ chunks (JSONP: works from file://)
  H.loaded = function (key, data) {
    cache[key] = data;
    const waiting = pending[key] || [];
    delete pending[key];
    waiting.forEach(function (w) { w[0](data); });
  };
  H.load = function (src, key) {
    return new Promise(function (resolve, reject) {
      if (key in cache) { resolve(cache[key]); return; }
      const first = !(key in pending);
      (pending[key] = pending[key] || []).push([resolve, reject]);
      if (!first) return;
      const s = document.createElement("script");
      s.src = src;
      s.onerror = function () {
        const waiting = pending[key] || [];
        delete pending[key];
        waiting.forEach(function (w) { w[1](new Error("cannot load " + src)); });
      };
      document.head.appendChild(s);
    });
  };

  // ------------------------------------------------------------------ elements (text only, never innerHTML)
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "cls") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      }
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  H.el = el;

  // ------------------------------------------------------------------ a small Python highlighter
  const KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else " +
    "except finally for from global if import in is lambda nonlocal not or pass raise return try while with " +
    "yield match case").split(" "));
  const BUILTINS = new Set(("abs all any bin bool bytes callable chr dict dir divmod enumerate filter float " +
    "format frozenset getattr hasattr hash hex id input int isinstance issubclass iter len list map max min " +
    "next object oct open ord pow print range repr reversed round set setattr slice sorted str sum super tuple " +
    "type zip self cls Exception ValueError TypeError KeyError IndexError").split(" "));
  const TOKEN = new RegExp([
    "(#[^\\n]*)",                                                                  // 1 comment
    "((?:\\b[rRbBuUfF]{1,2})?(?:'''[\\s\\S]*?(?:'''|$(?![\\s\\S]))|\"\"\"[\\s\\S]*?(?:\"\"\"|$(?![\\s\\S]))" +
      "|'(?:\\\\.|[^'\\\\\\n])*'?|\"(?:\\\\.|[^\"\\\\\\n])*\"?))",                // 2 string
    "(\\b0[xXoObB][0-9a-fA-F_]+\\b|\\b\\d[\\d_]*(?:\\.\\d*)?(?:[eE][+-]?\\d+)?[jJ]?)",  // 3 number
    "(@[A-Za-z_][\\w.]*)",                                                         // 4 decorator
    "([A-Za-z_]\\w*)",                                                             // 5 name
  ].join("|"), "g");
  H.highlight = function (code) {
    const frag = document.createDocumentFragment();
    let last = 0, prev = "", m;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(code)) !== null) {
      if (m[0] === "") { TOKEN.lastIndex++; continue; }
      if (m.index > last) frag.appendChild(document.createTextNode(code.slice(last, m.index)));
      let cls = null;
      if (m[1]) cls = "c";
      else if (m[2]) cls = "s";
      else if (m[3]) cls = "n";
      else if (m[4]) cls = "d";
      else if (KEYWORDS.has(m[5])) cls = "k";
      else if (prev === "def" || prev === "class") cls = "f";
      else if (BUILTINS.has(m[5])) cls = "b";
      frag.appendChild(cls ? el("span", { cls: cls, text: m[0] }) : document.createTextNode(m[0]));
      prev = m[5] || "";
      last = m.index + m[0].length;
    }
    if (last < code.length) frag.appendChild(document.createTextNode(code.slice(last)));
    return frag;
  };
  function codeBlock(text, plain) {
    const pre = el("pre", { cls: plain ? "code text" : "code" });
    const code = el("code");
    if (plain) code.textContent = text; else code.appendChild(H.highlight(text));
    pre.appendChild(code);
    return pre;
  }
  H.codeBlock = codeBlock;

  // ------------------------------------------------------------------ filters of a task table
  H.filters = function (tableId) {
    const table = document.getElementById(tableId);
    if (!table) return;
    const controls = Array.from(document.querySelectorAll("[data-filter-of='" + tableId + "']"));
    const search = document.querySelector("[data-search-of='" + tableId + "']");
    const counter = document.querySelector("[data-count-of='" + tableId + "']");
    const rows = Array.from(table.tBodies[0].rows).filter(function (r) { return r.hasAttribute("data-key"); });
    function apply() {
      const q = search ? search.value.trim().toLowerCase() : "";
      let shown = 0;
      rows.forEach(function (row) {
        let ok = true;
        controls.forEach(function (c) {
          if (!c.value) return;
          const values = (row.getAttribute(c.getAttribute("data-attr")) || "").split("|");
          if (values.indexOf(c.value) < 0) ok = false;
        });
        if (ok && q && (row.getAttribute("data-search") || "").toLowerCase().indexOf(q) < 0) ok = false;
        row.hidden = !ok;
        const detail = row.nextElementSibling;
        if (detail && detail.classList.contains("detail")) detail.hidden = !ok || detail.dataset.open !== "1";
        if (ok) shown++;
      });
      if (counter) counter.textContent = shown + " of " + rows.length + " shown";
    }
    controls.forEach(function (c) { c.addEventListener("change", apply); });
    if (search) search.addEventListener("input", apply);
    apply();
  };

  // ------------------------------------------------------------------ expandable rows
  H.expander = function (tableId, srcOf, render) {
    const table = document.getElementById(tableId);
    if (!table) return;
    const width = table.tHead.rows[0].cells.length;
    table.addEventListener("click", function (ev) {
      const button = ev.target.closest("button.task");
      if (!button) return;
      const row = button.closest("tr");
      let detail = row.nextElementSibling;
      if (detail && detail.classList.contains("detail")) {
        const open = detail.dataset.open !== "1";
        detail.dataset.open = open ? "1" : "0";
        detail.hidden = !open;
        button.setAttribute("aria-expanded", String(open));
        return;
      }
      detail = el("tr", { cls: "detail" });
      detail.dataset.open = "1";
      const cell = el("td", { colspan: String(width) });
      const box = el("div", { cls: "detail-box", text: "loading…" });
      cell.appendChild(box);
      detail.appendChild(cell);
      row.parentNode.insertBefore(detail, row.nextSibling);
      button.setAttribute("aria-expanded", "true");
      const key = row.getAttribute("data-key");
      H.load(srcOf(key), key).then(function (data) {
        box.textContent = "";
        box.appendChild(render(data));
      }, function (err) {
        box.textContent = err.message + " (the chunk file beside this page is missing: rebuild with harness report)";
        box.className = "warn";
      });
    });
  };

  // ------------------------------------------------------------------ a sample, its failing input, its program
  function failingTable(f) {
    const t = el("table", { cls: "failing" });
    const add = function (name, value, pre) {
      if (value === undefined || value === null || value === "") return;
      t.appendChild(el("tr", null, [el("th", { text: name }), el("td", null, [pre ? el("pre", { text: value }) : el("span", { text: value })])]));
    };
    add("suite", f.suite);
    add("input", f.index === undefined || f.index === null ? null : (f.index < 0 ? "(loading the program)" : "#" + f.index));
    add("reason", f.reason, true);
    add("input value", f.input, true);
    add("expected", f.expected, true);
    add("returned", f.returned, true);
    add("answer", f.answer, true);
    return t;
  }
  H.failingTable = failingTable;

  function cpuText(cpu) {
    return Object.keys(cpu || {}).map(function (k) { return k + " " + Number(cpu[k]).toFixed(3) + " s"; }).join(", ");
  }

  H.sampleBox = function (s, data, title) {
    const box = el("div", { cls: "sample " + s.status });
    const head = (title || ("sample " + s.i + (s.line ? " (line " + s.line + ")" : ""))) + ": ";
    const mode = (s.mode || s.status) + (s.exception ? " (" + s.exception + ")" : "");
    const h = el("h4", null, [head, el("span", { cls: "st-" + s.status, text: mode })]);
    box.appendChild(h);
    const facts = [];
    if (s.suites) facts.push(Object.keys(s.suites).map(function (k) { return k + " " + s.suites[k]; }).join(", "));
    if (s.cpu && Object.keys(s.cpu).length) facts.push("CPU " + cpuText(s.cpu));
    if (s.cached) facts.push("verdict from the cache");
    if (facts.length) box.appendChild(el("div", { cls: "muted", text: facts.join(" · ") }));
    if (s.reason) box.appendChild(el("div", { cls: "reason", text: "reason: " + s.reason }));
    if (s.failing) box.appendChild(failingTable(s.failing));
    const program = s.program === null || s.program === undefined ? null : data.programs[s.program];
    if (program !== null) box.appendChild(codeBlock(program));
    else box.appendChild(el("div", { cls: "muted", text: "program not available: " + (s.program_note || "not in the samples file") }));
    if (s.raw !== null && s.raw !== undefined && data.raws) {
      const raw = data.raws[s.raw];
      const d = el("details", null, [el("summary", { text: "raw generation" + (raw.finish_reason ? " (finish reason " + raw.finish_reason + ", " + raw.completion_tokens + " tokens)" : "") })]);
      d.appendChild(codeBlock((raw.response_prefix || "") + raw.text, true));
      box.appendChild(d);
    }
    return box;
  };

  // ------------------------------------------------------------------ a task of a run page
  H.renderTask = function (data) {
    const root = el("div", { cls: "task-detail" });
    if (data.facets && Object.keys(data.facets).length) {
      root.appendChild(el("div", { cls: "muted", text: Object.keys(data.facets).map(function (k) { return k + ": " + data.facets[k]; }).join(" · ") }));
    }
    if (data.prompt !== null && data.prompt !== undefined) {
      const d = el("details", null, [el("summary", { text: "prompt" })]);
      d.appendChild(codeBlock(data.prompt));
      root.appendChild(d);
    } else {
      root.appendChild(el("div", { cls: "muted", text: data.prompt_note || "prompt not available" }));
    }
    const samples = data.samples || [];
    const counts = {};
    samples.forEach(function (s) { const k = s.mode || s.status; counts[k] = (counts[k] || 0) + 1; });
    root.appendChild(el("div", { text: samples.length + " sample(s): " + Object.keys(counts).map(function (k) { return k + " " + counts[k]; }).join(", ") }));
    // One sample of each kind first, then the rest, a page at a time (200 samples stay cheap to open).
    const seen = {}, first = [], rest = [];
    samples.forEach(function (s) { const k = s.mode || s.status; if (!seen[k]) { seen[k] = 1; first.push(s); } else rest.push(s); });
    const order = first.concat(rest);
    const list = el("div", { cls: "samples" });
    root.appendChild(list);
    let shown = 0;
    const PAGE = 10;
    const more = el("button", { type: "button", cls: "pager" });
    function page() {
      order.slice(shown, shown + PAGE).forEach(function (s) { list.appendChild(H.sampleBox(s, data)); });
      shown = Math.min(order.length, shown + PAGE);
      more.textContent = "show " + Math.min(PAGE, order.length - shown) + " more of " + (order.length - shown);
      more.hidden = shown >= order.length;
    }
    more.addEventListener("click", page);
    root.appendChild(more);
    page();
    return root;
  };

  // ------------------------------------------------------------------ a flipped task of a comparison page
  function diffTable(rows, labelA, labelB) {
    const t = el("table", { cls: "diff" });
    t.appendChild(el("colgroup", null, [el("col", { cls: "no" }), el("col"), el("col", { cls: "no" }), el("col")]));
    t.appendChild(el("thead", null, [el("tr", null, [el("th", { colspan: "2", text: labelA }), el("th", { colspan: "2", text: labelB })])]));
    const body = el("tbody");
    rows.forEach(function (r) {
      const tr = el("tr", { cls: r[0] });
      tr.appendChild(el("td", { cls: "no", text: r[1] === null ? "" : String(r[1]) }));
      const a = el("td", { cls: "a" }); if (r[2] !== null) a.appendChild(H.highlight(r[2])); tr.appendChild(a);
      tr.appendChild(el("td", { cls: "no", text: r[3] === null ? "" : String(r[3]) }));
      const b = el("td", { cls: "b" }); if (r[4] !== null) b.appendChild(H.highlight(r[4])); tr.appendChild(b);
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }
  H.diffTable = diffTable;

  H.renderFlip = function (data) {
    const root = el("div", { cls: "flip-detail" });
    root.appendChild(el("div", { text: data.task + ": " + data.direction + " on " + data.suite }));
    if (data.prompt !== null && data.prompt !== undefined) {
      const d = el("details", null, [el("summary", { text: "prompt" })]);
      d.appendChild(codeBlock(data.prompt));
      root.appendChild(d);
    }
    root.appendChild(el("h4", { text: "diff of the programs (A → B)" }));
    if (data.same_program) root.appendChild(el("div", { cls: "muted", text: "the two programs are identical: the verdicts differ for another reason (grader, limits, options)" }));
    root.appendChild(diffTable(data.diff || [], "A " + data.a_label, "B " + data.b_label));
    const sides = el("div", { cls: "sides" });
    [["A", data.a], ["B", data.b]].forEach(function (pair) {
      const col = el("div");
      if (pair[1]) col.appendChild(H.sampleBox(pair[1], data, pair[0] + " sample " + pair[1].i));
      else col.appendChild(el("div", { cls: "muted", text: pair[0] + ": no sample" }));
      sides.appendChild(col);
    });
    root.appendChild(sides);
    return root;
  };
})();
"""
