// zkutil console: draws the registry from the console's event stream.
// Every value from ZooKeeper is set as text (textContent, attributes),
// never as HTML: a registration's metadata is written by whoever registers.
"use strict";

const ROWS_SHOWN = 500;
const TIMELINE_SHOWN = 300;
const token = document.querySelector('meta[name="console-token"]').content;
let registry = null;
let ensemble = [];
let skew = 0; // the console's clock minus the browser's
let streamUp = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function age(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.max(0, Math.floor((Date.now() + skew - ms) / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function metadataText(value) {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 400 ? text.slice(0, 400) + "…" : text;
}

function drawStatus() {
  const status = document.getElementById("zk-status");
  const banner = document.getElementById("banner");
  const zk = registry ? registry.zookeeper : null;
  const stale = !streamUp || !zk || !zk.connected || registry.services.some((s) => s.stale);
  document.body.classList.toggle("stale", Boolean(registry) && stale);
  if (!streamUp) {
    status.dataset.connected = "false";
    status.textContent = "console unreachable";
    banner.textContent = "The console is unreachable: showing the last known state; reconnecting…";
  } else if (!zk || !zk.connected) {
    status.dataset.connected = "false";
    status.textContent = "ZooKeeper unreachable";
    banner.textContent = "ZooKeeper is unreachable (" + (zk ? zk.state : "connecting") +
      "): showing the last known state, which may be stale.";
  } else if (stale) {
    status.dataset.connected = "false";
    status.textContent = "stale";
    banner.textContent = "Some lists could not be refreshed: they show the last known state.";
  } else {
    status.dataset.connected = "true";
    status.textContent = "live · session " + zk.session;
  }
  banner.hidden = !stale;
  document.getElementById("writes").hidden = !(registry && registry.writes);
}

function drawEnsemble() {
  const body = document.querySelector("#ensemble tbody");
  body.replaceChildren();
  for (const host of ensemble) {
    const mntr = host.mntr || {};
    const row = host.up
      ? [host.host, host.mode, host.zxid, host.connections, mntr.zk_outstanding_requests ?? "", host.latency,
        mntr.zk_znode_count ?? "", mntr.zk_watch_count ?? ""]
      : [host.host, "down: " + host.error, "", "", "", "", "", ""];
    const tr = el("tr", { "data-host": host.host, class: host.up ? "" : "out" });
    for (const cell of row) tr.append(el("td", { text: cell }));
    body.append(tr);
  }
}

function matches(filter, service, instance) {
  if (!filter) return true;
  const state = instance.in_rotation ? "in rotation" : "out of rotation " + (instance.reason || "");
  const text = [service.path, instance.endpoint, instance.format, state, instance.owner || "",
    metadataText(instance.metadata)].join(" ").toLowerCase();
  return text.includes(filter);
}

// The instance count since the console started, over at most the last hour:
// grey, every instance; green, those in rotation.
function chart(history, nowMs) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 360 40");
  svg.setAttribute("preserveAspectRatio", "none");
  const first = history.length ? history[0][0] : nowMs;
  const start = Math.min(nowMs - 5 * 1000, Math.max(nowMs - 3600 * 1000, first));
  const span = nowMs - start;
  const max = Math.max(1, ...history.map((p) => p[2]));
  const x = (t) => ((Math.max(t, start) - start) / span) * 358 + 1;
  const y = (n) => 39 - (n / max) * 36;
  for (const [index, cls] of [[2, "all"], [1, "in"]]) {
    let d = "";
    for (const point of history) {
      d += (d ? " H" + x(point[0]).toFixed(1) + " V" : "M" + x(point[0]).toFixed(1) + " ") + y(point[index]).toFixed(1);
    }
    if (!d) continue;
    d += " H" + x(nowMs).toFixed(1);
    if (cls === "all") d += " V39 H" + x(history[0][0]).toFixed(1) + " Z";
    const path = document.createElementNS(NS, "path");
    path.setAttribute("class", cls);
    path.setAttribute("d", d);
    svg.append(path);
  }
  const title = document.createElementNS(NS, "title");
  title.textContent = "instances (grey: all, green: in rotation), max " + max;
  svg.append(title);
  const minutes = Math.round(span / 60000);
  const since = minutes >= 60 ? "last hour" : "since the console started (" + (minutes ? minutes + " min" : "<1 min") + ")";
  const label = el("span", { class: "muted chart-label", text: since + ", max " + max });
  return el("div", { class: "chart-box" }, svg, label);
}

function actionButtons(service, instance) {
  const cell = el("td", { class: "actions" });
  if (!registry.writes) return cell;
  const button = (op, label) => {
    const b = el("button", { type: "button", "data-op": op, text: label });
    b.addEventListener("click", () => confirmAction(op, service.path, instance));
    return b;
  };
  cell.append(instance.in_rotation ? button("disable", "Disable") : button("enable", "Enable"));
  cell.append(button("weight", "Weight"));
  return cell;
}

function drawServices() {
  const container = document.getElementById("services");
  const filter = document.getElementById("filter").value.trim().toLowerCase();
  const fragment = document.createDocumentFragment();
  let total = 0;
  let out = 0;
  for (const service of registry.services) {
    const rows = service.instances.filter((i) => matches(filter, service, i));
    total += service.instances.length;
    out += service.instances.length - service.in_rotation;
    const section = el("div", { class: "service", "data-path": service.path });
    const head = el("div", { class: "service-head" },
      el("h3", { text: service.path }),
      el("span", { class: "muted", text: service.formats.join(", ") || "empty" }),
      el("span", { text: service.in_rotation + " in rotation of " + service.instances.length }),
      service.stale ? el("span", { class: "stale-note", text: "stale: last known state" }) : null);
    section.append(head, chart(service.history, registry.now_ms));
    const table = el("table", {},
      el("thead", {}, el("tr", {}, ...["endpoint", "format", "state", "weight", "age", "owner session", "metadata", ""]
        .map((h, i) => el("th", { text: h, class: i === 5 || i === 6 ? "optional" : null })))));
    const body = el("tbody");
    for (const instance of rows.slice(0, ROWS_SHOWN)) {
      const state = instance.in_rotation
        ? el("td", { class: "state state-in", text: "in rotation" })
        : el("td", { class: "state state-out", text: "out of rotation" + (instance.reason ? ": " + instance.reason : "") });
      const tr = el("tr", { class: instance.in_rotation ? "in" : "out", "data-endpoint": instance.endpoint,
        "data-node": instance.node, "data-format": instance.format },
        el("td", { class: "endpoint", text: instance.endpoint }),
        el("td", { text: instance.format }),
        state,
        el("td", { class: "weight", text: instance.weight }),
        el("td", { class: "age", "data-ms": instance.registered_ms, text: age(instance.registered_ms) }),
        el("td", { class: "optional owner", text: instance.owner || "" }),
        el("td", { class: "optional metadata", text: metadataText(instance.metadata) }),
        actionButtons(service, instance));
      body.append(tr);
    }
    table.append(body);
    section.append(el("div", { class: "scroll" }, table));
    if (rows.length > ROWS_SHOWN) {
      section.append(el("div", { class: "more", text: (rows.length - ROWS_SHOWN) + " more: narrow the filter" }));
    }
    if (filter && rows.length === 0) section.hidden = true;
    fragment.append(section);
  }
  if (registry.services.length === 0) {
    fragment.append(el("p", { class: "muted", text: registry.zookeeper.connected ? "No instance is registered." : "Waiting for ZooKeeper…" }));
  }
  container.replaceChildren(fragment);
  document.getElementById("counts").textContent =
    registry.services.length + " base paths · " + total + " instances · " + out + " out of rotation";
}

function drawTimeline() {
  const list = document.getElementById("timeline");
  const fragment = document.createDocumentFragment();
  const events = registry.timeline.slice(-TIMELINE_SHOWN).reverse();
  for (const event of events) {
    fragment.append(el("li", { class: "kind-" + event.kind, "data-kind": event.kind, "data-endpoint": event.endpoint },
      el("time", { text: clock(event.at) }),
      el("span", { text: event.endpoint + " " + event.detail + " · " + event.path })));
  }
  if (events.length === 0) fragment.append(el("li", { class: "muted", text: "Nothing yet." }));
  list.replaceChildren(fragment);
}

function draw() {
  drawStatus();
  drawEnsemble();
  if (!registry) return;
  drawServices();
  drawTimeline();
}

let pending = null;
function confirmAction(op, path, instance) {
  pending = { op, path, endpoint: instance.endpoint };
  const titles = { disable: "Take out of rotation", enable: "Put back in rotation", weight: "Change the weight" };
  document.getElementById("confirm-title").textContent = titles[op];
  document.getElementById("confirm-text").textContent = instance.endpoint + " under " + path +
    " (" + instance.format + "): written to ZooKeeper with the console's identity.";
  document.getElementById("confirm-reason-label").hidden = op !== "disable";
  document.getElementById("confirm-weight-label").hidden = op !== "weight";
  document.getElementById("confirm-reason").value = "";
  document.getElementById("confirm-weight").value = instance.weight;
  document.getElementById("confirm").hidden = false;
}

function message(text) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(message.timer);
  message.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function runPending() {
  const action = pending;
  pending = null;
  document.getElementById("confirm").hidden = true;
  if (!action) return;
  const query = new URLSearchParams({ op: action.op, path: action.path, endpoint: action.endpoint });
  if (action.op === "disable") query.set("reason", document.getElementById("confirm-reason").value);
  if (action.op === "weight") query.set("weight", document.getElementById("confirm-weight").value);
  try {
    const answer = await fetch("/api/action?" + query.toString(), {
      method: "POST", headers: { "X-Console-Token": token }, credentials: "same-origin" });
    const text = await answer.text();
    message(answer.ok ? action.endpoint + ": " + action.op + " done" : action.endpoint + ": " + text.trim());
  } catch (err) {
    message(action.endpoint + ": " + err);
  }
}

// The stream reconnects by itself after a dropped connection, but not after
// an error answer (a 503, a console restarting): then a new one is opened,
// after a wait that grows to 10 s. A console that restarted has a new token:
// the page reloads to get it.
let boot = null;
let retryIn = 500;
function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    clearTimeout(connect.down);
    streamUp = true;
    retryIn = 500;
    drawStatus();
  });
  events.addEventListener("registry", (event) => {
    const next = JSON.parse(event.data);
    if (boot !== null && next.boot !== boot) { location.reload(); return; }
    boot = next.boot;
    registry = next;
    skew = registry.now_ms ? registry.now_ms - Date.now() : 0;
    streamUp = true;
    draw();
  });
  events.addEventListener("ensemble", (event) => {
    ensemble = JSON.parse(event.data);
    drawEnsemble();
  });
  events.addEventListener("error", () => {
    // Said only when the stream stays away: a stream ended for a newer one
    // is back within a second.
    clearTimeout(connect.down);
    connect.down = setTimeout(() => { streamUp = false; drawStatus(); }, 2000);
    if (events.readyState === EventSource.CLOSED) {
      events.close();
      setTimeout(connect, retryIn);
      retryIn = Math.min(retryIn * 2, 10000);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("filter").addEventListener("input", () => { if (registry) drawServices(); });
  document.getElementById("confirm-cancel").addEventListener("click", () => {
    pending = null;
    document.getElementById("confirm").hidden = true;
  });
  document.getElementById("confirm-ok").addEventListener("click", runPending);
  setInterval(() => {
    for (const cell of document.querySelectorAll("td.age")) {
      const ms = cell.dataset.ms;
      cell.textContent = ms ? age(Number(ms)) : "";
    }
  }, 5000);
  connect();
});
