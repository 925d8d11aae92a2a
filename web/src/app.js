/* The Sluice dashboard: fleet overview, per-device live and history charts, pipeline panel. Talks only to the
 * REST API of the instance that served it (same origin). uPlot is bundled ahead of this file by build.mjs. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY_FIELDS = ["speed", "fuel_level", "heart_rate", "stress_level", "battery_level", "steps", "temperature_c"];
  const SKIP = new Set(["device_id", "day", "ts"]);
  let current = null; // {id, table, source, chart, data, field}

  /* Bearer token, asked for when the API answers 401 (api.tokens is set) and kept for this tab's session. It goes
   * in the Authorization header, and as access_token on live streams: EventSource cannot send headers. */
  let token = sessionStorage.getItem("sluice.token") || "";
  let asking = null; // the pending token form: every request refused meanwhile waits for the same answer
  function askToken(refused) {
    if (!asking) asking = new Promise((resolve) => {
      $("login-msg").textContent = refused ? "That token was refused." : "This API needs a token.";
      $("status").textContent = "waiting for an API token";
      $("login").hidden = false;
      $("token").focus();
      $("login").onsubmit = (ev) => {
        ev.preventDefault();
        token = $("token").value.trim();
        sessionStorage.setItem("sluice.token", token);
        $("login").hidden = true;
        asking = null;
        resolve();
      };
    });
    return asking;
  }
  async function authFetch(path) {
    for (let tries = 0; ; tries++) {
      const used = token;
      const r = await fetch(path, { cache: "no-store", headers: used ? { Authorization: "Bearer " + used } : {} });
      if (r.status !== 401 || tries === 1) return r;
      if (token === used) await askToken(used !== ""); // else another request has already asked: retry with it
    }
  }
  const liveURL = (path) => (token ? path + "?access_token=" + encodeURIComponent(token) : path);

  async function getJSON(path) {
    const r = await authFetch(path);
    const body = await r.json();
    if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
    return body;
  }
  const fmtTime = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—");
  const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v));
  const numericFields = (row) => Object.keys(row).filter((k) => !SKIP.has(k) && typeof row[k] === "number");
  const keyField = (row) => KEY_FIELDS.find((f) => typeof row[f] === "number") || numericFields(row)[0];

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "onclick") e.onclick = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  /* ------------------------------------------------------------------------------------------------ fleet */
  function drawMap(devices) {
    const cv = $("map"), ctx = cv.getContext("2d");
    ctx.clearRect(0, 0, cv.width, cv.height);
    const pts = devices.map((d) => d.latest).filter((r) => typeof r.longitude === "number" && typeof r.latitude === "number");
    ctx.fillStyle = "#667";
    ctx.fillText("vehicle positions (lon/lat), " + pts.length + " shown", 8, 14);
    if (!pts.length) return;
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const p of pts) {
      x0 = Math.min(x0, p.longitude); x1 = Math.max(x1, p.longitude);
      y0 = Math.min(y0, p.latitude); y1 = Math.max(y1, p.latitude);
    }
    /* room on the right for the device labels drawn beside each point */
    const pad = 24, labelRoom = 90, w = cv.width - pad - labelRoom, h = cv.height - 2 * pad;
    const sx = (x) => pad + (x1 > x0 ? ((x - x0) / (x1 - x0)) * w : w / 2);
    const sy = (y) => cv.height - pad - (y1 > y0 ? ((y - y0) / (y1 - y0)) * h : h / 2);
    for (const p of pts) {
      ctx.beginPath();
      ctx.fillStyle = typeof p.speed === "number" && p.speed > 90 ? "#d33" : "#2a6";
      ctx.arc(sx(p.longitude), sy(p.latitude), 5, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#334";
      ctx.fillText(p.device_id, sx(p.longitude) + 7, sy(p.latitude) + 4);
    }
  }

  function drawHealth(devices) {
    const w = devices.map((d) => d.latest).filter((r) => typeof r.heart_rate === "number");
    const box = $("health");
    box.replaceChildren(el("h3", {}, "Wearables"));
    if (!w.length) return box.append(el("p", {}, "no wearables yet"));
    const avg = (f) => { const v = w.map((r) => r[f]).filter((x) => typeof x === "number"); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN; };
    box.append(
      el("div", { class: "card" }, "devices ", el("span", { class: "value" }, w.length)),
      el("div", { class: "card" }, "avg heart rate ", el("span", { class: "value" }, fmt(avg("heart_rate")))),
      el("div", { class: "card" }, "high heart rate (>120) ", el("span", { class: "value" }, w.filter((r) => r.heart_rate > 120).length)),
      el("div", { class: "card" }, "avg stress ", el("span", { class: "value" }, fmt(avg("stress_level")))),
      el("div", { class: "card" }, "low battery (<20%) ", el("span", { class: "value" }, w.filter((r) => r.battery_level < 20).length)));
  }

  async function refreshFleet() {
    if (asking) return; // the form is up: the next refresh after it carries the token
    try {
      const body = await getJSON("/api/v1/devices");
      const tb = $("devices").tBodies[0];
      tb.replaceChildren(...body.devices.map((d) => {
        const kv = numericFields(d.latest).filter((f) => KEY_FIELDS.includes(f)).slice(0, 4).map((f) => f + " " + fmt(d.latest[f])).join(", ");
        return el("tr", { class: "device", "data-device": d.device_id, onclick: () => openDevice(d.device_id, d.table) },
          el("td", {}, d.device_id), el("td", {}, d.table), el("td", {}, fmtTime(d.last_seen)), el("td", {}, kv));
      }));
      drawMap(body.devices);
      drawHealth(body.devices);
      $("status").textContent = body.count + " devices · updated " + new Date().toLocaleTimeString();
    } catch (e) {
      $("status").textContent = "error: " + e.message;
    }
  }

  /* ----------------------------------------------------------------------------------------------- device */
  function chart(target, title, label, data) {
    target.replaceChildren();
    return new uPlot({ title, width: Math.min(900, window.innerWidth - 80), height: 240,
      series: [{}, { label, stroke: "#2a6fdb", width: 2, spanGaps: true }], scales: { x: { time: true } } }, data, target);
  }

  function openDevice(id, table) {
    if (current && current.source) current.source.close();
    $("device").hidden = false;
    $("device-id").textContent = id + " (" + table + ")";
    $("live-values").replaceChildren();
    current = { id, table, data: [[], []], field: null, chart: null };
    const src = new EventSource(liveURL("/api/v1/live/devices/" + encodeURIComponent(id)));
    current.source = src;
    src.addEventListener("reading", (ev) => {
      const msg = JSON.parse(ev.data), r = msg.reading;
      if (!current || current.id !== id) return;
      if (!current.field) {
        current.field = keyField(r);
        current.chart = chart($("live-chart"), "live " + current.field, current.field, current.data);
      }
      const vals = $("live-values");
      vals.setAttribute("data-ts", r.ts);
      vals.replaceChildren(el("span", { class: "card" }, "ts ", el("span", { class: "value", id: "live-ts" }, fmtTime(r.ts))),
        ...numericFields(r).map((f) => el("span", { class: "card" }, f + " ", el("span", { class: "value" }, fmt(r[f])))));
      const t = Date.parse(r.ts) / 1000;
      const xs = current.data[0];
      if (xs.length && t <= xs[xs.length - 1]) return;
      xs.push(t);
      current.data[1].push(typeof r[current.field] === "number" ? r[current.field] : null);
      if (xs.length > 600) { xs.shift(); current.data[1].shift(); }
      current.chart.setData(current.data);
    });
    const now = new Date(), local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    $("h-to").value = local(new Date(now.getTime() + 60000));
    $("h-from").value = local(new Date(now.getTime() - 3600000));
    loadHistory();
  }

  async function loadHistory(ev) {
    if (ev) ev.preventDefault();
    if (!current) return;
    const from = new Date($("h-from").value).toISOString(), to = new Date($("h-to").value).toISOString();
    const q = new URLSearchParams({ from, to, interval: $("h-interval").value, agg: $("h-agg").value });
    try {
      const body = await getJSON("/api/v1/devices/" + encodeURIComponent(current.id) + "/aggregate?" + q);
      const field = body.fields.includes(current.field) ? current.field : (body.fields.find((f) => KEY_FIELDS.includes(f)) || body.fields[0]);
      const data = [body.buckets.map((b) => Date.parse(b.ts) / 1000), body.buckets.map((b) => b.values[field])];
      chart($("history-chart"), body.agg + " " + field + " per " + body.interval + " (" + body.rows + " rows)", field, data);
      $("history-chart").setAttribute("data-buckets", String(body.buckets.length));
    } catch (e) {
      $("history-chart").replaceChildren(el("p", {}, "error: " + e.message));
    }
  }

  /* -------------------------------------------------------------------------------------------- pipelines */
  const pipeHist = { t: [], consumed: [], lag: [], dead: [] };
  let pipeChart = null, lastConsumed = null, lastT = null;
  async function refreshPipelines() {
    if (asking) return;
    try {
      const body = await getJSON("/api/v1/pipelines");
      $("pipes").tBodies[0].replaceChildren(...body.pipelines.map((p) => el("tr", {},
        el("td", {}, p.name), el("td", {}, (p.state || "?") + (p.processors_running > 1 ? " (" + p.processors_running + " processors)" : "")),
        el("td", {}, p.consumed), el("td", {}, p.written),
        el("td", {}, p.dead_lettered), el("td", {}, p.filtered),
        el("td", {}, p.lag + (p.partitions.length ? " (" + p.partitions.map((x) => x.partition + ":" + x.lag).join(" ") + ")" : "")))));
      const sum = (f) => body.pipelines.reduce((a, p) => a + (p[f] || 0), 0);
      const t = Date.now() / 1000, consumed = sum("consumed");
      const rate = lastConsumed === null ? 0 : (consumed - lastConsumed) / Math.max(0.001, t - lastT);
      lastConsumed = consumed; lastT = t;
      pipeHist.t.push(t); pipeHist.consumed.push(rate); pipeHist.lag.push(sum("lag")); pipeHist.dead.push(sum("dead_lettered"));
      if (pipeHist.t.length > 300) for (const k in pipeHist) pipeHist[k].shift();
      const data = [pipeHist.t, pipeHist.consumed, pipeHist.lag, pipeHist.dead];
      if (pipeHist.t.length < 2) {
        /* one sample has no time span: uPlot would stretch the axis over years; wait for the second */
      } else if (!pipeChart) {
        pipeChart = new uPlot({ title: "throughput (records/s), lag, dead letters", width: Math.min(900, window.innerWidth - 80), height: 220,
          series: [{}, { label: "records/s", stroke: "#2a6fdb" }, { label: "lag", stroke: "#d80" }, { label: "dead letters", stroke: "#d33" }],
          scales: { x: { time: true } } }, data, $("pipe-chart"));
      } else pipeChart.setData(data);
      const first = body.pipelines[0];
      if (first) {
        const dl = await getJSON("/api/v1/pipelines/" + encodeURIComponent(first.name) + "/dead-letters?limit=10");
        $("dead-letters").replaceChildren(...dl.dead_letters.map((d) => el("li", {}, fmtTime(d.ts) + " " + (d.field || "") + ": " + d.reason)));
      }
    } catch (e) {
      /* the panel stays as it was; the status line shows store errors */
    }
  }

  $("history-form").addEventListener("submit", loadHistory);
  refreshFleet();
  refreshPipelines();
  setInterval(refreshFleet, 2000);
  setInterval(refreshPipelines, 2000);
})();
