// MCP Session Manager web UI: vanilla JS, same-origin calls to the manager API with the
// bearer token the host injects into <meta name="msm-token">. Live updates come from the
// SSE stream at /events (read with fetch, because EventSource cannot send headers); when the
// stream is unavailable the page polls /status every 2 s. Every field of the API's JSON is
// read defensively: a missing field shows as "—", never as a broken page.
"use strict";

(function () {
  const POLL_INTERVAL_MS = 2000;
  const SSE_RETRY_MS = 15000;
  const GRAPH_PAGE_SIZE = 20;
  const DBS_MIN_REFRESH_MS = 3000;

  const tokenMeta = document.querySelector('meta[name="msm-token"]');
  const token = tokenMeta ? tokenMeta.getAttribute("content") || "" : "";

  const state = {
    status: null,
    sessions: null, // null until the first answer: no empty state before we know
    dbs: null,
    reachable: null,
    mode: "connecting", // live | polling | offline
    pendingActions: new Set(),
    graph: { db: null, query: "", offset: 0, total: null, loading: false },
    lastDbsRefresh: 0,
    configDiffShown: false,
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- DOM helpers

  /** Builds an element; children may be strings, nodes, arrays, null. Text is never parsed as HTML. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
    appendChildren(el, children);
    return el;
  }

  function appendChildren(el, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) appendChildren(el, child);
      else el.append(child instanceof Node ? child : String(child));
    }
  }

  function replaceChildren(el, ...children) {
    el.textContent = "";
    appendChildren(el, children);
  }

  const DASH = "—";

  // ---------------------------------------------------------------- defensive field access

  /** The first of `keys` (dotted paths allowed) that is present and not null on `obj`. */
  function pick(obj, ...keys) {
    if (!obj || typeof obj !== "object") return undefined;
    for (const key of keys) {
      let value = obj;
      for (const part of key.split(".")) {
        value = value && typeof value === "object" ? value[part] : undefined;
      }
      if (value !== undefined && value !== null && value !== "") return value;
    }
    return undefined;
  }

  /** A list out of an API answer: an array, or the array/map under one of `keys`. */
  function listFrom(value, ...keys) {
    if (Array.isArray(value)) return value;
    if (!value || typeof value !== "object") return [];
    for (const key of keys) {
      const inner = value[key];
      if (Array.isArray(inner)) return inner;
      if (inner && typeof inner === "object") {
        return Object.entries(inner).map(([name, item]) =>
          item && typeof item === "object" ? Object.assign({ name }, item) : { name, value: item });
      }
    }
    return [];
  }

  function asNumber(value) {
    if (typeof value === "number" && Number.isFinite(value)) return value;
    if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
    if (Array.isArray(value)) return value.length;
    return undefined;
  }

  function showNumber(value) {
    const n = asNumber(value);
    return n === undefined ? DASH : n.toLocaleString();
  }

  /** A Date from an RFC 3339 string, or unix seconds / milliseconds. */
  function asDate(value) {
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value === "number") return new Date(value < 1e12 ? value * 1000 : value);
    const n = Number(value);
    if (Number.isFinite(n) && String(value).trim() !== "") return new Date(n < 1e12 ? n * 1000 : n);
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : new Date(t);
  }

  function relativeTime(value) {
    const date = asDate(value);
    if (!date) return DASH;
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 5 && seconds > -5) return "just now";
    if (seconds < 0) return date.toLocaleString();
    if (seconds < 60) return `${seconds} s ago`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return `${hours} h ago`;
    const days = Math.floor(hours / 24);
    if (days < 30) return `${days} d ago`;
    return date.toLocaleDateString();
  }

  function timeCell(value) {
    const date = asDate(value);
    return h("time", date ? { datetime: date.toISOString(), title: date.toLocaleString() } : {}, relativeTime(value));
  }

  function formatDuration(secondsValue) {
    const seconds = asNumber(secondsValue);
    if (seconds === undefined) return undefined;
    const s = Math.floor(seconds);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function formatBytes(value) {
    const n = asNumber(value);
    if (n === undefined) return DASH;
    if (n < 1024) return `${n} B`;
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let size = n / 1024;
    let unit = 0;
    while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
    return `${size < 10 ? size.toFixed(1) : Math.round(size)} ${units[unit]}`;
  }

  /** "/home/me/src/project" -> "project", for a compact label with the full path as a tooltip. */
  function baseName(path) {
    if (typeof path !== "string" || path === "") return undefined;
    const trimmed = path.replace(/[\\/]+$/, "");
    const parts = trimmed.split(/[\\/]/);
    return parts[parts.length - 1] || trimmed;
  }

  /** A path as text with line-break opportunities after each separator. */
  function pathText(path) {
    const parts = String(path).split(/(?<=[\\/])/);
    const out = [];
    parts.forEach((part, i) => {
      if (i > 0) out.push(h("wbr"));
      out.push(part);
    });
    return out;
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(message, status, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  function errorText(body, fallback) {
    if (body && typeof body === "object") {
      const message = pick(body, "error.message", "error", "message", "detail");
      if (typeof message === "string") return message;
      if (message !== undefined) return JSON.stringify(message);
    }
    if (typeof body === "string" && body.trim() !== "") return body.trim().slice(0, 400);
    return fallback;
  }

  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    const init = { method: options.method || "GET", headers, cache: "no-store" };
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      setReachable(false, "The manager API does not answer. Is the tray app or “mcp-session-manager daemon” running? Retrying every 2 s.");
      throw new ApiError("manager not reachable", 0, null);
    }
    const text = await response.text();
    let body = text;
    try { body = text ? JSON.parse(text) : null; } catch (_) { /* plain text answer */ }
    if (response.status === 401) {
      setReachable(false, "The manager refused this page's token. Open the dashboard again from the tray menu, or reload the page.", "Not authorised");
      throw new ApiError(errorText(body, "unauthorised"), 401, body);
    }
    setReachable(true);
    if (!response.ok) {
      throw new ApiError(errorText(body, `HTTP ${response.status} ${response.statusText}`), response.status, body);
    }
    return body;
  }

  // ---------------------------------------------------------------- connection state

  function setReachable(reachable, text, title) {
    const banner = $("banner");
    if (reachable) {
      if (state.reachable === false) {
        banner.hidden = true;
        if (state.mode === "offline") setMode("polling");
      }
      state.reachable = true;
      return;
    }
    state.reachable = false;
    $("banner-title").textContent = title || "Manager not reachable";
    $("banner-text").textContent = text || "";
    banner.hidden = false;
    setMode("offline");
    $("host-summary").textContent = "Not connected";
  }

  function setMode(mode) {
    state.mode = mode;
    const labels = { live: "live", polling: "polling every 2 s", offline: "offline", connecting: "connecting" };
    $("connection").dataset.state = mode;
    // What is on screen may be stale while offline: the stylesheet dims it.
    if (mode === "offline") document.body.dataset.offline = "true";
    else delete document.body.dataset.offline;
    $("connection-label").textContent = labels[mode] || mode;
  }

  // ---------------------------------------------------------------- servers (targets)

  const RUNNING_STATES = new Set(["running", "starting", "restarting", "reachable", "backoff"]);

  function targetState(target) {
    const reachable = pick(target, "reachable");
    if (isRemote(target) && typeof reachable === "boolean") return reachable ? "reachable" : "unreachable";
    const raw = pick(target, "state", "status");
    const value = raw && typeof raw === "object" ? pick(raw, "state", "name", "kind") : raw;
    return typeof value === "string" ? value.toLowerCase().replace(/[_\s]+/g, "-") : "unknown";
  }

  function isRemote(target) {
    const kind = String(pick(target, "kind") || "").toLowerCase();
    if (kind) return kind === "remote" || kind === "url";
    return pick(target, "url") !== undefined && pick(target, "port") === undefined;
  }

  function renderTargets() {
    const targets = listFrom(state.status, "targets", "daemons");
    const tbody = $("targets-table").querySelector("tbody");
    const rows = targets.map(renderTargetRow);
    replaceChildren(tbody, rows);
    $("targets-empty").hidden = !(state.status && targets.length === 0);
    const running = targets.filter((t) => targetState(t) === "running").length;
    $("servers-count").textContent = targets.length ? `${running} of ${targets.length} running` : "";
  }

  function renderTargetRow(target) {
    const name = String(pick(target, "name", "id") || "?");
    const stateName = targetState(target);
    const kind = pick(target, "kind", "type");
    const transport = pick(target, "transport");
    const served = pick(target, "served_as", "serve_transport");
    const sessions = pick(target, "sessions", "session_count", "sessions_count");
    const lastError = pick(target, "last_error", "lastError", "error");
    const logPath = pick(target, "log_path", "logPath", "log");
    const url = pick(target, "url", "endpoint");
    const enabled = pick(target, "enabled");
    const pending = state.pendingActions.has(name);

    const details = [];
    if (lastError) details.push(h("span", { class: "error", title: String(lastError) }, String(lastError)));
    if (url && isRemote(target)) details.push(h("span", { class: "path" }, pathText(url)));
    if (logPath) details.push(h("span", { class: "path", title: "Log file" }, pathText(logPath)));
    if (enabled === false) details.push(h("span", { class: "muted" }, "disabled in config.toml (starts on demand)"));

    let actions;
    if (isRemote(target)) {
      actions = h("span", { class: "muted" }, "not managed here");
    } else {
      const running = RUNNING_STATES.has(stateName);
      actions = [
        actionButton(name, "start", "Start", pending || running),
        actionButton(name, "stop", "Stop", pending || stateName === "stopped"),
        actionButton(name, "restart", "Restart", pending),
      ];
    }

    return h("tr", { dataset: { target: name, state: stateName } },
      h("td", {}, h("span", { class: "name" }, name), kind ? h("span", { class: "kind" }, String(kind)) : null),
      h("td", { class: "state" }, h("span", { class: `badge state-${stateName}` }, stateName)),
      h("td", { class: "nowrap" }, transport ? String(transport) : DASH,
        served && served !== transport ? h("span", { class: "kind" }, `served as ${served}`) : null),
      h("td", { class: "num mono" }, pick(target, "port") ?? DASH),
      h("td", { class: "num mono" }, pick(target, "pid") ?? DASH),
      h("td", { class: "num" }, showNumber(sessions)),
      h("td", { class: "num" }, showNumber(pick(target, "restarts", "restart_count"))),
      h("td", { class: "details" }, details.length ? details : h("span", { class: "muted" }, DASH)),
      h("td", { class: "actions" }, actions));
  }

  function actionButton(name, action, label, disabled) {
    return h("button", {
      type: "button",
      class: `button small${action === "stop" ? " danger" : ""}`,
      disabled,
      dataset: { action },
      "aria-label": `${label} ${name}`,
      onclick: () => runAction(name, action, label),
    }, label);
  }

  async function runAction(name, action, label) {
    state.pendingActions.add(name);
    renderTargets();
    try {
      const result = await api(`/daemons/${encodeURIComponent(name)}/${action}`, { method: "POST" });
      const message = pick(result, "message");
      toast(message ? String(message) : `${label}: ${name} done`, "ok");
    } catch (err) {
      toast(`${label} ${name} failed: ${err.message}`, "bad");
    } finally {
      state.pendingActions.delete(name);
      await refreshStatus();
      refreshSessions();
    }
  }

  function renderSummary() {
    const status = state.status;
    if (!status) return;
    const parts = [];
    const version = pick(status, "version");
    if (version) parts.push(`v${version}`);
    // From started_at when known, so that the line stays true between events.
    const startedAt = asDate(pick(status, "started_at"));
    const uptime = formatDuration(startedAt
      ? Math.max(0, (Date.now() - startedAt.getTime()) / 1000)
      : pick(status, "uptime_secs", "uptime_seconds", "uptime"));
    if (uptime) parts.push(`up ${uptime}`);
    const managerPort = pick(status, "manager.port", "manager_port", "port");
    if (managerPort) parts.push(`manager on 127.0.0.1:${managerPort}`);
    const pid = pick(status, "pid", "manager.pid");
    if (pid) parts.push(`pid ${pid}`);
    $("host-summary").textContent = parts.length ? parts.join(" · ") : "Connected";
    const stateDir = pick(status, "state_dir", "stateDir");
    $("footer-text").textContent = stateDir ? `State dir: ${stateDir}` : "Manager API on this origin";
  }

  // ---------------------------------------------------------------- sessions

  function renderSessions() {
    if (state.sessions === null) return;
    const tbody = $("sessions-table").querySelector("tbody");
    const sessions = state.sessions.slice().sort((a, b) => {
      const ta = asDate(pick(a, "last_seen", "last_seen_at", "lastSeen"));
      const tb = asDate(pick(b, "last_seen", "last_seen_at", "lastSeen"));
      return (tb ? tb.getTime() : 0) - (ta ? ta.getTime() : 0);
    });
    replaceChildren(tbody, sessions.map(renderSessionRow));
    $("sessions-empty").hidden = sessions.length !== 0;
    $("sessions-count").textContent = sessions.length ? String(sessions.length) : "";
  }

  function renderSessionRow(session) {
    const id = String(pick(session, "id", "session_id", "sessionId") || "");
    const clientName = pick(session, "client.name", "client_name", "clientInfo.name", "client_info.name", "client");
    const clientVersion = pick(session, "client.version", "client_version", "clientInfo.version", "client_info.version");
    const project = pick(session, "project", "project_path", "projectPath");
    const protocol = pick(session, "protocol_version", "protocolVersion", "protocol");
    const clientLabel = typeof clientName === "string" ? clientName : "unknown client";
    return h("tr", { dataset: { session: id } },
      h("td", {}, h("span", { class: "name" }, clientLabel),
        clientVersion ? h("span", { class: "kind" }, `v${clientVersion}`) : null),
      h("td", {}, String(pick(session, "target", "daemon", "server") || DASH),
        protocol ? h("span", { class: "kind" }, String(protocol)) : null),
      h("td", {}, project
        ? [h("span", { class: "name" }, baseName(String(project))), h("span", { class: "path muted", title: String(project) }, pathText(project))]
        : h("span", { class: "muted" }, DASH)),
      h("td", {}, timeCell(pick(session, "started", "started_at", "startedAt", "created_at"))),
      h("td", {}, timeCell(pick(session, "last_seen", "last_seen_at", "lastSeen"))),
      h("td", { class: "num" }, showNumber(pick(session, "requests", "request_count", "requests_count"))),
      h("td", { class: "mono muted", title: id }, id ? (id.length > 12 ? `${id.slice(0, 8)}…` : id) : DASH));
  }

  // ---------------------------------------------------------------- memory databases

  function dbId(db) {
    const id = pick(db, "id", "db_id");
    return id === undefined ? undefined : String(id);
  }

  function dbMissing(db) {
    if (pick(db, "missing") === true) return true;
    if (pick(db, "exists") === false) return true;
    const status = pick(db, "state", "status");
    return status === "missing" || status === "gone";
  }

  function dbCount(db, what) {
    const one = { entities: "entity", relations: "relation", observations: "observation" }[what];
    return pick(db, what, `${what}_count`, `counts.${what}`, `${one}_count`, `stats.${what}`);
  }

  function renderDbs() {
    if (state.dbs === null) return;
    const tbody = $("dbs-table").querySelector("tbody");
    replaceChildren(tbody, state.dbs.map(renderDbRow));
    $("dbs-empty").hidden = state.dbs.length !== 0;
    $("dbs-count").textContent = state.dbs.length ? String(state.dbs.length) : "";
  }

  function renderDbRow(db) {
    const id = dbId(db);
    const path = pick(db, "path", "db_path", "file");
    const project = pick(db, "project", "project_path");
    const missing = dbMissing(db);
    const selected = state.graph.db && dbId(state.graph.db) === id;
    const label = project ? baseName(String(project)) : (path ? "user memory" : DASH);
    return h("tr", { class: [missing ? "missing" : "", selected ? "selected" : ""].join(" ").trim() || null, dataset: { db: id || "" } },
      h("td", {},
        h("span", { class: "name" }, label),
        missing ? h("span", { class: "missing-tag", title: "The database file is gone" }, "file missing") : null,
        path ? h("span", { class: "path muted", title: String(path) }, pathText(path)) : null,
        pick(db, "error") ? h("span", { class: "db-error" }, String(pick(db, "error"))) : null),
      h("td", { class: "num", dataset: { count: "entities" } }, showNumber(dbCount(db, "entities"))),
      h("td", { class: "num", dataset: { count: "relations" } }, showNumber(dbCount(db, "relations"))),
      h("td", { class: "num", dataset: { count: "observations" } }, showNumber(dbCount(db, "observations"))),
      h("td", { class: "num" }, missing ? DASH : formatBytes(pick(db, "size_bytes", "size", "bytes"))),
      h("td", {}, timeCell(pick(db, "last_write", "last_write_at", "modified", "mtime", "last_modified"))),
      h("td", { class: "actions" }, h("button", {
        type: "button", class: "button small", disabled: missing || id === undefined,
        "aria-label": `Browse the graph of ${label}`,
        onclick: () => openGraph(db),
      }, "Browse")));
  }

  // ---------------------------------------------------------------- graph browser

  function openGraph(db) {
    state.graph = { db, query: "", offset: 0, total: null, loading: false };
    $("graph").hidden = false;
    $("graph-query").value = "";
    const project = pick(db, "project", "project_path");
    $("graph-title").textContent = `Knowledge graph · ${project ? baseName(String(project)) : "user memory"}`;
    $("graph-path").textContent = String(pick(db, "path", "db_path") || "");
    renderDbs();
    loadGraph();
    $("graph").scrollIntoView({ behavior: "smooth", block: "start" });
    $("graph-query").focus({ preventScroll: true });
  }

  function closeGraph() {
    state.graph = { db: null, query: "", offset: 0, total: null, loading: false };
    $("graph").hidden = true;
    renderDbs();
  }

  async function loadGraph() {
    const graph = state.graph;
    if (!graph.db) return;
    const id = dbId(graph.db);
    const params = new URLSearchParams({ q: graph.query, offset: String(graph.offset), limit: String(GRAPH_PAGE_SIZE) });
    graph.loading = true;
    $("graph-status").textContent = "Loading…";
    try {
      const body = await api(`/memory/dbs/${encodeURIComponent(id)}/graph?${params}`);
      if (state.graph !== graph) return; // another DB or search was opened meanwhile
      renderGraph(body);
    } catch (err) {
      if (state.graph !== graph) return;
      $("graph-status").textContent = `Could not load the graph: ${err.message}`;
      replaceChildren($("graph-entities"));
      replaceChildren($("graph-relations"));
    } finally {
      graph.loading = false;
    }
  }

  function renderGraph(body) {
    const graph = state.graph;
    const entities = listFrom(body, "entities", "nodes");
    const relations = listFrom(body, "relations", "edges");
    const total = asNumber(pick(body, "total", "total_entities", "entities_total", "count"));
    graph.total = total === undefined ? null : total;
    const query = graph.query;

    replaceChildren($("graph-entities"), entities.length
      ? entities.map((e) => renderEntity(e, query))
      : h("p", { class: "empty" }, query ? `No entity matches “${query}”.` : "This graph has no entities yet."));
    replaceChildren($("graph-relations"), relations.length
      ? relations.map((r) => renderRelation(r, query))
      : h("li", { class: "empty muted" }, "No relations on this page."));

    const first = entities.length ? graph.offset + 1 : 0;
    const last = graph.offset + entities.length;
    const of = graph.total !== null ? ` of ${graph.total.toLocaleString()}` : "";
    $("graph-status").textContent = entities.length
      ? `${query ? "Matches" : "Entities"} ${first}–${last}${of}${query ? ` for “${query}”` : ""}`
      : "";
    $("graph-page").textContent = entities.length ? `${first}–${last}${of}` : "";
    $("graph-prev").disabled = graph.offset === 0;
    $("graph-next").disabled = graph.total !== null ? last >= graph.total : entities.length < GRAPH_PAGE_SIZE;
  }

  /** `text` with every case-insensitive occurrence of `query` wrapped in <mark>. */
  function highlight(text, query) {
    const value = String(text);
    if (!query) return value;
    const lower = value.toLowerCase();
    const needle = query.toLowerCase();
    const parts = [];
    let from = 0;
    let index = lower.indexOf(needle, from);
    while (index !== -1 && needle.length > 0) {
      if (index > from) parts.push(value.slice(from, index));
      parts.push(h("mark", {}, value.slice(index, index + needle.length)));
      from = index + needle.length;
      index = lower.indexOf(needle, from);
    }
    parts.push(value.slice(from));
    return parts;
  }

  function renderEntity(entity, query) {
    const name = String(pick(entity, "name") || "?");
    const type = pick(entity, "entityType", "entity_type", "type");
    const observations = listFrom(pick(entity, "observations") || [], "items");
    return h("article", { class: "entity", dataset: { entity: name } },
      h("div", { class: "entity-head" },
        h("span", { class: "entity-name" }, highlight(name, query)),
        type ? h("span", { class: "entity-type" }, highlight(type, query)) : null),
      observations.length
        ? h("ul", {}, observations.map((o) => h("li", {}, highlight(typeof o === "string" ? o : pick(o, "content", "text") ?? JSON.stringify(o), query))))
        : h("p", { class: "none muted" }, "No observations."));
  }

  function renderRelation(relation, query) {
    const from = pick(relation, "from", "from_entity", "source") ?? "?";
    const to = pick(relation, "to", "to_entity", "target") ?? "?";
    const type = pick(relation, "relationType", "relation_type", "type") ?? "related to";
    return h("li", { dataset: { from: String(from), to: String(to) } },
      entityLink(from, query),
      h("span", { class: "rel-type" }, String(type)),
      entityLink(to, query));
  }

  /** An entity name that searches for itself when clicked (to walk the graph). */
  function entityLink(name, query) {
    return h("button", {
      type: "button", class: "entity-link", title: `Search for ${name}`,
      onclick: () => searchGraph(String(name)),
    }, highlight(name, query));
  }

  function searchGraph(query) {
    $("graph-query").value = query;
    state.graph.query = query;
    state.graph.offset = 0;
    loadGraph();
  }

  // ---------------------------------------------------------------- Configure Claude Code

  function renderDiff(diff) {
    const pre = $("config-diff");
    const lines = String(diff || "").replace(/\n$/, "").split("\n");
    replaceChildren(pre, diff ? lines.map((line) => {
      let cls = null;
      if (line.startsWith("+++") || line.startsWith("---")) cls = "meta";
      else if (line.startsWith("@@")) cls = "hunk";
      else if (line.startsWith("+")) cls = "add";
      else if (line.startsWith("-")) cls = "del";
      return h("span", { class: cls }, line || " ");
    }) : []);
  }

  function describeResult(result, dryRun) {
    const parts = [];
    const path = pick(result, "path", "file", "config_path");
    const message = pick(result, "message", "summary");
    if (message) parts.push(String(message));
    else if (path) parts.push(`${dryRun ? "Would update" : "Updated"} ${path}.`);
    let skipped = listFrom(pick(result, "skipped") || [], "entries");
    if (skipped.length === 0) {
      // Without a `skipped` list, read the per-entry outcomes.
      skipped = listFrom(pick(result, "entries") || [], "items")
        .filter((e) => e && typeof e === "object" && /skipped/i.test(String(pick(e, "outcome", "status", "kind") || "")));
    }
    if (skipped.length) {
      parts.push(`Skipped: ${skipped.map((s) => (typeof s === "string" ? s : `${pick(s, "name") || "?"} (${pick(s, "reason") || "not ours"})`)).join(", ")}.`);
    }
    const backup = pick(result, "backup", "backup_path");
    if (backup && !dryRun) parts.push(`Backup: ${backup}.`);
    return parts.join(" ");
  }

  function hasChanges(result) {
    const changed = pick(result, "changed", "would_change", "changes");
    if (typeof changed === "boolean") return changed;
    if (Array.isArray(changed)) return changed.length > 0;
    return Boolean(pick(result, "diff"));
  }

  async function openConfigDialog() {
    const dialog = $("config-dialog");
    const summary = $("config-summary");
    const apply = $("config-apply");
    summary.className = "muted";
    summary.textContent = "Working out what would change in Claude Code's config…";
    renderDiff("");
    apply.disabled = true;
    apply.textContent = "Write config";
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    try {
      const result = await api("/config/generate", { method: "POST", body: { client: "claude-code", dry_run: true } });
      const diff = pick(result, "diff");
      renderDiff(diff);
      if (hasChanges(result)) {
        summary.textContent = describeResult(result, true) || "These changes would be written:";
        apply.disabled = false;
      } else {
        summary.className = "result-ok";
        summary.textContent = `Claude Code is already configured. ${describeResult(result, true)}`.trim();
      }
    } catch (err) {
      summary.className = "result-bad";
      summary.textContent = `Could not prepare the config: ${err.message}`;
    }
  }

  async function applyConfig() {
    const summary = $("config-summary");
    const apply = $("config-apply");
    apply.disabled = true;
    apply.textContent = "Writing…";
    try {
      const result = await api("/config/generate", { method: "POST", body: { client: "claude-code", dry_run: false } });
      summary.className = "result-ok";
      // The host's message already says what to do next (restart Claude Code, `claude mcp list`).
      summary.textContent = describeResult(result, false) || "Config written.";
      apply.textContent = "Written";
      toast("Claude Code config written", "ok");
    } catch (err) {
      summary.className = "result-bad";
      summary.textContent = `Writing the config failed: ${err.message}`;
      apply.textContent = "Write config";
      apply.disabled = false;
    }
  }

  // ---------------------------------------------------------------- toasts

  function toast(message, kind) {
    const el = h("div", { class: `toast ${kind || ""}`, role: kind === "bad" ? "alert" : "status" }, message);
    $("toasts").append(el);
    setTimeout(() => el.remove(), kind === "bad" ? 8000 : 4000);
  }

  // ---------------------------------------------------------------- refreshing

  async function refreshStatus() {
    try {
      state.status = await api("/status");
      renderSummary();
      renderTargets();
      document.body.dataset.loaded = "true";
      return true;
    } catch (_) {
      return false;
    }
  }

  /** Shows (or clears) why a section could not be loaded, e.g. a feature missing in this build. */
  function sectionError(id, err) {
    const el = $(id);
    if (!err || err.status === 0 || err.status === 401) {
      el.hidden = true; // unreachable or unauthorised: the banner says why
      return;
    }
    el.textContent = err.message;
    el.hidden = false;
  }

  async function refreshSessions() {
    try {
      state.sessions = listFrom(await api("/sessions"), "sessions", "items");
      sectionError("sessions-error", null);
      renderSessions();
    } catch (err) {
      sectionError("sessions-error", err);
    }
  }

  async function refreshDbs(force) {
    const now = Date.now();
    if (!force && now - state.lastDbsRefresh < DBS_MIN_REFRESH_MS) return;
    state.lastDbsRefresh = now;
    try {
      state.dbs = listFrom(await api("/memory/dbs"), "dbs", "databases", "items");
      sectionError("dbs-error", null);
      renderDbs();
    } catch (err) {
      sectionError("dbs-error", err);
    }
  }

  async function refreshAll() {
    const ok = await refreshStatus();
    if (ok) await Promise.all([refreshSessions(), refreshDbs(true)]);
  }

  let eventRefreshTimer = null;
  function scheduleEventRefresh(kind) {
    if (eventRefreshTimer) return;
    eventRefreshTimer = setTimeout(async () => {
      eventRefreshTimer = null;
      await refreshStatus();
      await refreshSessions();
      await refreshDbs(/memory|db|graph|write/i.test(kind || ""));
    }, 150);
  }

  // ---------------------------------------------------------------- live updates

  let pollTimer = null;
  let sseRetryTimer = null;

  function startPolling() {
    if (state.mode !== "offline") setMode("polling");
    if (pollTimer) return;
    let tick = 0;
    pollTimer = setInterval(async () => {
      tick += 1;
      const ok = await refreshStatus();
      if (ok) {
        await refreshSessions();
        if (tick % 3 === 0) await refreshDbs(true);
      }
    }, POLL_INTERVAL_MS);
    if (!sseRetryTimer) sseRetryTimer = setTimeout(() => { sseRetryTimer = null; connectEvents(); }, SSE_RETRY_MS);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  /** Parses one SSE block ("event: x\ndata: y") and hands it on. */
  function dispatchEventBlock(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (data.length === 0 && type === "message") return;
    let payload = data.join("\n");
    try { payload = JSON.parse(payload); } catch (_) { /* keep the text */ }
    if (payload && typeof payload === "object" && Array.isArray(payload.targets)) {
      state.status = payload;
      renderSummary();
      renderTargets();
    }
    // A memory DB lost its file while in use (deleted, replaced): say so until dismissed.
    if (payload && payload.type === "memory-db-reopened") showNotice(payload.message, true);
    const kind = `${type} ${payload && typeof payload === "object" ? pick(payload, "type", "kind", "event") || "" : ""}`;
    scheduleEventRefresh(kind);
  }

  async function connectEvents() {
    let response;
    try {
      response = await fetch("/events", {
        headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
        cache: "no-store",
      });
    } catch (_) {
      startPolling();
      return;
    }
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !response.body || !type.includes("text/event-stream")) {
      if (response.status === 401) setReachable(false, "The manager refused this page's token. Open the dashboard again from the tray menu, or reload the page.", "Not authorised");
      startPolling();
      return;
    }
    stopPolling();
    setReachable(true);
    setMode("live");
    refreshAll();
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end = buffer.indexOf("\n\n");
        while (end !== -1) {
          dispatchEventBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
        }
      }
    } catch (_) { /* the stream broke: fall back below */ }
    // The stream ended (host restarted or handed over): poll until it is back.
    startPolling();
    refreshAll();
  }

  // ---------------------------------------------------------------- notices from the tray

  /** The tray app opens the dashboard at `#notice=<text>` to report what a menu click did. */
  function showNoticeFromHash() {
    const match = /^#notice=(.*)$/s.exec(window.location.hash);
    if (!match) return;
    let text = match[1];
    try { text = decodeURIComponent(text); } catch (_) { /* show it as it came */ }
    history.replaceState(null, "", window.location.pathname + window.location.search);
    showNotice(text, /fail|could not|error/i.test(text));
  }

  function showNotice(text, bad) {
    const notice = $("notice");
    notice.className = `notice ${bad ? "bad" : "ok"}`;
    $("notice-text").textContent = text;
    notice.hidden = false;
  }

  // ---------------------------------------------------------------- start

  function init() {
    $("banner-retry").addEventListener("click", () => { refreshAll(); connectEvents(); });
    $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
    window.addEventListener("hashchange", showNoticeFromHash);
    showNoticeFromHash();
    $("configure-claude").addEventListener("click", openConfigDialog);
    $("config-apply").addEventListener("click", applyConfig);
    $("graph-close").addEventListener("click", closeGraph);
    $("graph-search").addEventListener("submit", (event) => {
      event.preventDefault();
      searchGraph($("graph-query").value.trim());
    });
    $("graph-prev").addEventListener("click", () => {
      state.graph.offset = Math.max(0, state.graph.offset - GRAPH_PAGE_SIZE);
      loadGraph();
    });
    $("graph-next").addEventListener("click", () => {
      state.graph.offset += GRAPH_PAGE_SIZE;
      loadGraph();
    });
    // Relative times ("12 s ago") stay true without a refresh.
    // While live, events say when states change, but not every request: a slow refresh keeps
    // request counts, "last seen" and DB sizes current.
    setInterval(() => {
      if (state.mode === "live") refreshAll();
      else { renderSummary(); renderSessions(); renderDbs(); }
    }, 10000);

    if (!token) {
      setReachable(false, "This page has no API token. Open it from the tray menu (\"Open dashboard\") or at the Dashboard address that `mcp-session-manager status` prints.", "No API token");
      return;
    }
    refreshAll().then(connectEvents);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
