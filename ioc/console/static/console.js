// The operator console: the live list (server-side pages, updated by server-sent events), the
// SLA strip, an alert's detail with actions, and the map. Every text from an alert or an event
// is put in with textContent (never innerHTML): press titles are untrusted.
"use strict";
(() => {
  const LIMIT = 100;
  const state = { filters: {}, cursors: [null], page: 0, rows: new Map(), selected: null, now: Date.now(), fresh: 0 };
  const $ = (id) => document.getElementById(id);
  const tbody = document.querySelector("#alerts tbody");

  // --- token and operator name ---------------------------------------------------------
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) { sessionStorage.setItem("ioc-token", hash.get("token")); history.replaceState(null, "", location.pathname); }
  $("token").value = sessionStorage.getItem("ioc-token") || "";
  $("token").addEventListener("change", () => sessionStorage.setItem("ioc-token", $("token").value));
  $("by").value = localStorage.getItem("ioc-by") || $("by").value;
  $("by").addEventListener("change", () => localStorage.setItem("ioc-by", $("by").value));

  // --- helpers -------------------------------------------------------------------------
  function node(tag, text, cls) {
    const n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = String(text);
    if (cls) n.className = cls;
    return n;
  }
  function fmtTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return d.toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour12: false, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
  }
  function fmtLeft(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.abs(seconds), sign = seconds < 0 ? "-" : "";
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
    if (d) return `${sign}${d}d${String(h).padStart(2, "0")}h`;
    return sign + (h ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(sec).padStart(2, "0")}s`);
  }
  function leftNow(deadline) {
    if (!deadline) return null;
    return (Date.parse(deadline) - state.now) / 1000;
  }
  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }
  function query(extra) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(state.filters)) if (v) params.set(k, v);
    for (const [k, v] of Object.entries(extra || {})) if (v !== null && v !== undefined) params.set(k, v);
    return params.toString();
  }
  function matches(row) {
    const f = state.filters;
    return (!f.domain || row.domain === f.domain) && (!f.severity || row.severity === f.severity)
      && (!f.status || row.status === f.status) && (!f.operator || row.operator_status === f.operator)
      && (!f.agency || row.agency === f.agency);
  }

  // --- the list ------------------------------------------------------------------------
  function rowElement(row) {
    const tr = document.createElement("tr");
    tr.dataset.id = row.alert_id;
    fillRow(tr, row);
    tr.addEventListener("click", () => openAlert(row.alert_id));
    return tr;
  }
  function fillRow(tr, row) {
    while (tr.firstChild) tr.removeChild(tr.firstChild);
    const sev = node("td"); sev.appendChild(node("span", row.severity, "sev sev-" + row.severity)); tr.appendChild(sev);
    tr.appendChild(node("td", fmtTime(row.starts_at)));
    tr.appendChild(node("td", row.domain));
    tr.appendChild(node("td", row.summary, "summary"));
    tr.appendChild(node("td", `${row.status} · ${row.operator_status}${row.escalation_level ? " · esc " + row.escalation_level : ""}`, "status"));
    tr.appendChild(node("td", "", "left ack"));
    tr.appendChild(node("td", "", "left resolve"));
    tr.classList.toggle("closed", row.operator_status === "resolved");
    tr.classList.toggle("selected", row.alert_id === state.selected);
    tick(tr, row);
  }
  function tick(tr, row) {
    const acked = row.ack_left_s === null, closed = row.operator_status === "resolved";
    const ack = acked || closed ? null : leftNow(row.ack_by);
    const resolve = closed ? null : leftNow(row.resolve_by);
    const ackCell = tr.querySelector("td.ack"), resolveCell = tr.querySelector("td.resolve");
    ackCell.textContent = acked ? "✓" : fmtLeft(ack);
    resolveCell.textContent = closed ? "✓" : fmtLeft(resolve);
    ackCell.classList.toggle("overdue", ack !== null && ack < 0);
    resolveCell.classList.toggle("overdue", resolve !== null && resolve < 0);
  }
  function tickAll() {
    for (const tr of tbody.children) { const row = state.rows.get(tr.dataset.id); if (row) tick(tr, row); }
    $("clock").textContent = new Date(state.now).toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour12: false });
  }
  function render(items) {
    state.rows = new Map(items.map((row) => [row.alert_id, row]));
    const fragment = document.createDocumentFragment();
    for (const row of items) fragment.appendChild(rowElement(row));
    tbody.replaceChildren(fragment);
  }
  function setOptions(select, values) {
    const current = select.value;
    const known = new Set([...select.options].map((o) => o.value));
    for (const value of values) if (!known.has(value)) { const o = node("option", value); o.value = value; select.appendChild(o); }
    select.value = current;
  }
  async function load() {
    const cursor = state.cursors[state.page];
    const data = await getJSON("/api/alerts?" + query({ limit: LIMIT, cursor }));
    state.now = Date.parse(data.now);
    render(data.items);
    state.cursors[state.page + 1] = data.next_cursor;
    state.cursors.length = state.page + 2;
    $("older").disabled = !data.next_cursor;
    $("newer").disabled = state.page === 0;
    const first = state.page * LIMIT;
    $("range").textContent = data.total ? `${first + 1}–${first + data.count} of ${data.total}` : "no alerts";
    setOptions(document.querySelector("select[name=domain]"), data.facets.domain);
    setOptions(document.querySelector("select[name=agency]"), data.facets.agency);
    state.fresh = 0; showFresh();
    document.body.dataset.loaded = String(Date.now());
    tickAll();
  }
  function showFresh() {
    $("fresh").hidden = state.fresh === 0;
    $("fresh").textContent = `${state.fresh} new ▲`;
  }
  function onRows(rows) {
    for (const row of rows) {
      const tr = tbody.querySelector(`tr[data-id="${CSS.escape(row.alert_id)}"]`);
      if (tr) { state.rows.set(row.alert_id, row); fillRow(tr, row); continue; }
      if (!matches(row)) continue;
      if (state.page !== 0) { state.fresh += 1; continue; }
      // The first page follows the newest: put it in order (newest first), keep LIMIT rows.
      state.rows.set(row.alert_id, row);
      const element = rowElement(row);
      let before = null;
      for (const other of tbody.children) {
        const o = state.rows.get(other.dataset.id);
        if (o && (o.starts_at < row.starts_at || (o.starts_at === row.starts_at && o.alert_id < row.alert_id))) { before = other; break; }
      }
      tbody.insertBefore(element, before);
      while (tbody.children.length > LIMIT) { const last = tbody.lastElementChild; state.rows.delete(last.dataset.id); last.remove(); }
    }
    showFresh();
    if (state.page === 0) $("range").textContent = `newest ${tbody.children.length} (live)`;
    if (state.selected && rows.some((r) => r.alert_id === state.selected)) openAlert(state.selected, true);
    scheduleMap();
  }

  // --- detail and actions --------------------------------------------------------------
  function dl(pairs) {
    const list = node("dl");
    for (const [k, v] of pairs) { list.appendChild(node("dt", k)); list.appendChild(node("dd", v === null || v === undefined || v === "" ? "–" : v)); }
    return list;
  }
  async function openAlert(alertId, quiet) {
    state.selected = alertId;
    for (const tr of tbody.children) tr.classList.toggle("selected", tr.dataset.id === alertId);
    let data;
    try { data = await getJSON("/api/alerts/" + encodeURIComponent(alertId)); } catch (e) { if (!quiet) message(e.message, true); return; }
    const a = data.alert, r = data.record, s = data.state || {};
    const pane = $("detail");
    const keep = pane.querySelector(".message");
    const box = document.createDocumentFragment();
    box.appendChild(node("h2", a.summary || a.rule_id));
    box.appendChild(dl([
      ["alert", a.alert_id], ["rule", a.rule_id], ["severity", a.severity], ["status", `${a.status} · ${a.operator_status}`],
      ["domain", a.domain], ["agency", a.agency], ["assignee", a.assignee], ["started", fmtTime(a.starts_at)],
      ["ack by", `${fmtTime(a.ack_by)} (${a.ack_left_s === null ? "done" : fmtLeft(a.ack_left_s)})`],
      ["resolve by", `${fmtTime(a.resolve_by)} (${a.resolve_left_s === null ? "done" : fmtLeft(a.resolve_left_s)})`],
      ["escalation", a.escalation_level ? `level ${a.escalation_level}` : "none"],
      ["description", r.description], ["value", JSON.stringify(r.value)], ["key", JSON.stringify(r.key)],
    ]));
    if (data.rule) {
      box.appendChild(node("h3", "Rule (as written)"));
      box.appendChild(dl([["summary", data.rule.summary], ["description", data.rule.description], ["file", data.rule.place]]));
    }
    box.appendChild(node("h3", "Evidence"));
    const evidence = node("ul", null, "evidence");
    for (const item of r.evidence || []) evidence.appendChild(node("li", typeof item === "string" ? item : JSON.stringify(item)));
    box.appendChild(evidence);
    if (r.details) box.appendChild(node("pre", JSON.stringify(r.details, null, 1)));
    if ((s.notes || []).length) {
      box.appendChild(node("h3", "Actions"));
      const notes = node("ul");
      for (const n of s.notes) notes.appendChild(node("li", `${fmtTime(n.at)} ${n.by}: ${n.action}${n.note ? " – " + n.note : ""}`));
      box.appendChild(notes);
    }
    const actions = node("div", null, "actions");
    const note = node("input"); note.placeholder = "note"; note.maxLength = 2000; note.id = "note";
    const assignee = node("input"); assignee.placeholder = "assign to"; assignee.maxLength = 200; assignee.id = "assignee";
    for (const [verb, label] of [["ack", "Acknowledge"], ["assign", "Assign"], ["comment", "Comment"], ["resolve", "Resolve"]]) {
      const button = node("button", label); button.type = "button"; button.dataset.action = verb;
      button.addEventListener("click", () => act(a.alert_id, verb, note.value, assignee.value));
      actions.appendChild(button);
    }
    actions.appendChild(note); actions.appendChild(assignee);
    box.appendChild(actions);
    box.appendChild(keep || node("p", "", "message"));
    pane.replaceChildren(box);
  }
  function message(text, error) {
    let m = $("detail").querySelector(".message");
    if (!m) { m = node("p", "", "message"); $("detail").appendChild(m); }
    m.textContent = text; m.className = "message " + (error ? "error" : "ok");
  }
  async function act(alertId, verb, note, assignee) {
    const body = { action: verb, by: $("by").value.trim() };
    if (note.trim()) body.note = note.trim();
    if (verb === "assign") body.assignee = assignee.trim();
    const response = await fetch(`/api/alerts/${encodeURIComponent(alertId)}/actions`, {
      method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer " + $("token").value }, body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (response.ok) message(`${verb} sent (${data.topic} partition ${data.partition}, offset ${data.offset})`, false);
    else message(`${response.status}: ${data.error || response.statusText}`, true);
  }

  // --- SLA strip and map ---------------------------------------------------------------
  function ratio(value) { return value === null || value === undefined ? "–" : (100 * value).toFixed(1) + " %"; }
  async function loadSla() {
    try {
      const sla = await getJSON("/api/sla");
      const w = sla.windows["24h"] || sla.windows["30d"] || {};
      const target = sla.target;
      for (const [id, name, value] of [["sla-ack", "ack on time", w.ack_on_time_ratio], ["sla-resolve", "resolve on time", w.resolve_on_time_ratio]]) {
        $(id).textContent = `${name} ${ratio(value)} (target ${ratio(target)})`;
        $(id).className = "figure " + (value === null || value === undefined ? "" : value < target ? "bad" : "good");
      }
      $("sla-overdue").textContent = `overdue now: ack ${sla.overdue.ack} · resolve ${sla.overdue.resolve}`;
      $("sla-overdue").className = "figure " + (sla.overdue.ack + sla.overdue.resolve ? "bad" : "good");
      $("sla-escalations").textContent = `escalations today ${sla.escalations_today}`;
    } catch (e) { /* the next poll tries again */ }
  }
  let mapTimer = null;
  function scheduleMap() { if (!mapTimer) mapTimer = setTimeout(() => { mapTimer = null; loadMap(); }, 2000); }
  async function loadMap() {
    try { IocMap.draw($("map-svg"), await getJSON("/api/map"), (id) => openAlert(id)); } catch (e) { /* next time */ }
  }

  // --- wiring --------------------------------------------------------------------------
  $("filters").addEventListener("change", (event) => {
    state.filters[event.target.name] = event.target.value;
    state.page = 0; state.cursors = [null];
    load();
  });
  $("older").addEventListener("click", () => { state.page += 1; load(); });
  $("newer").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); load(); });
  $("fresh").addEventListener("click", () => { state.page = 0; state.cursors = [null]; load(); });
  function connect() {
    const events = new EventSource("/api/events");
    let opened = false;
    events.addEventListener("open", () => {
      $("live").textContent = "live"; $("live").className = "live on";
      if (opened) load();  // reconnected: what changed meanwhile was not sent
      opened = true;
    });
    events.addEventListener("error", () => { $("live").textContent = "reconnecting"; $("live").className = "live off"; });
    events.addEventListener("alerts", (e) => onRows(JSON.parse(e.data)));
    events.addEventListener("clock", (e) => { state.now = Date.parse(JSON.parse(e.data).now); tickAll(); });
    events.addEventListener("reload", () => load());
  }
  load().then(connect);
  loadSla(); setInterval(loadSla, 5000);
  loadMap(); setInterval(loadMap, 15000);
})();
