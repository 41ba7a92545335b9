// runtrack dashboard: the runs list with stat cards that follow the filters in view, and a run page
// with its actions, attempts, timeline, cluster events and logs — all kept live by server-sent events.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];
const PHASE_STATUS = {QUEUED: "PENDING", WAITING_FOR_RESOURCES: "PENDING", INITIALIZING: "PENDING", RUNNING: "RUNNING",
  PAUSED: "RUNNING", SUCCEEDED: "SUCCEEDED", RECOVERED: "SUCCEEDED", FAILED: "FAILED", TIMED_OUT: "FAILED", ABORTED: "CANCELLED"};
const PHASE_COLOR = {PENDING: "#a16207", RUNNING: "#2563eb", SUCCEEDED: "#15803d", FAILED: "#b91c1c", CANCELLED: "#6b7280"};

const state = { filters: { status: "", project: "", created_by: "", name: "", label: "" }, cursors: [null], page: 0, streams: [] };

function user() { return localStorage.getItem("runtrack.user") || ""; }
function badge(phase) { const s = PHASE_STATUS[phase] || "UNKNOWN"; return `<span class="badge s-${s}">${esc(phase)}</span>`; }
function when(t) { return t ? new Date(t).toLocaleString() : ""; }
function dur(ms) {
  if (ms == null) return "";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
function runPath(r) { return [r.org, r.project, r.domain, r.name].map(encodeURIComponent).join("/"); }

async function api(path, params) {
  const url = new URL(path, location.origin);
  if (params) params.forEach((v, k) => url.searchParams.append(k, v));
  const resp = await fetch(url);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body?.error?.message || `${resp.status} ${resp.statusText}`);
  return body;
}

function filterParams() {
  const p = new URLSearchParams();
  const f = state.filters;
  if (f.status) p.append("status", f.status.toLowerCase());
  for (const k of ["project", "created_by", "name"]) if (f[k]) p.append(k, f[k]);
  for (const l of f.label.split(",").map((s) => s.trim()).filter(Boolean)) p.append("label", l);
  if (user()) p.append("current_user", user());
  return p;
}

function closeStreams() { state.streams.forEach((s) => s.close()); state.streams = []; setLive(false); }
function setLive(on) { const el = $("#live"); el.className = `live ${on ? "on" : "off"}`; }
function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }

function openStream(url, handlers) {
  const es = new EventSource(url);
  es.onopen = () => setLive(true);
  es.onerror = () => setLive(false);
  for (const [ev, fn] of Object.entries(handlers)) es.addEventListener(ev, (e) => fn(JSON.parse(e.data || "{}"), e));
  state.streams.push(es);
  return es;
}

// ---- the runs list ------------------------------------------------------------------------------

function renderList() {
  const f = state.filters;
  $("#view").innerHTML = `
    <section class="cards" id="cards"></section>
    <section class="filters">
      <select id="f-status"><option value="">any status</option>${STATUSES.map((s) => `<option ${f.status === s ? "selected" : ""}>${s}</option>`).join("")}</select>
      <input id="f-project" placeholder="project" value="${esc(f.project)}">
      <input id="f-created_by" placeholder="created by (me)" value="${esc(f.created_by)}">
      <input id="f-name" placeholder="name contains" value="${esc(f.name)}">
      <input id="f-label" placeholder="labels k=v, k2" value="${esc(f.label)}">
      <button id="apply">Apply</button> <span id="count" class="muted"></span>
    </section>
    <div id="list-error" class="err"></div>
    <table><thead><tr><th>Name</th><th>Status</th><th>Project / domain</th><th>Task</th><th>Created by</th>
      <th>Created</th><th>Duration</th><th>Attempts</th><th>Labels</th></tr></thead><tbody id="rows"></tbody></table>
    <div class="pager"><button id="prev">◀ Previous</button><span id="pageno" class="muted"></span><button id="next">Next ▶</button></div>`;
  const apply = () => {
    for (const k of ["status", "project", "created_by", "name", "label"]) state.filters[k] = $(`#f-${k}`).value.trim();
    state.cursors = [null]; state.page = 0; loadList(true);
  };
  $("#apply").onclick = apply;
  $(".filters").addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  $("#f-status").onchange = apply;
  $("#prev").onclick = () => { if (state.page > 0) { state.page--; loadList(false); } };
  $("#next").onclick = () => { if (state.cursors[state.page + 1]) { state.page++; loadList(false); } };
  loadList(true);
}

function rowHtml(r) {
  const labels = Object.entries(r.labels || {}).map(([k, v]) => `<span class="label">${esc(v ? `${k}=${v}` : k)}</span>`).join("");
  return `<td><a href="#/run/${runPath(r)}">${esc(r.name)}</a></td><td>${badge(r.phase)}</td>
    <td>${esc(r.project)} / ${esc(r.domain)}</td><td>${esc(r.task ? `${r.task.name}${r.task.version ? "@" + r.task.version : ""}` : "")}</td>
    <td>${esc(r.created_by)}</td><td>${when(r.created_at)}</td><td>${dur(r.duration_ms)}</td><td>${r.attempts}</td><td>${labels}</td>`;
}

async function loadStats() {
  try {
    const s = await api("/api/v1/runs/stats", filterParams());
    const cards = [["TOTAL", s.total_runs], ...STATUSES.map((k) => [k, s.counts_by_status[k] || 0])];
    $("#cards").innerHTML = cards.map(([k, n]) =>
      `<div class="card ${state.filters.status === k ? "active" : ""}" data-status="${k}"><div class="n">${n.toLocaleString()}</div><div class="l">${k.toLowerCase()}</div></div>`).join("");
    $("#cards").querySelectorAll(".card").forEach((c) => c.onclick = () => {
      state.filters.status = c.dataset.status === "TOTAL" ? "" : c.dataset.status; renderList();
    });
  } catch (e) { $("#cards").innerHTML = `<div class="err">${esc(e.message)}</div>`; }
}
const refreshStats = debounce(loadStats, 1000);

async function loadList(resubscribe) {
  $("#list-error").textContent = "";
  const p = filterParams();
  p.append("limit", "50");
  const cursor = state.cursors[state.page];
  if (cursor) p.append("cursor", cursor);
  loadStats();
  try {
    const res = await api("/api/v1/runs", p);
    state.cursors[state.page + 1] = res.next_cursor;
    $("#rows").innerHTML = res.runs.map((r) => `<tr id="run-${esc(runPath(r))}">${rowHtml(r)}</tr>`).join("")
      || `<tr><td colspan="9" class="muted">No runs match.</td></tr>`;
    $("#prev").disabled = state.page === 0;
    $("#next").disabled = !res.next_cursor;
    $("#pageno").textContent = `page ${state.page + 1}`;
    const c = await api("/api/v1/runs/count", filterParams());
    $("#count").textContent = `${c.count.toLocaleString()} matching`;
  } catch (e) { $("#list-error").textContent = e.message; }
  if (resubscribe) subscribeList();
}

function subscribeList() {
  closeStreams();
  const p = filterParams(); p.append("snapshot", "0");
  openStream(`/api/v1/watch?${p}`, {
    run: (r) => {
      const id = `run-${runPath(r)}`;
      let tr = document.getElementById(id);
      if (!tr && state.page === 0) {
        tr = document.createElement("tr"); tr.id = id;
        $("#rows").prepend(tr);
      }
      if (tr) { tr.innerHTML = rowHtml(r); tr.classList.add("flash"); setTimeout(() => tr.classList.remove("flash"), 800); }
      refreshStats();
    },
    deleted: (r) => { document.getElementById(`run-${runPath(r)}`)?.remove(); refreshStats(); },
  });
}

// ---- a run --------------------------------------------------------------------------------------

async function renderRun(parts) {
  const [org, project, domain, name] = parts.map(decodeURIComponent);
  const base = `/api/v1/runs/${parts.join("/")}`;
  $("#view").innerHTML = `<p><a href="#/">← runs</a></p><div id="run-head" class="panel"></div>
    <div class="grid2"><div class="panel"><h3>Actions</h3><table><tbody id="actions"></tbody></table></div>
    <div id="action-detail"></div></div>`;
  let selected = "a0";
  const load = async () => {
    try {
      const run = await api(base);
      $("#run-head").innerHTML = `<h3>${esc(name)} ${badge(run.phase)}</h3><div class="kv">
        <span class="muted">scope</span><span>${esc(org)} / ${esc(project)} / ${esc(domain)}</span>
        <span class="muted">task</span><span>${esc(run.task ? run.task.name + (run.task.version ? "@" + run.task.version : "") : "")}</span>
        <span class="muted">created by</span><span>${esc(run.created_by)}</span>
        <span class="muted">created</span><span>${when(run.created_at)}</span>
        <span class="muted">started / ended</span><span>${when(run.started_at)} — ${when(run.ended_at)} ${dur(run.duration_ms)}</span>
        <span class="muted">attempts</span><span>${run.attempts}</span>
        ${run.error ? `<span class="muted">error</span><span class="err">${esc(run.error.kind)}: ${esc(run.error.message)}</span>` : ""}
        ${run.abort_reason ? `<span class="muted">aborted</span><span>${esc(run.abort_reason)} (${esc(run.aborted_by || "")})</span>` : ""}
      </div>`;
      const acts = await api(`${base}/actions`, new URLSearchParams({limit: "200"}));
      $("#actions").innerHTML = acts.actions.map((a) =>
        `<tr data-name="${esc(a.name)}" class="${a.name === selected ? "sel" : ""}"><td>${esc(a.parent ? "  └ " : "")}${esc(a.name)}</td>
          <td>${badge(a.phase)}</td><td class="muted">${a.attempts} att.</td></tr>`).join("");
      $("#actions").querySelectorAll("tr").forEach((tr) => tr.onclick = () => { selected = tr.dataset.name; load(); });
      await renderAction(base, selected);
    } catch (e) { $("#run-head").innerHTML = `<span class="err">${esc(e.message)}</span>`; }
  };
  closeStreams();
  await load();
  const p = new URLSearchParams({ org, project, domain, name, snapshot: "0" });
  openStream(`/api/v1/watch?${p}`, { run: debounce(load, 300) });
}

async function renderAction(base, name) {
  const a = await api(`${base}/actions/${encodeURIComponent(name)}`);
  const attempts = a.attempt_list || [];
  const last = attempts[attempts.length - 1];
  $("#action-detail").innerHTML = `<div class="panel"><h3>Action ${esc(a.name)} ${badge(a.phase)}</h3>
    ${a.error ? `<p class="err">${esc(a.error.kind)}: ${esc(a.error.message)}</p>` : ""}
    ${attempts.map((t) => attemptHtml(t)).join("") || `<p class="muted">No attempt yet.</p>`}</div>
    <div class="panel"><h3>Logs ${last ? `(attempt ${last.attempt})` : ""}</h3><div id="logs" class="logs"></div></div>`;
  if (last) followLogs(`${base}/actions/${encodeURIComponent(name)}/attempts/${last.attempt}/logs`);
}

function attemptHtml(t) {
  const tr = t.transitions || [];
  const t0 = tr.length ? new Date(tr[0].start_time).getTime() : 0;
  const tEnd = Math.max(Date.now(), ...tr.map((x) => new Date(x.end_time || x.start_time).getTime()));
  const span = Math.max(1, (t.end_time ? new Date(t.end_time).getTime() : tEnd) - t0);
  const bars = tr.map((x) => {
    const a = new Date(x.start_time).getTime(), b = x.end_time ? new Date(x.end_time).getTime() : (t.end_time ? new Date(t.end_time).getTime() : Date.now());
    return `<div title="${esc(x.phase)} ${when(x.start_time)}" style="width:${Math.max(1, ((b - a) / span) * 100)}%;background:${PHASE_COLOR[PHASE_STATUS[x.phase]] || "#9ca3af"}"></div>`;
  }).join("");
  const events = (t.cluster_events || []).map((e) => `<div class="muted">${when(e.occurred_at)} · ${esc(e.type)} ${esc(e.reason)}: ${esc(e.message)}${e.count > 1 ? ` (×${e.count})` : ""}</div>`).join("");
  return `<div><b>Attempt ${t.attempt}</b> ${badge(t.phase)} <span class="muted">${esc(t.cluster || "")}</span>
    <div class="timeline">${bars}</div>
    <div class="muted">${tr.map((x) => `${esc(x.phase)} ${when(x.start_time)}`).join(" → ")}</div>
    ${t.error ? `<div class="err">${esc(t.error.kind)}: ${esc(t.error.message)}</div>` : ""}${events}</div><hr>`;
}

function followLogs(path) {
  const box = $("#logs");
  const es = openStream(`${path}?follow=true`, {
    log: (l) => {
      const div = document.createElement("div");
      div.className = l.stream === "stderr" ? "stderr" : "";
      div.textContent = `${l.ts ? new Date(l.ts).toISOString().slice(11, 23) : ""} ${l.message}`;
      box.appendChild(div); box.scrollTop = box.scrollHeight;
    },
    end: () => es.close(),
  });
}

// ---- routing ------------------------------------------------------------------------------------

function route() {
  closeStreams();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "run" && parts.length === 5) renderRun(parts.slice(1));
  else renderList();
}

$("#user").value = user();
$("#user").onchange = (e) => { localStorage.setItem("runtrack.user", e.target.value.trim()); route(); };
window.addEventListener("hashchange", route);
route();
