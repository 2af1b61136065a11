/* medcode_nlp review UI: plain JavaScript, no build step.
 *
 * Note text is only ever put into the page with textContent (never innerHTML), and is sent
 * only to this server's /v1/code. Decisions go to /v1/reviews with the CSRF token.
 * Offsets from the server count Unicode code points, so the note is handled as an array of
 * code points (Array.from), not as UTF-16 string indexes.
 */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const HCC_YEAR = 2026; // CMS-HCC V28 payment year of the HCC badges

  const state = {
    notes: [],          // [{id, text}]
    index: -1,          // current note
    results: new Map(), // note index -> CodingResult
    result: null,
    selected: -1,       // index into result.codes
    decisions: new Map(), // item_key -> decision (current ones for this note)
    segments: [],       // rendered note pieces [{el, start, end}]
    searchMode: null,   // {kind: "replace", code} | {kind: "add", evidence}
    searchActive: -1,
    searchSeq: 0,
    searchResults: [],
    systems: [],
  };

  // ---------------------------------------------------------------- helpers
  function getCookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  async function csrfToken() {
    let token = getCookie("medcode_csrf");
    if (!token) {
      const data = await api("GET", "/v1/csrf");
      token = data.csrf_token || getCookie("medcode_csrf");
    }
    return token;
  }

  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    const options = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method !== "GET" && url.startsWith("/v1/reviews")) {
      headers["X-CSRF-Token"] = await csrfToken();
    }
    const response = await fetch(url, options);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      let message = error.message || `${response.status} ${response.statusText}`;
      if (error.details && error.details.length) {
        message += " " + error.details.map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; ");
      }
      if (response.status === 401) message = "Signed out: reload the page and sign in again.";
      throw new Error(message);
    }
    return data;
  }

  let statusTimer = null;
  function status(message, kind = "info") {
    const el = $("status");
    el.textContent = message;
    el.className = `status-${kind}`;
    clearTimeout(statusTimer);
    if (kind !== "error") statusTimer = setTimeout(() => { el.textContent = ""; el.className = ""; }, 4000);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const codeKey = (system, code) => `${system}:${code}`;
  const suggestedKey = (c) => `suggested:${c.system}:${c.code}`;
  const cssName = (value) => String(value || "other").replace(/[^A-Za-z0-9_-]/g, "_");

  function reviewer() {
    const value = $("reviewer").value.trim();
    if (!value) {
      status("Enter your name as reviewer first.", "error");
      $("reviewer").focus();
      return null;
    }
    return value;
  }

  // ------------------------------------------------------------ open notes
  function parseWorklist(text, fileName) {
    const notes = [];
    let bad = 0;
    const lines = text.split(/\r?\n/);
    lines.forEach((line, number) => {
      if (!line.trim()) return;
      let item;
      try {
        item = JSON.parse(line);
      } catch (_) {
        bad += 1;
        return;
      }
      const body = item && (item.text ?? item.note);
      if (typeof body !== "string") { bad += 1; return; }
      const id = item.id ?? item.note_id ?? `${fileName}#${number + 1}`;
      notes.push({ id: String(id).slice(0, 200), text: body });
    });
    return { notes, bad };
  }

  async function openFile(file) {
    if (!file) return;
    const text = await file.text();
    const lower = file.name.toLowerCase();
    if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson") || lower.endsWith(".json")) {
      let parsed;
      if (lower.endsWith(".json") && text.trim().startsWith("[")) {
        try {
          const items = JSON.parse(text);
          parsed = parseWorklist(items.map((x) => JSON.stringify(x)).join("\n"), file.name);
        } catch (_) {
          parsed = { notes: [], bad: 1 };
        }
      } else {
        parsed = parseWorklist(text, file.name);
      }
      if (!parsed.notes.length) {
        status(`No notes found in ${file.name}: expected one {"id", "text"} object per line.`, "error");
        return;
      }
      if (parsed.bad) status(`${parsed.bad} line(s) of ${file.name} were skipped (not {"id", "text"}).`, "warn");
      await loadWorklist(parsed.notes);
    } else {
      const id = file.name.replace(/\.[^.]*$/, "") || "note";
      await loadWorklist([{ id, text }]);
    }
  }

  async function loadWorklist(notes) {
    state.notes = notes;
    state.results = new Map();
    if ($("open-panel").contains(document.activeElement)) document.activeElement.blur();
    $("open-panel").hidden = true;
    await openNote(0);
  }

  async function openNote(index) {
    if (index < 0 || index >= state.notes.length) return;
    state.index = index;
    const note = state.notes[index];
    updateNav();
    $("note-title").textContent = note.id;
    status(`Coding note ${note.id}…`);
    try {
      let result = state.results.get(index);
      if (!result) {
        result = await api("POST", `/v1/code?hcc_year=${HCC_YEAR}`, { text: note.text, setting: $("setting").value });
        state.results.set(index, result);
      }
      if (state.index !== index) return; // the reviewer moved on meanwhile
      state.result = result;
      const saved = await api("GET", `/v1/reviews?note_id=${encodeURIComponent(note.id)}`);
      state.decisions = new Map(saved.decisions.map((d) => [d.item_key, d]));
      render();
      selectCode(result.codes.length ? displayOrder()[0] : -1);
      status(`Note ${note.id}: ${result.codes.length} code(s) suggested.`);
    } catch (error) {
      status(`Could not code note ${note.id}: ${error.message}`, "error");
    }
  }

  function updateNav() {
    const total = state.notes.length;
    $("note-position").textContent = total ? `note ${state.index + 1} of ${total}` : "no note open";
    $("prev-note").disabled = state.index <= 0;
    $("next-note").disabled = state.index < 0 || state.index >= total - 1;
  }

  // ---------------------------------------------------------------- render
  function render() {
    $("workspace").hidden = false;
    renderNote();
    renderCodes();
    renderAdded();
    renderExcluded();
    const v = state.result.versions || {};
    const sets = Object.entries(v.code_sets || {}).map(([k, x]) => `${k} ${x}`).join(", ");
    $("versions").textContent = `medcode_nlp ${v.medcode_nlp || "?"} · model ${v.model || "?"} · ranker ${v.ranker || "none"} · ${sets}`;
  }

  function renderNote() {
    const note = state.notes[state.index];
    const chars = Array.from(note.text);
    const n = chars.length;
    const clamp = (x) => Math.max(0, Math.min(n, x | 0));
    const entities = [];
    let cursor = 0;
    for (const e of [...state.result.entities].sort((a, b) => a.start - b.start || b.end - a.end)) {
      if (e.start < cursor || e.end <= e.start) continue; // keep non-overlapping mentions
      entities.push(e);
      cursor = e.end;
    }
    const bounds = new Set([0, n]);
    for (const e of entities) { bounds.add(clamp(e.start)); bounds.add(clamp(e.end)); }
    for (const c of state.result.codes) {
      for (const ev of c.evidence) { bounds.add(clamp(ev.start)); bounds.add(clamp(ev.end)); }
    }
    for (const d of state.decisions.values()) {
      for (const ev of d.evidence || []) { bounds.add(clamp(ev.start)); bounds.add(clamp(ev.end)); }
    }
    const points = [...bounds].sort((a, b) => a - b);
    const container = $("note");
    container.replaceChildren();
    state.segments = [];
    const labels = new Set();
    let ei = 0;
    let mark = null;
    let markEntity = -1;
    for (let k = 0; k + 1 < points.length; k += 1) {
      const start = points[k];
      const end = points[k + 1];
      if (start >= end) continue;
      while (ei < entities.length && entities[ei].end <= start) ei += 1;
      const inside = ei < entities.length && entities[ei].start <= start && start < entities[ei].end ? ei : -1;
      if (inside !== markEntity) {
        markEntity = inside;
        mark = inside >= 0 ? entityMark(entities[inside]) : null;
        if (mark) {
          container.appendChild(mark);
          labels.add(entities[inside].label);
        }
      }
      const piece = el("span", "seg", chars.slice(start, end).join(""));
      piece.dataset.start = String(start);
      piece.dataset.end = String(end);
      (mark || container).appendChild(piece);
      state.segments.push({ el: piece, start, end });
    }
    const legend = $("legend");
    legend.replaceChildren();
    for (const label of [...labels].sort()) {
      legend.appendChild(el("span", `ent lbl-${cssName(label)}`, label));
    }
  }

  function entityMark(entity) {
    const mark = el("mark", `ent lbl-${cssName(entity.label)} asrt-${cssName(entity.assertion)}`);
    const section = entity.section ? entity.section.replace(/_/g, " ") : "no section";
    const tag = entity.assertion && entity.assertion !== "present"
      ? `${entity.label} · ${entity.assertion}` : entity.label;
    mark.dataset.tag = tag;
    mark.dataset.label = entity.label;
    mark.dataset.assertion = entity.assertion;
    mark.dataset.section = entity.section || "";
    mark.title = `${entity.label} · ${entity.assertion} · section: ${section}`;
    const info = () => {
      const top = (entity.candidates || []).slice(0, 3).map((c) => `${c.code} ${c.description}`).join("; ");
      $("entity-info").textContent = `${entity.label} · assertion: ${entity.assertion} · section: ${section}` +
        (top ? ` · candidates: ${top}` : "");
    };
    mark.addEventListener("mouseenter", info);
    mark.addEventListener("click", info);
    return mark;
  }

  function decisionLabel(d) {
    if (!d) return "";
    if (d.decision === "replace") return `replaced → ${d.final_code}`;
    return { accept: "accepted", reject: "rejected", add: "added" }[d.decision] || d.decision;
  }

  // Indexes of result.codes in display order: the ranked list, or its HCC codes first.
  function displayOrder() {
    const codes = state.result ? state.result.codes : [];
    const order = codes.map((_, i) => i);
    if ($("code-sort").value === "hcc") {
      const hasHcc = (i) => ((codes[i].hcc || []).length ? 0 : 1);
      order.sort((a, b) => hasHcc(a) - hasHcc(b) || a - b);
    }
    return order;
  }

  function stepCode(delta) {
    const order = displayOrder();
    if (!order.length) return;
    const at = order.indexOf(state.selected);
    selectCode(order[Math.max(0, Math.min(order.length - 1, at + delta))]);
  }

  function hccLabel(hcc) {
    const summary = state.result.hcc || {};
    const found = [...(summary.hccs || []), ...(summary.dropped || [])].find((h) => h.hcc === hcc);
    return found ? `HCC ${hcc}: ${found.label}` : `HCC ${hcc}`;
  }

  function renderCodes() {
    const list = $("codes");
    list.replaceChildren();
    const codes = state.result.codes;
    $("codes-count").textContent = `(${codes.length})`;
    displayOrder().forEach((i) => {
      const c = codes[i];
      const decision = state.decisions.get(suggestedKey(c));
      const item = el("li", "code");
      item.dataset.index = String(i);
      item.dataset.code = c.code;
      item.dataset.system = c.system;
      if (decision) item.classList.add(`decided-${decision.decision}`);

      const head = el("div", "code-head");
      head.appendChild(el("span", "system", c.system));
      head.appendChild(el("span", "code-id", c.code));
      head.appendChild(el("span", c.billable ? "badge billable" : "badge not-billable",
        c.billable ? "billable" : "not billable"));
      if ((c.hcc || []).length) {
        const badge = el("span", "badge hcc", `HCC ${c.hcc.join(", ")}`);
        badge.title = `CMS-HCC V28 (payment year ${HCC_YEAR}): ` + c.hcc.map(hccLabel).join("; ");
        head.appendChild(badge);
        item.classList.add("has-hcc");
      }
      const bar = el("span", "bar");
      const fill = el("span", "fill");
      fill.style.width = `${Math.max(0, Math.min(1, c.score)) * 100}%`;
      bar.appendChild(fill);
      bar.title = `confidence ${c.score.toFixed(2)}`;
      head.appendChild(bar);
      head.appendChild(el("span", "score", c.score.toFixed(2)));
      head.appendChild(el("span", "decision", decisionLabel(decision)));
      item.appendChild(head);
      item.appendChild(el("div", "description", c.description));
      if (c.evidence.length) {
        item.appendChild(el("div", "evidence-text",
          "evidence: " + c.evidence.map((e) => `“${e.text}”`).join(", ")));
      }
      if (c.prompts.length) {
        const prompts = el("ul", "prompts");
        c.prompts.forEach((p) => prompts.appendChild(el("li", "", p)));
        item.appendChild(prompts);
      }
      if (c.conflicts.length) {
        const conflicts = el("ul", "conflicts");
        c.conflicts.forEach((p) => conflicts.appendChild(el("li", "", p)));
        item.appendChild(conflicts);
      }
      const actions = el("div", "code-actions");
      const button = (label, cls, title, action) => {
        const b = el("button", cls, label);
        b.type = "button";
        b.title = title;
        b.addEventListener("click", (event) => {
          event.stopPropagation();
          selectCode(i);
          action();
        });
        actions.appendChild(b);
      };
      button("Accept", "accept", "Accept (a)", () => decide("accept"));
      button("Reject", "reject", "Reject (r)", () => decide("reject"));
      button("Replace…", "replace", "Replace with another code (e)", () => openSearch("replace"));
      item.appendChild(actions);
      item.addEventListener("click", () => selectCode(i));
      list.appendChild(item);
    });
    if (!codes.length) list.appendChild(el("li", "muted", "No codes suggested for this note."));
    if (state.selected >= 0) markSelected();
  }

  function renderAdded() {
    const list = $("added");
    list.replaceChildren();
    const added = [...state.decisions.values()].filter((d) => d.decision === "add");
    for (const d of added) {
      const item = el("li", "added-code");
      item.dataset.code = d.final_code;
      item.appendChild(el("span", "system", d.final_system));
      item.appendChild(el("span", "code-id", d.final_code));
      item.appendChild(el("span", "description", d.final_description || ""));
      if (d.evidence && d.evidence.length) {
        item.appendChild(el("span", "evidence-text", " evidence: " + d.evidence.map((e) => `“${e.text}”`).join(", ")));
      }
      item.addEventListener("click", () => highlight(d.evidence || []));
      list.appendChild(item);
    }
    if (!added.length) list.appendChild(el("li", "muted", "none"));
  }

  function renderExcluded() {
    const list = $("excluded");
    list.replaceChildren();
    $("excluded-count").textContent = `(${state.result.excluded.length})`;
    for (const x of state.result.excluded) {
      const item = el("li", "", `${x.system} ${x.code}: ${x.reason}`);
      item.addEventListener("click", () => highlight(x.evidence || []));
      list.appendChild(item);
    }
  }

  // -------------------------------------------------------------- selection
  function markSelected() {
    for (const item of $("codes").querySelectorAll("li.code")) {
      item.classList.toggle("selected", Number(item.dataset.index) === state.selected);
    }
  }

  function selectCode(index) {
    const codes = state.result ? state.result.codes : [];
    if (!codes.length) { state.selected = -1; highlight([]); return; }
    state.selected = Math.max(0, Math.min(codes.length - 1, index));
    markSelected();
    const item = $("codes").querySelector(`li.code[data-index="${state.selected}"]`);
    if (item) item.scrollIntoView({ block: "nearest" });
    highlight(codes[state.selected].evidence);
  }

  function highlight(evidence) {
    let first = null;
    for (const seg of state.segments) {
      const on = evidence.some((e) => e.start < seg.end && seg.start < e.end);
      seg.el.classList.toggle("evidence", on);
      if (on && !first) first = seg.el;
    }
    if (first) first.scrollIntoView({ block: "nearest" });
  }

  function noteSelection() {
    const selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
    const range = selection.getRangeAt(0);
    const note = $("note");
    if (!note.contains(range.startContainer) || !note.contains(range.endContainer)) return null;
    const start = pointOffset(range.startContainer, range.startOffset, true);
    const end = pointOffset(range.endContainer, range.endOffset, false);
    if (start === null || end === null || end <= start) return null;
    const text = Array.from(state.notes[state.index].text).slice(start, end).join("");
    return { start, end, text: text.slice(0, 500) };
  }

  function pointOffset(node, offset, atStart) {
    if (node.nodeType === Node.TEXT_NODE) {
      const seg = node.parentElement && node.parentElement.closest(".seg");
      if (!seg) return null;
      return Number(seg.dataset.start) + Array.from(node.data.slice(0, offset)).length;
    }
    const segs = node.classList && node.classList.contains("seg") ? [node] : [...node.querySelectorAll(".seg")];
    if (!segs.length) return null;
    if (node.classList && node.classList.contains("seg")) {
      return offset === 0 ? Number(node.dataset.start) : Number(node.dataset.end);
    }
    const child = node.childNodes[offset];
    if (child) {
      const seg = child.nodeType === Node.ELEMENT_NODE
        ? (child.classList.contains("seg") ? child : child.querySelector(".seg")) : null;
      if (seg) return Number(seg.dataset.start);
    }
    return atStart ? Number(segs[0].dataset.start) : Number(segs[segs.length - 1].dataset.end);
  }

  // -------------------------------------------------------------- decisions
  async function saveDecisions(decisions) {
    const who = reviewer();
    if (!who) return null;
    const note = state.notes[state.index];
    const saved = await api("POST", "/v1/reviews", {
      note_id: note.id,
      reviewer: who,
      versions: state.result.versions,
      decisions,
    });
    for (const d of saved.saved) state.decisions.set(d.item_key, d);
    return saved.saved;
  }

  function suggestedFields(c, index) {
    return {
      suggested_system: c.system,
      suggested_code: c.code,
      suggested_description: c.description.slice(0, 1000),
      confidence: c.score,
      rank: index + 1,
      evidence: c.evidence.map((e) => ({ start: e.start, end: e.end, text: e.text.slice(0, 500) })),
    };
  }

  async function decide(kind, replacement) {
    if (!state.result || state.selected < 0) return;
    const index = state.selected;
    const c = state.result.codes[index];
    const decision = { decision: kind, ...suggestedFields(c, index) };
    if (kind === "replace") {
      decision.final_system = replacement.system;
      decision.final_code = replacement.code;
      decision.final_description = replacement.description.slice(0, 1000);
    }
    try {
      const saved = await saveDecisions([decision]);
      if (!saved) return;
      renderCodes();
      const what = kind === "replace" ? `${c.code} replaced by ${replacement.code}` : `${c.code} ${kind}ed`;
      status(`Saved: ${what}.`, "ok");
      selectCode(index);
      if (kind !== "replace") stepCode(1);
    } catch (error) {
      status(`Not saved: ${error.message}`, "error");
    }
  }

  async function addCode(code, evidence) {
    const decision = {
      decision: "add",
      final_system: code.system,
      final_code: code.code,
      final_description: code.description.slice(0, 1000),
      evidence: evidence ? [evidence] : [],
    };
    try {
      const saved = await saveDecisions([decision]);
      if (!saved) return;
      renderNote();
      renderAdded();
      selectCode(state.selected);
      status(`Saved: ${code.code} added.`, "ok");
    } catch (error) {
      status(`Not saved: ${error.message}`, "error");
    }
  }

  // ----------------------------------------------------------------- search
  let searchTimer = null;

  function openSearch(kind) {
    if (!state.result) { status("Open a note first.", "warn"); return; }
    if (!reviewer()) return;
    const dialog = $("search-dialog");
    const input = $("search-input");
    if (kind === "replace") {
      if (state.selected < 0) return;
      const c = state.result.codes[state.selected];
      state.searchMode = { kind, code: c };
      $("search-title").textContent = `Replace ${c.code}`;
      $("search-context").textContent = `${c.code} ${c.description}`;
      input.value = c.evidence.length ? c.evidence[0].text : c.description;
    } else {
      const evidence = noteSelection();
      state.searchMode = { kind: "add", evidence };
      $("search-title").textContent = "Add a missing code";
      $("search-context").textContent = evidence
        ? `Evidence: “${evidence.text}”` : "No note text selected: the code is added without evidence.";
      input.value = evidence ? evidence.text : "";
    }
    clearTimeout(searchTimer); // a search typed in an earlier dialog must not land in this one
    $("search-results").replaceChildren();
    delete $("search-results").dataset.query;
    state.searchResults = [];
    state.searchActive = -1;
    dialog.showModal();
    input.focus();
    input.select();
    if (input.value.trim()) runSearch();
  }

  function closeSearch() {
    clearTimeout(searchTimer);
    const dialog = $("search-dialog");
    if (dialog.open) dialog.close();
    state.searchMode = null;
  }

  function scheduleSearch() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 200);
  }

  async function runSearch() {
    const query = $("search-input").value.trim();
    const seq = ++state.searchSeq;
    const list = $("search-results");
    if (!query) { list.replaceChildren(); state.searchResults = []; return; }
    const params = new URLSearchParams({ q: query.slice(0, 200), top_k: "15" });
    const systems = $("search-systems").value;
    if (systems) params.set("systems", systems);
    try {
      const data = await api("GET", `/v1/search?${params}`);
      if (seq !== state.searchSeq) return; // a newer search is running
      list.replaceChildren();
      list.dataset.query = query; // which query these results answer
      data.results.forEach((r, i) => {
        const item = el("li", "search-result");
        item.dataset.code = r.code;
        item.dataset.system = r.system;
        item.dataset.index = String(i);
        item.appendChild(el("span", "system", r.system));
        item.appendChild(el("span", "code-id", r.code));
        item.appendChild(el("span", "description", r.description));
        item.appendChild(el("span", r.billable ? "badge billable" : "badge not-billable",
          r.billable ? "billable" : "not billable"));
        const use = el("button", "use", "Use");
        use.type = "button";
        use.addEventListener("click", () => chooseResult(r));
        item.appendChild(use);
        item.addEventListener("dblclick", () => chooseResult(r));
        list.appendChild(item);
      });
      if (!data.results.length) list.appendChild(el("li", "muted", "No matching codes."));
      state.searchActive = data.results.length ? 0 : -1;
      markSearchActive();
      state.searchResults = data.results;
    } catch (error) {
      status(`Search failed: ${error.message}`, "error");
    }
  }

  function markSearchActive() {
    for (const item of $("search-results").querySelectorAll("li.search-result")) {
      const on = Number(item.dataset.index) === state.searchActive;
      item.classList.toggle("active", on);
      if (on) item.scrollIntoView({ block: "nearest" });
    }
  }

  async function chooseResult(r) {
    const mode = state.searchMode;
    closeSearch();
    if (!mode) return;
    if (mode.kind === "replace") await decide("replace", r);
    else await addCode(r, mode.evidence);
  }

  // ------------------------------------------------------------- keyboard
  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const searchOpen = $("search-dialog").open;
    const helpOpen = $("help-dialog").open;
    if (searchOpen) {
      const results = state.searchResults;
      if (event.key === "ArrowDown" && results.length) {
        state.searchActive = Math.min(results.length - 1, state.searchActive + 1);
        markSearchActive();
        event.preventDefault();
      } else if (event.key === "ArrowUp" && results.length) {
        state.searchActive = Math.max(0, state.searchActive - 1);
        markSearchActive();
        event.preventDefault();
      } else if (event.key === "Enter" && state.searchActive >= 0 && results[state.searchActive]) {
        event.preventDefault();
        chooseResult(results[state.searchActive]);
      }
      return; // Esc is handled by the dialog itself
    }
    if (helpOpen) return;
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    const actions = {
      j: () => stepCode(1),
      ArrowDown: () => stepCode(1),
      k: () => stepCode(-1),
      ArrowUp: () => stepCode(-1),
      a: () => decide("accept"),
      r: () => decide("reject"),
      e: () => openSearch("replace"),
      "+": () => openSearch("add"),
      n: () => openNote(state.index + 1),
      p: () => openNote(state.index - 1),
      o: () => toggleOpen(),
      "?": () => $("help-dialog").showModal(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  function toggleOpen() {
    const panel = $("open-panel");
    panel.hidden = !panel.hidden;
    if (!panel.hidden) $("note-input").focus();
  }

  // ---------------------------------------------------------------- wiring
  async function loadSystems() {
    try {
      const health = await api("GET", "/healthz");
      state.systems = health.systems || [];
      for (const system of state.systems) {
        const option = el("option", "", system);
        option.value = system;
        $("search-systems").appendChild(option);
      }
    } catch (error) {
      status(`Server not ready: ${error.message}`, "error");
    }
  }

  function init() {
    const reviewerInput = $("reviewer");
    reviewerInput.value = localStorage.getItem("medcode.reviewer") || "";
    reviewerInput.addEventListener("change", () => localStorage.setItem("medcode.reviewer", reviewerInput.value.trim()));
    $("code-button").addEventListener("click", async () => {
      const text = $("note-input").value;
      if (!text.trim()) { status("Paste a note first.", "warn"); return; }
      const id = $("note-id-input").value.trim() || `pasted-${new Date().toISOString()}`;
      await loadWorklist([{ id, text }]);
    });
    $("file-input").addEventListener("change", (event) => {
      openFile(event.target.files[0]).catch((error) => status(`Could not open the file: ${error.message}`, "error"));
      event.target.value = "";
    });
    $("prev-note").addEventListener("click", () => openNote(state.index - 1));
    $("next-note").addEventListener("click", () => openNote(state.index + 1));
    $("open-toggle").addEventListener("click", toggleOpen);
    $("add-button").addEventListener("mousedown", (event) => event.preventDefault()); // keep the text selection
    $("add-button").addEventListener("click", () => openSearch("add"));
    $("help-button").addEventListener("click", () => $("help-dialog").showModal());
    $("help-close").addEventListener("click", () => $("help-dialog").close());
    $("search-close").addEventListener("click", closeSearch);
    $("search-dialog").addEventListener("close", () => { state.searchMode = null; });
    $("search-input").addEventListener("input", scheduleSearch);
    $("search-systems").addEventListener("change", runSearch);
    $("setting").addEventListener("change", () => {
      state.results = new Map();
      if (state.index >= 0) openNote(state.index);
    });
    $("code-sort").addEventListener("change", () => { if (state.result) renderCodes(); });
    document.addEventListener("keydown", onKey);
    loadSystems();
    csrfToken().catch(() => {});
  }

  document.addEventListener("DOMContentLoaded", init);
})();
