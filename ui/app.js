// MCP Session Manager web UI: vanilla JS, same-origin calls to the manager API. The page
// holds no token: the browser sends the HttpOnly cookie the manager set when the dashboard was
// opened with ?token=, and no script can read it. Live updates come from the SSE stream at
// /events; when the stream is unavailable the page polls /status every 2 s.
//
// The answers are exactly the types of msm_host::api_types (docs/manager-api.json has one
// example per route, generated from them): fields are read by their one name; an optional
// field is null, shown as "—".
"use strict";

(function () {
  const POLL_INTERVAL_MS = 2000;
  const SSE_RETRY_MS = 15000;
  const GRAPH_PAGE_SIZE = 20;
  const DBS_MIN_REFRESH_MS = 3000;

  const LOG_FOLLOW_MS = 1000;

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
    log: null, // { name, to, timer } while the log viewer is open
    adopt: null, // GET /api/adopt's answer; undefined when this host has no adopt routes
    adoptPending: null, // the request a shown dry-run diff would apply
    noTray: false,
    tools: null, // { target, offer, tool } of the Tools page
    clients: null, // GET /config/clients's answer
    configRequest: { client: "claude-code", remove: false, name: "Claude Code" }, // the dialog's
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

  // ---------------------------------------------------------------- values

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

  /** The message of an ErrorBody ({"error": "..."}), or the start of a body that is not one. */
  function errorText(body, fallback) {
    if (body && typeof body === "object" && typeof body.error === "string") return body.error;
    if (typeof body === "string" && body.trim() !== "") return body.trim().slice(0, 400);
    return fallback;
  }

  async function api(path, options = {}) {
    // The cookie goes along by itself (same origin); POSTs carry Origin, which the guard wants.
    const headers = { Accept: "application/json" };
    const init = { method: options.method || "GET", headers, cache: "no-store", credentials: "same-origin" };
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
      setReachable(false, "The manager did not accept this page's cookie (its token changed, or the cookie is gone). Open the dashboard again from the tray menu, or at the Dashboard address `mcp-session-manager status` prints.", "Not authorised");
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

  /** The state to show: a remote target is reachable or unreachable (its last probe). */
  function targetState(target) {
    if (target.kind === "remote" && target.reachable !== null) return target.reachable ? "reachable" : "unreachable";
    return target.state;
  }

  const isUp = (target) => ["running", "starting", "idle"].includes(target.state);
  /** A remote that clients reach directly; one with a port is fronted (and managed) by the host. */
  const reachedOnly = (target) => target.kind === "remote" && target.port === null;

  function renderTargets() {
    const targets = state.status ? state.status.targets : [];
    renderToolsTargets(targets);
    const tbody = $("targets-table").querySelector("tbody");
    replaceChildren(tbody, targets.map(renderTargetRow));
    $("targets-empty").hidden = !(state.status && targets.length === 0);
    const running = targets.filter((t) => t.state === "running").length;
    $("servers-count").textContent = targets.length ? `${running} of ${targets.length} running` : "";
    const managed = targets.filter((t) => !reachedOnly(t) && t.needs === null);
    $("start-all").disabled = !managed.some((t) => !isUp(t)) || state.pendingActions.size > 0;
    $("stop-all").disabled = !managed.some((t) => t.state !== "stopped") || state.pendingActions.size > 0;
  }

  function renderTargetRow(target) {
    const name = target.name;
    const stateName = targetState(target);
    const pending = state.pendingActions.has(name);
    const remote = reachedOnly(target);
    const details = [];
    if (target.last_error) details.push(h("span", { class: "error", title: target.last_error }, target.last_error));
    if (remote) details.push(h("span", { class: "path" }, pathText(target.url)));
    if (target.started_at && target.state === "running") details.push(h("span", { class: "muted" }, "up since ", timeCell(target.started_at)));
    if (target.needs) details.push(h("span", { class: "error needs" }, `needs ${target.needs}`,
      h("span", { class: "muted" }, ` (not installed: install it, then start ${name})`)));
    if (target.rss_bytes !== null) {
      const cpu = target.cpu_percent === null ? "" : `${target.cpu_percent.toFixed(1)} % CPU · `;
      details.push(h("span", { class: "muted usage" }, `${cpu}${formatBytes(target.rss_bytes)}`));
    }
    if (!target.enabled) details.push(h("span", { class: "muted" }, "disabled in config.toml (starts on demand)"));

    let actions;
    if (remote) {
      actions = h("span", { class: "muted" }, "not managed here");
    } else {
      actions = [
        actionButton(name, "start", "Start", pending || isUp(target) || target.needs !== null),
        actionButton(name, "stop", "Stop", pending || target.state === "stopped"),
        actionButton(name, "restart", "Restart", pending),
        target.log_path ? h("button", {
          type: "button", class: "button small ghost", dataset: { action: "log" },
          "aria-label": `Show the log of ${name}`, onclick: () => openLog(name),
        }, "Log") : null,
      ];
    }
    const served = target.transport === "stdio" ? "streamable-http" : null;
    return h("tr", { dataset: { target: name, state: stateName } },
      h("td", {}, h("span", { class: "name" }, name), h("span", { class: "kind" }, target.kind)),
      h("td", { class: "state" }, h("span", { class: `badge state-${stateName}` },
        stateName === "idle" ? "idle (starts on demand)" : stateName)),
      h("td", { class: "nowrap" }, target.transport,
        served ? h("span", { class: "kind" }, `served as ${served}`) : null),
      h("td", { class: "num mono" }, target.port ?? DASH),
      h("td", { class: "num mono" }, target.pid ?? DASH),
      h("td", { class: "num" }, showNumber(target.sessions)),
      h("td", { class: "num" }, showNumber(target.restarts)),
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
      toast(`${label} ${name}: ${result.state}`, "ok");
    } catch (err) {
      toast(`${label} ${name} failed: ${err.message}`, "bad");
    } finally {
      state.pendingActions.delete(name);
      await refreshStatus();
      refreshSessions();
    }
  }

  /** Start all / Stop all: every target this host runs, one after the other. */
  async function runAll(action, label) {
    const targets = (state.status ? state.status.targets : []).filter((t) => t.kind !== "remote" && t.needs === null
      && (action === "start" ? !isUp(t) : t.state !== "stopped"));
    for (const t of targets) state.pendingActions.add(t.name);
    renderTargets();
    const failed = [];
    for (const t of targets) {
      try {
        await api(`/daemons/${encodeURIComponent(t.name)}/${action}`, { method: "POST" });
      } catch (err) {
        failed.push(`${t.name}: ${err.message}`);
      } finally {
        state.pendingActions.delete(t.name);
      }
    }
    toast(failed.length ? `${label} failed for ${failed.join("; ")}` : `${label}: done`, failed.length ? "bad" : "ok");
    await refreshStatus();
    refreshSessions();
  }

  function renderSummary() {
    const status = state.status;
    if (!status) return;
    // From started_at, so that the line stays true between events.
    const startedAt = asDate(status.started_at);
    const uptime = formatDuration(startedAt ? Math.max(0, (Date.now() - startedAt.getTime()) / 1000) : status.uptime_secs);
    $("host-summary").textContent = [`v${status.version}`, `up ${uptime}`,
      `manager on 127.0.0.1:${status.manager_port}`, `pid ${status.pid}`].join(" · ");
    $("footer-text").textContent = `State dir: ${status.state_dir}`;
  }

  // ---------------------------------------------------------------- sessions

  function renderSessions() {
    if (state.sessions === null) return;
    const tbody = $("sessions-table").querySelector("tbody");
    const sessions = state.sessions.slice().sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen));
    replaceChildren(tbody, sessions.map(renderSessionRow));
    $("sessions-empty").hidden = sessions.length !== 0;
    $("sessions-count").textContent = sessions.length ? String(sessions.length) : "";
  }

  function renderSessionRow(session) {
    const id = session.id;
    const project = session.project_path;
    return h("tr", { dataset: { session: id } },
      h("td", {}, h("span", { class: "name" }, session.client_name ?? "unknown client"),
        session.client_version ? h("span", { class: "kind" }, `v${session.client_version}`) : null),
      h("td", {}, session.target,
        session.protocol_version ? h("span", { class: "kind" }, session.protocol_version) : null),
      h("td", {}, project
        ? [h("span", { class: "name" }, baseName(project)), h("span", { class: "path muted", title: project }, pathText(project))]
        : h("span", { class: "muted" }, DASH)),
      h("td", {}, timeCell(session.started_at)),
      h("td", {}, timeCell(session.last_seen)),
      h("td", { class: "num" }, showNumber(session.requests)),
      // The full id on hover, and selectable for copying.
      h("td", { class: "mono muted" }, h("span", { title: id, class: "session-id" }, id.length > 12 ? `${id.slice(0, 8)}…` : id),
        h("button", {
          type: "button", class: "button small ghost", "aria-label": `Copy session id ${id}`,
          onclick: () => navigator.clipboard && navigator.clipboard.writeText(id).then(() => toast("Session id copied", "ok")),
        }, "Copy"),
        h("button", {
          type: "button", class: "button small ghost danger", "aria-label": `End session ${id}`,
          onclick: () => endSession(session),
        }, "End")));
  }

  /** Ends a session now (its client's next request starts a new one). */
  async function endSession(session) {
    if (!window.confirm(`End this ${session.client_name ?? "client"} session of ${session.target}? Its next request starts a new session.`)) return;
    try {
      await api(`/sessions/${encodeURIComponent(session.target)}/${encodeURIComponent(session.id)}/end`, { method: "POST" });
      toast(`Session of ${session.target} ended`, "ok");
      refreshSessions();
    } catch (err) {
      toast(`Could not end the session: ${err.message}`, "bad");
    }
  }

  // ---------------------------------------------------------------- memory databases

  function renderDbs() {
    if (state.dbs === null) return;
    const tbody = $("dbs-table").querySelector("tbody");
    replaceChildren(tbody, state.dbs.map(renderDbRow));
    $("dbs-empty").hidden = state.dbs.length !== 0;
    $("dbs-count").textContent = state.dbs.length ? String(state.dbs.length) : "";
  }

  function dbLabel(db) {
    return db.project ? baseName(db.project) : "user memory";
  }

  function renderDbRow(db) {
    const missing = !db.exists;
    const selected = state.graph.db && state.graph.db.id === db.id;
    const label = dbLabel(db);
    return h("tr", { class: [missing ? "missing" : "", selected ? "selected" : ""].join(" ").trim() || null, dataset: { db: db.id } },
      h("td", {},
        h("span", { class: "name" }, label),
        missing ? h("span", { class: "missing-tag", title: "The database file is gone" }, "file missing") : null,
        h("span", { class: "path muted", title: db.path }, pathText(db.path)),
        db.error ? h("span", { class: "db-error" }, db.error) : null),
      h("td", { class: "num", dataset: { count: "entities" } }, showNumber(db.entities)),
      h("td", { class: "num", dataset: { count: "relations" } }, showNumber(db.relations)),
      h("td", { class: "num", dataset: { count: "observations" } }, showNumber(db.observations)),
      h("td", { class: "num" }, missing ? DASH : formatBytes(db.size_bytes)),
      h("td", {}, timeCell(db.last_write)),
      h("td", { class: "actions" }, h("button", {
        type: "button", class: "button small", disabled: missing,
        "aria-label": `Browse the graph of ${label}`,
        onclick: () => openGraph(db),
      }, "Browse")));
  }

  // ---------------------------------------------------------------- graph browser

  function openGraph(db) {
    state.graph = { db, query: "", offset: 0, total: null, loading: false };
    $("graph").hidden = false;
    $("graph-query").value = "";
    $("graph-title").textContent = `Knowledge graph · ${dbLabel(db)}`;
    $("graph-path").textContent = db.path;
    const exportUrl = (format) => `/memory/dbs/${encodeURIComponent(db.id)}/export?format=${format}`;
    $("graph-export-json").href = exportUrl("json");
    $("graph-export-json").setAttribute("aria-label", `Export JSON of the graph of ${dbLabel(db)}`);
    $("graph-export-jsonl").href = exportUrl("jsonl");
    $("graph-export-jsonl").setAttribute("aria-label", `Export JSONL of the graph of ${dbLabel(db)} (the reference server's format)`);
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
    const id = graph.db.id;
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
    const { entities, relations } = body;
    graph.total = body.total;
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
    return h("article", { class: "entity", dataset: { entity: entity.name } },
      h("div", { class: "entity-head" },
        h("span", { class: "entity-name" }, highlight(entity.name, query)),
        h("span", { class: "entity-type" }, highlight(entity.entityType, query)),
        h("button", {
          type: "button", class: "button small ghost entity-delete", "aria-label": `Delete ${entity.name}`,
          onclick: () => deleteEntity(entity.name),
        }, "Delete")),
      entity.observations.length
        ? h("ul", {}, entity.observations.map((o) => h("li", {}, highlight(o, query))))
        : h("p", { class: "none muted" }, "No observations."));
  }

  /** Deletes one entity (with its observations and relations) after the user confirms. */
  async function deleteEntity(name) {
    const db = state.graph.db;
    if (!db || !window.confirm(`Delete “${name}” with its observations and relations from ${dbLabel(db)}?`)) return;
    try {
      await api(`/memory/dbs/${encodeURIComponent(db.id)}/entities/delete`, { method: "POST", body: { names: [name] } });
      toast(`Deleted ${name}`, "ok");
      loadGraph();
      refreshDbs();
    } catch (err) {
      toast(`Could not delete ${name}: ${err.message}`, "bad");
    }
  }

  function renderRelation(relation, query) {
    return h("li", { dataset: { from: relation.from, to: relation.to } },
      entityLink(relation.from, query),
      h("span", { class: "rel-type" }, relation.relationType),
      entityLink(relation.to, query));
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
    renderDiffInto($("config-diff"), diff);
  }

  function renderDiffInto(pre, diff) {
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

  /** A Generate answer in words: the host's message (it says what to do next), skipped entries. */
  function describeResult(result) {
    const parts = [result.message.trim()];
    if (result.skipped.length) {
      parts.push(`Skipped: ${result.skipped.map((s) => `${s.name} (${s.reason})`).join(", ")}.`);
    }
    return parts.join(" ");
  }

  /** The diff first, then Write (or Remove): for Claude Code by default, or any client. */
  async function openConfigDialog(request = { client: "claude-code", remove: false, name: "Claude Code" }) {
    state.configRequest = request;
    const dialog = $("config-dialog");
    const summary = $("config-summary");
    const apply = $("config-apply");
    const verb = request.remove ? "Remove our entries" : "Write config";
    $("config-title").textContent = request.remove ? `Remove our entries from ${request.name}` : `Configure ${request.name}`;
    summary.className = "muted";
    summary.textContent = `Working out what would change in ${request.name}'s config…`;
    renderDiff("");
    apply.disabled = true;
    apply.textContent = verb;
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    try {
      const result = await api("/config/generate",
        { method: "POST", body: { client: request.client, remove: request.remove, dry_run: true } });
      renderDiff(result.diff);
      if (result.changed) {
        summary.textContent = describeResult(result);
        apply.disabled = false;
      } else {
        summary.className = "result-ok";
        const already = request.remove ? `${request.name} has none of our entries.` : `${request.name} is already configured.`;
        summary.textContent = `${already} ${describeResult(result)}`.trim();
      }
    } catch (err) {
      summary.className = "result-bad";
      summary.textContent = `Could not prepare the config: ${err.message}`;
    }
  }

  async function applyConfig() {
    const summary = $("config-summary");
    const apply = $("config-apply");
    const request = state.configRequest;
    apply.disabled = true;
    apply.textContent = "Writing…";
    try {
      const result = await api("/config/generate",
        { method: "POST", body: { client: request.client, remove: request.remove, dry_run: false } });
      summary.className = "result-ok";
      // The host's message already says what to do next (restart Claude Code, `claude mcp list`).
      summary.textContent = describeResult(result);
      apply.textContent = "Written";
      toast(`${request.name} config written`, "ok");
      refreshClients();
    } catch (err) {
      summary.className = "result-bad";
      summary.textContent = `Writing the config failed: ${err.message}`;
      apply.textContent = request.remove ? "Remove our entries" : "Write config";
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
      state.sessions = (await api("/sessions")).sessions;
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
      state.dbs = (await api("/memory/dbs")).dbs;
      sectionError("dbs-error", null);
      renderDbs();
    } catch (err) {
      sectionError("dbs-error", err);
    }
  }

  /** Status, sessions and DBs in parallel: the first paint waits for the slowest, not the sum. */
  async function refreshAll() {
    await Promise.all([refreshStatus(), refreshSessions(), refreshDbs(true)]);
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
    let payload;
    try { payload = JSON.parse(data.join("\n")); } catch (_) { return; }
    // `status`: a Status; `change`: an Event ({"type": ...}).
    if (type === "status") {
      state.status = payload;
      renderSummary();
      renderTargets();
    }
    // A memory DB lost its file while in use (deleted, replaced): say so until dismissed.
    if (type === "change" && payload.type === "memory-db-reopened") showNotice(payload.message, true);
    scheduleEventRefresh(`${type} ${payload.type || ""}`);
  }

  async function connectEvents() {
    let response;
    try {
      response = await fetch("/events", {
        headers: { Accept: "text/event-stream" },
        cache: "no-store",
        credentials: "same-origin",
      });
    } catch (_) {
      startPolling();
      return;
    }
    const type = response.headers.get("content-type") || "";
    if (!response.ok || !response.body || !type.includes("text/event-stream")) {
      if (response.status === 401) setReachable(false, "The manager did not accept this page's cookie. Open the dashboard again from the tray menu, or at the Dashboard address `mcp-session-manager status` prints.", "Not authorised");
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

  // ---------------------------------------------------------------- links from the tray

  /**
   * The tray opens the dashboard at a fragment: `#notice=TEXT` (what a menu click did),
   * `#log=NAME` (a target's log), `#configure-claude` (the config dialog, diff first),
   * `#servers-adopt` (the adopt section), `#no-tray=REASON` (window-only mode).
   */
  function followHash() {
    const hash = window.location.hash;
    const value = (prefix) => {
      if (!hash.startsWith(prefix)) return null;
      try { return decodeURIComponent(hash.slice(prefix.length)); } catch (_) { return hash.slice(prefix.length); }
    };
    const clear = () => history.replaceState(null, "", window.location.pathname + window.location.search);
    const notice = value("#notice=");
    const log = value("#log=");
    const noTray = value("#no-tray=");
    if (notice !== null) { clear(); showNotice(notice, /fail|could not|error/i.test(notice)); }
    else if (log !== null) { clear(); openLog(log); }
    else if (noTray !== null) {
      clear();
      state.noTray = true;
      $("no-tray-text").textContent = noTray;
      $("no-tray").hidden = false;
    } else if (hash === "#configure-claude") { clear(); openConfigDialog(); }
    else if (hash === "#servers-adopt") {
      refreshAdopt();
      $("servers-adopt").scrollIntoView({ block: "start" });
      $("adopt-title").focus({ preventScroll: true });
    }
  }

  async function quitApp() {
    if (!window.confirm("Quit MCP Session Manager? Every server it runs stops.")) return;
    try {
      await api("/shutdown", { method: "POST" });
      showNotice("Quitting: the servers are stopping. You can close this window.", false);
    } catch (err) {
      toast(`Quit failed: ${err.message}`, "bad");
    }
  }

  // ---------------------------------------------------------------- log viewer

  /** Shows a target's log: its tail, then (while Follow is on) what is appended, every second. */
  async function openLog(name) {
    closeLog();
    const log = { name, to: null, timer: null };
    state.log = log;
    $("log").hidden = false;
    $("log-title").textContent = `Log · ${name}`;
    $("log-path").textContent = "";
    $("log-text").textContent = "";
    $("log").scrollIntoView({ block: "start" });
    $("log-title").focus({ preventScroll: true });
    await pollLog(log);
  }

  async function pollLog(log) {
    if (state.log !== log) return;
    try {
      const query = log.to === null ? "" : `?from=${log.to}`;
      const chunk = await api(`/daemons/${encodeURIComponent(log.name)}/log${query}`);
      if (state.log !== log) return;
      const pre = $("log-text");
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      if (chunk.reset) pre.textContent = "";
      if (chunk.text) pre.append(chunk.text);
      $("log-path").textContent = chunk.path;
      log.to = chunk.to;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      // More is waiting: ask again at once.
      if (chunk.to < chunk.size) return pollLog(log);
    } catch (err) {
      if (state.log === log) $("log-path").textContent = `Could not read the log: ${err.message}`;
    }
    if (state.log === log && $("log-follow").checked) log.timer = setTimeout(() => pollLog(log), LOG_FOLLOW_MS);
  }

  function closeLog() {
    if (state.log && state.log.timer) clearTimeout(state.log.timer);
    state.log = null;
    $("log").hidden = true;
  }

  // ---------------------------------------------------------------- adopt

  /** GET /api/adopt: the servers Claude Code starts itself. A host without it: section hidden. */
  async function refreshAdopt() {
    try {
      state.adopt = await api("/api/adopt");
      sectionError("adopt-error", null);
    } catch (err) {
      if (err.status === 404) {
        state.adopt = undefined;
        $("servers-adopt").hidden = true;
        return;
      }
      sectionError("adopt-error", err);
      return;
    }
    $("servers-adopt").hidden = false;
    renderAdopt();
  }

  function renderAdopt() {
    if (!state.adopt) return;
    const servers = state.adopt.servers;
    replaceChildren($("adopt-table").querySelector("tbody"), servers.map((server) => {
      const remote = server.transport !== "stdio";
      const runs = remote ? server.url : [server.command, ...server.args].join(" ");
      // A remote entry is left unless asked: then the host fronts it, shared by every window.
      const modes = remote ? ["leave", "shared"] : ["shared", "per-project", "per-session"];
      const choosable = !server.adopted && !server.through_proxy && !server.problem
        && (remote || server.proposal.share !== "leave");
      return h("tr", { dataset: { adopt: server.name } },
        h("td", {}, h("span", { class: "name" }, server.name), h("span", { class: "kind" }, server.transport)),
        h("td", {}, h("span", { class: "path muted", title: server.file }, pathText(server.file)),
          h("span", { class: "kind" }, server.project ? `${server.scope} · ${baseName(server.project)}` : server.scope)),
        h("td", { class: "mono" }, runs ?? DASH,
          server.env_names.length ? h("span", { class: "kind" }, `env: ${server.env_names.join(", ")}`) : null,
          server.header_names?.length ? h("span", { class: "kind" }, `headers: ${server.header_names.join(", ")}`) : null),
        h("td", {}, !choosable
          ? h("span", { class: "name" }, server.proposal.share)
          : h("select", {
            "aria-label": `How to host ${server.name}`, dataset: { hosting: server.name },
            onchange: remote ? () => renderAdopt() : null,
          }, ...modes.map((mode) => h("option",
            { value: mode, selected: mode === (chosenHosting(server) ?? server.proposal.share) }, mode))),
        h("span", { class: "kind" }, server.proposal.reason)),
        h("td", {}, server.adopted ? "adopted" : (server.through_proxy ? "through the proxy" : "started by Claude Code")),
        h("td", { class: "actions" }, server.adopted
          ? h("button", { type: "button", class: "button small", "aria-label": `Undo adopting ${server.name}`,
            onclick: () => previewAdopt("/api/adopt/undo", { names: [server.name], all: false }) }, "Undo")
          : h("button", { type: "button", class: "button small primary", disabled: chosenHosting(server) === "leave",
            "aria-label": `Adopt ${server.name}`,
            onclick: () => previewAdopt("/api/adopt", {
              names: [server.name], all: false, project: server.project,
              share: { [server.name]: chosenHosting(server) },
            }) }, "Adopt")));
    }));
    $("adopt-empty").hidden = servers.length !== 0;
  }

  /** The hosting picked in the row's select (the proposal until someone changes it). */
  function chosenHosting(server) {
    const select = document.querySelector(`select[data-hosting="${CSS.escape(server.name)}"]`);
    return select ? select.value : server.proposal.share;
  }

  /** Every server that can be adopted, each hosted as its row says. */
  function adoptAll() {
    const share = {};
    for (const server of state.adopt?.servers ?? []) {
      if (!server.adopted && !server.through_proxy && chosenHosting(server) !== "leave") {
        share[server.name] = chosenHosting(server);
      }
    }
    previewAdopt("/api/adopt", { names: [], all: true, share });
  }

  /** A dry run first: its diff is shown, Apply sends the same request for real. */
  async function previewAdopt(path, body) {
    try {
      const result = await api(path, { method: "POST", body: { ...body, dry_run: true } });
      const diff = result.diffs.map((d) => d.diff).join("\n");
      const pre = $("adopt-diff");
      renderDiffInto(pre, diff || "(no change to any file)");
      pre.hidden = false;
      $("adopt-confirm").hidden = false;
      state.adoptPending = { path, body };
      if (result.skipped.length) toast(`Skipped: ${result.skipped.map((s) => `${s.name} (${s.reason})`).join(", ")}`, "bad");
      pre.focus();
    } catch (err) {
      toast(`Could not prepare the change: ${err.message}`, "bad");
    }
  }

  async function applyAdopt() {
    const pending = state.adoptPending;
    if (!pending) return;
    try {
      const result = await api(pending.path, { method: "POST", body: { ...pending.body, dry_run: false } });
      const done = pending.path.endsWith("undo") ? result.undone : result.adopted.map((a) => a.name);
      toast(`${pending.path.endsWith("undo") ? "Undone" : "Adopted"}: ${done.join(", ") || "nothing"}`, "ok");
    } catch (err) {
      toast(`The change failed: ${err.message}`, "bad");
    }
    cancelAdopt();
    await refreshAdopt();
    await refreshStatus();
  }

  function cancelAdopt() {
    state.adoptPending = null;
    $("adopt-diff").hidden = true;
    $("adopt-confirm").hidden = true;
  }

  function showNotice(text, bad) {
    const notice = $("notice");
    notice.className = `notice ${bad ? "bad" : "ok"}`;
    $("notice-text").textContent = text;
    notice.hidden = false;
  }

  // ---------------------------------------------------------------- clients

  async function refreshClients() {
    try {
      state.clients = (await api("/config/clients")).clients;
      $("clients-error").hidden = true;
      renderClients();
    } catch (err) {
      $("clients-error").textContent = `Could not read the client files: ${err.message}`;
      $("clients-error").hidden = false;
    }
  }

  function renderClients() {
    const clients = state.clients ?? [];
    $("clients-count").textContent = clients.length ? String(clients.length) : "";
    replaceChildren($("clients-table").querySelector("tbody"), ...clients.map((c) => {
      const label = `${c.name} (${c.client})`;
      return h("tr", { dataset: { client: c.client } },
        h("td", {}, h("span", { class: "name" }, c.name), h("span", { class: "kind" }, c.client)),
        h("td", {}, h("span", { class: "path", title: c.file }, pathText(c.file)),
          c.exists ? null : h("span", { class: "kind" }, "not there yet"),
          c.error ? h("span", { class: "error" }, c.error) : null),
        h("td", {}, c.ours.length ? c.ours.join(", ") : h("span", { class: "muted" }, "none")),
        h("td", { class: "actions" },
          h("button", {
            type: "button", class: "button small", "aria-label": `Write our entries to ${label}`,
            onclick: () => openConfigDialog({ client: c.client, remove: false, name: c.name }),
          }, "Write"),
          h("button", {
            type: "button", class: "button small ghost", disabled: c.ours.length === 0,
            "aria-label": `Remove our entries from ${label}`,
            onclick: () => openConfigDialog({ client: c.client, remove: true, name: c.name }),
          }, "Remove")));
    }));
  }

  // ---------------------------------------------------------------- tools

  /** The Tools page's server choice: every target the host serves, the choice kept. */
  function renderToolsTargets(targets) {
    const select = $("tools-target");
    const names = targets.filter((t) => !reachedOnly(t)).map((t) => t.name);
    const current = select.value;
    if ([...select.options].map((o) => o.value).join("\n") === names.join("\n")) return;
    replaceChildren(select, ...names.map((name) => h("option", { value: name, selected: name === current }, name)));
  }

  async function listTools(name) {
    const status = $("tools-status");
    $("tools-error").hidden = true;
    status.textContent = `Listing ${name}… (an on-demand server starts first)`;
    try {
      const offer = await api(`/targets/${encodeURIComponent(name)}/tools`);
      state.tools = { target: name, offer, tool: null };
      const count = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
      status.textContent = `${offer.server ?? name}: ${count(offer.tools.length, "tool")}, ${count(offer.prompts.length, "prompt")}, `
        + `${count(offer.resources.length, "resource")} (listed in ${offer.elapsed_ms.toFixed(0)} ms).`;
      renderTools();
    } catch (err) {
      status.textContent = "";
      $("tools-error").textContent = `Could not list ${name}: ${err.message}`;
      $("tools-error").hidden = false;
      $("tools-body").hidden = true;
    }
  }

  function renderTools() {
    const { offer } = state.tools;
    const item = (title, detail, onclick) => h("li", {},
      onclick ? h("button", { type: "button", class: "link", onclick }, title) : h("span", { class: "name" }, title),
      detail ? h("span", { class: "muted" }, detail) : null);
    const none = (what) => h("li", { class: "muted" }, `No ${what}.`);
    replaceChildren($("tools-list"), ...(offer.tools.length ? offer.tools.map((tool) =>
      item(tool.name, tool.description, () => chooseTool(tool))) : [none("tools")]));
    replaceChildren($("prompts-list"), ...(offer.prompts.length ? offer.prompts.map((p) =>
      item(p.name, [p.description, p.arguments.length ? `arguments: ${p.arguments.join(", ")}` : null].filter(Boolean).join(" · "))) : [none("prompts")]));
    replaceChildren($("resources-list"), ...(offer.resources.length ? offer.resources.map((r) =>
      item(r.name, [r.uri, r.mime_type].filter(Boolean).join(" · "))) : [none("resources")]));
    $("tools-body").hidden = false;
    $("tool-call").hidden = !state.tools.tool;
  }

  /** Fills the call form for `tool`: its arguments as JSON, each property empty or its default. */
  function chooseTool(tool) {
    state.tools.tool = tool;
    const properties = tool.input_schema?.properties ?? {};
    const skeleton = {};
    for (const [key, schema] of Object.entries(properties)) {
      skeleton[key] = schema.default ?? ({ number: 0, integer: 0, boolean: false, array: [], object: {} }[schema.type] ?? "");
    }
    $("tool-call-title").textContent = `Call ${tool.name}`;
    $("tool-call-description").textContent = tool.description ?? "";
    $("tool-call-args").value = JSON.stringify(skeleton, null, 2);
    $("tool-call-timing").textContent = "";
    $("tool-call-result").hidden = true;
    $("tool-call").hidden = false;
    $("tool-call-args").focus();
  }

  async function callTool() {
    const { target, tool } = state.tools ?? {};
    if (!tool) return;
    let args;
    try {
      args = JSON.parse($("tool-call-args").value || "{}");
    } catch (err) {
      $("tool-call-timing").textContent = `The arguments are not JSON: ${err.message}`;
      return;
    }
    const project = $("tool-call-project").value.trim() || null;
    $("tool-call-timing").textContent = `Calling ${tool.name}…`;
    try {
      const answer = await api(`/targets/${encodeURIComponent(target)}/tools/call`,
        { method: "POST", body: { tool: tool.name, arguments: args, project } });
      $("tool-call-timing").textContent = `${answer.is_error ? "Error" : "OK"} in ${answer.elapsed_ms.toFixed(1)} ms`;
      const pre = $("tool-call-result");
      pre.textContent = JSON.stringify(answer.result, null, 2);
      pre.hidden = false;
    } catch (err) {
      $("tool-call-timing").textContent = `The call failed: ${err.message}`;
    }
  }

  // ---------------------------------------------------------------- start

  function init() {
    $("banner-retry").addEventListener("click", () => { refreshAll(); connectEvents(); });
    $("tools-pick").addEventListener("submit", (event) => {
      event.preventDefault();
      if ($("tools-target").value) listTools($("tools-target").value);
    });
    $("tool-call").addEventListener("submit", (event) => { event.preventDefault(); callTool(); });
    $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
    window.addEventListener("hashchange", followHash);
    $("no-tray-quit").addEventListener("click", quitApp);
    $("start-all").addEventListener("click", () => runAll("start", "Start all"));
    $("stop-all").addEventListener("click", () => runAll("stop", "Stop all"));
    $("log-close").addEventListener("click", closeLog);
    $("log-follow").addEventListener("change", () => {
      if ($("log-follow").checked && state.log) pollLog(state.log);
      else if (state.log && state.log.timer) clearTimeout(state.log.timer);
    });
    $("adopt-apply").addEventListener("click", applyAdopt);
    $("adopt-all").addEventListener("click", adoptAll);
    $("adopt-undo-all").addEventListener("click", () => previewAdopt("/api/adopt/undo", { names: [], all: true }));
    $("adopt-cancel").addEventListener("click", cancelAdopt);
    $("configure-claude").addEventListener("click", () => openConfigDialog());
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

    followHash();
    refreshAll().then(() => { refreshAdopt(); refreshClients(); connectEvents(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
