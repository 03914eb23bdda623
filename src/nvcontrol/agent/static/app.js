// The nvcontrol dashboard: live charts, changes through transactions, journal and audit log.
"use strict";

const METRICS = [
  ["temperature_c", "Temperature", "°C", "#f0883e", 0, 100],
  ["power_w", "Power", "W", "#a371f7", 0],
  ["sm_mhz", "SM clock", "MHz", "#58a6ff", 0],
  ["gpu_util_pct", "Utilization", "%", "#76b900", 0, 100],
  ["fan_pct", "Fan", "%", "#39c5cf", 0, 100],
];
let csrf = "";
let role = "";
let gpuNames = {};
let built = false;
let pending = null; // the transaction this page started and waits for

const $ = (sel) => document.querySelector(sel);

async function api(path, body) {
  const opts = { method: body === undefined ? "GET" : "POST", headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.headers["X-CSRF-Token"] = csrf;
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const doc = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error((doc.error && doc.error.message) || resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return doc;
}

const call = (method, params) => api("/api/call/" + method, params).then((d) => d.result);

function say(text, ok) {
  const m = $("#message");
  m.textContent = text;
  m.className = "message " + (ok ? "ok" : "bad");
}

function showMain(session) {
  csrf = session.csrf;
  role = session.role;
  $("#who").textContent = `${session.name} (${session.role})`;
  $("#login").classList.add("hidden");
  $("#main").classList.remove("hidden");
  $("#logout").classList.remove("hidden");
  refreshTables();
}

function buildGpus(samples) {
  const root = $("#gpus");
  root.textContent = "";
  const last = samples[samples.length - 1];
  for (const g of last.gpus) {
    const box = document.createElement("div");
    box.className = "gpu";
    box.id = "gpu-" + g.index;
    const h = document.createElement("h3");
    h.textContent = `GPU ${g.index} · ${gpuNames[g.uuid] || ""} · ${g.uuid}`;
    box.appendChild(h);
    for (const [key, label] of METRICS) {
      const c = document.createElement("div");
      c.className = "chart";
      c.innerHTML = `<div class="label">${label}</div><div class="value" data-key="${key}">–</div><canvas data-key="${key}"></canvas>`;
      box.appendChild(c);
    }
    root.appendChild(box);
  }
  for (const sel of document.querySelectorAll(".gpu-select")) {
    sel.textContent = "";
    for (const g of last.gpus) {
      const o = document.createElement("option");
      o.value = String(g.index);
      o.textContent = `GPU ${g.index}`;
      sel.appendChild(o);
    }
  }
  built = true;
}

async function refreshCharts() {
  let doc;
  try { doc = await api("/api/samples"); } catch (e) { if (e.status === 401) location.reload(); return; }
  gpuNames = doc.names;
  const samples = doc.samples;
  if (!samples.length) return;
  if (!built) buildGpus(samples);
  const last = samples[samples.length - 1];
  for (const g of last.gpus) {
    const box = $("#gpu-" + g.index);
    if (!box) continue;
    for (const [key, , unit, color, lo, hi] of METRICS) {
      const series = samples.map((s) => (s.gpus.find((x) => x.uuid === g.uuid) || {})[key]);
      const v = g[key];
      let text = v === null || v === undefined ? "N/A" : `${v} ${unit}`;
      if (key === "power_w" && g.power_limit_w !== null) text += ` / ${g.power_limit_w} W limit`;
      box.querySelector(`.value[data-key="${key}"]`).textContent = text;
      window.drawLine(box.querySelector(`canvas[data-key="${key}"]`), series, color, lo, hi);
    }
    box.dataset.powerLimit = String(g.power_limit_w);
  }
  document.body.dataset.samples = String(last.time);
}

async function refreshLive() {
  let doc;
  try { doc = await api("/api/live"); } catch (e) { return; }
  const waiting = doc.transactions.filter((t) => t.confirm_in_s !== null);
  const box = $("#countdown");
  if (waiting.length) {
    const t = waiting[0];
    box.dataset.tx = String(t.id);
    $("#countdown-text").textContent = `Transaction ${t.id}: reverting in ${Math.ceil(t.confirm_in_s)} s unless you keep it`;
    box.classList.remove("hidden");
  } else {
    box.classList.add("hidden");
  }
}

function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }

async function refreshTables() {
  try {
    // { snapshots: [summary], warnings: [a sentence per file that is not a snapshot] }
    const { snapshots: snaps, warnings } = await call("snapshot_list", {});
    const body = $("#snapshots tbody");
    body.textContent = "";
    for (const w of warnings) {
      const tr = document.createElement("tr");
      const td = cell(tr, w); td.colSpan = 4; td.className = "hint";
      body.appendChild(tr);
    }
    for (const s of snaps) {
      const tr = document.createElement("tr");
      cell(tr, s.name); cell(tr, s.created); cell(tr, String(s.gpus.length));
      const td = cell(tr, "");
      for (const [label, fn] of [["Diff", diffSnap], ["Restore", restoreSnap]]) {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = label; b.dataset.snapshot = s.name;
        b.addEventListener("click", () => fn(s.name));
        td.appendChild(b);
      }
      body.appendChild(tr);
    }
    const txs = await call("transactions", { limit: 15 });
    const jb = $("#journal tbody");
    jb.textContent = "";
    for (const t of txs) {
      const tr = document.createElement("tr");
      cell(tr, String(t.id)); cell(tr, t.state); cell(tr, t.description); cell(tr, t.result || "");
      jb.appendChild(tr);
    }
  } catch (e) { say(e.message, false); }
  const ab = $("#audit tbody");
  ab.textContent = "";
  if (role !== "admin") {
    const tr = document.createElement("tr"); cell(tr, "the audit log needs the admin role"); ab.appendChild(tr);
    return;
  }
  try {
    for (const e of await call("audit", { limit: 15 })) {
      const tr = document.createElement("tr");
      cell(tr, String(e.id)); cell(tr, new Date(e.time * 1000).toLocaleTimeString());
      cell(tr, `${e.key} (${e.role})`); cell(tr, e.action); cell(tr, e.result);
      const changes = [];
      for (const [uuid, fields] of Object.entries(e.before)) {
        for (const [f, v] of Object.entries(fields)) changes.push(`${uuid.slice(0, 12)} ${f}: ${JSON.stringify(v)} → ${JSON.stringify((e.after[uuid] || {})[f])}`);
      }
      cell(tr, changes.join("; "));
      ab.appendChild(tr);
    }
  } catch (e) { say(e.message, false); }
}

function txOptions(form) {
  return { window_s: 1, confirm: true, confirm_timeout_s: Number(form.timeout.value) };
}

async function runChange(method, params, what) {
  say(`${what}: applying… confirm it in the box above before the countdown ends`, true);
  pending = method;
  try {
    const report = await call(method, params);
    if (report === null) say(`${what}: nothing to change`, true);
    else say(`${what}: committed (transaction ${report.transaction})`, true);
  } catch (e) {
    say(`${what}: ${e.message}`, false);
  } finally {
    pending = null;
    refreshTables();
    refreshLive();
  }
}

async function diffSnap(name) {
  try {
    const d = await call("snapshot_diff", { name, selector: null });
    const notes = await call("snapshot_notes", { name, selector: null });
    const lines = d.length ? d.map((x) => `GPU ${x.index} ${x.field}: snapshot ${JSON.stringify(x.snapshot)}, live ${JSON.stringify(x.live)}`) : [`the GPUs match snapshot ${name}`];
    $("#diff").textContent = [...lines, ...notes].join("\n");
  } catch (e) { say(e.message, false); }
}

function restoreSnap(name) {
  runChange("snapshot_restore", { name, selector: null, options: { window_s: 1, confirm: true, confirm_timeout_s: 20 } }, `restore ${name}`);
}

function wire() {
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try { showMain(await api("/api/login", { token: $("#token").value })); } catch (e) { say(e.message, false); $("#login").classList.remove("hidden"); alertLogin(e.message); }
  });
  $("#logout").addEventListener("click", async () => { await api("/api/logout", {}).catch(() => {}); location.reload(); });
  $("#confirm-btn").addEventListener("click", async () => {
    const id = Number($("#countdown").dataset.tx);
    // The change's own call reports how it ended; its answer often arrives before the
    // confirm's, and a late "kept" must not cover "committed".
    try { await call("confirm", { tx_id: id }); if (pending) say(`transaction ${id} kept`, true); } catch (e) { say(e.message, false); }
    refreshLive();
  });
  $("#power-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    runChange("set_power_limit", { selector: f.selector.value, watts_: Number(f.watts.value), percent: null, options: txOptions(f) }, `power limit ${f.watts.value} W on GPU ${f.selector.value}`);
  });
  $("#oc-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    runChange("apply_offsets", { selector: f.selector.value, graphics_mhz: Number(f.graphics.value), memory_mhz: Number(f.memory.value), pstate: "P0", options: txOptions(f) }, `offsets on GPU ${f.selector.value}`);
  });
  $("#fan-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    runChange("set_fans", { selector: f.selector.value, fan: null, percent: Number(f.percent.value), options: txOptions(f) }, `fans ${f.percent.value}% on GPU ${f.selector.value}`);
  });
  $("#fan-auto").addEventListener("click", async () => {
    const f = $("#fan-form");
    try { await call("fans_auto", { selector: f.selector.value }); say("fans back to automatic", true); } catch (e) { say(e.message, false); }
  });
  $("#snap-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = ev.target.name.value;
    try { await call("snapshot_create", { name, selector: null }); say(`snapshot ${name} created`, true); } catch (e) { say(e.message, false); }
    refreshTables();
  });
}

function alertLogin(text) { $("#login .hint").textContent = text; }

async function start() {
  wire();
  try {
    showMain(await api("/api/session"));
  } catch (e) {
    $("#login").classList.remove("hidden");
  }
  setInterval(() => { if (csrf) { refreshCharts(); refreshLive(); } }, 1000);
  setInterval(() => { if (csrf && !pending) refreshTables(); }, 5000);
  document.body.dataset.ready = "1"; // the forms are wired from here on
}

document.addEventListener("DOMContentLoaded", start);
