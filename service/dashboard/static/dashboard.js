// The insights dashboard: reads /v1/insights/* with the key the user enters, draws each view
// as a chart (Chart.js, vendored beside this file) and a table of the exact numbers.
// Every shown number carries data-metric="<view>.<table>.<row>.<column>" so a test can
// compare it with the API's JSON; fmt() below is the one rounding rule (docs/dashboard.md).
"use strict";

const KEY_STORAGE = "scorer-api-key"; // sessionStorage only: gone when the tab closes
const API = "/v1/insights";

// en-US digits and grouping, rounded half away from zero (Intl's default) on the number's
// shortest decimal form, the one its JSON shows (2.675 -> 2.68); "—" for a missing value.
const FORMATS = {
  count: new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 }),
  money: new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
  decimal: new Intl.NumberFormat("en-US", { minimumFractionDigits: 3, maximumFractionDigits: 3 }),
  percent: new Intl.NumberFormat("en-US", {
    style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1,
  }),
};

function fmt(value, kind) {
  if (value === null || value === undefined) return "—";
  return kind in FORMATS ? FORMATS[kind].format(value) : String(value);
}

const PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2",
  "#ca8a04", "#db2777", "#4b5563", "#65a30d", "#7c3aed", "#0d9488"];
const DRIFTED = "#dc2626";
const STEADY = "#2563eb";

class AuthError extends Error {}
class Unavailable extends Error {}

function storedKey() { return sessionStorage.getItem(KEY_STORAGE); }

async function api(path) {
  const response = await fetch(API + path, {
    headers: { Authorization: `Bearer ${storedKey()}`, Accept: "application/json" },
  });
  if (response.ok) return response.json();
  const body = await response.json().catch(() => ({}));
  const detail = typeof body.detail === "string" ? body.detail : response.statusText;
  if (response.status === 401) throw new AuthError(`The API key was refused (401): ${detail}.`);
  if (response.status === 403) {
    throw new AuthError(`This key may not read insights (403): ${detail}. ` +
      "Use a key with the scores:read or admin scope.");
  }
  if (response.status === 404) throw new Unavailable(`${API}${path} is not available on this server`);
  throw new Error(`${API}${path} answered ${response.status}: ${detail}`);
}

// --- DOM helpers ---------------------------------------------------------------------------

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

// A cell: text, or a number with its format and its metric key.
function num(value, kind, metric) { return { value, kind, metric }; }

function fillTable(table, headers, rows) {
  table.replaceChildren();
  const head = el("tr");
  headers.forEach((label, i) => head.append(el("th", { scope: "col", class: i ? "n" : null }, label)));
  table.appendChild(el("thead")).append(head);
  const body = table.appendChild(el("tbody"));
  for (const row of rows) {
    const tr = body.appendChild(el("tr", { class: row.className }));
    row.cells.forEach((cell, i) => {
      if (cell !== null && typeof cell === "object" && "kind" in cell) {
        const td = el("td", { class: "n", "data-metric": cell.metric }, fmt(cell.value, cell.kind));
        tr.append(td);
      } else {
        tr.append(el(i ? "td" : "th", i ? {} : { scope: "row" }, cell));
      }
    });
  }
  return table;
}

function note(figure, part, text) {
  const p = figure.querySelector(`.note[data-part="${part}"]`);
  p.textContent = text;
  p.hidden = !text;
}

const charts = new Map();

function draw(canvasId, config) {
  charts.get(canvasId)?.destroy();
  const canvas = document.getElementById(canvasId);
  config.options = {
    animation: false, responsive: true, maintainAspectRatio: false,
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    ...config.options,
  };
  charts.set(canvasId, new Chart(canvas, config));
}

function bars(canvasId, labels, datasets, options = {}) {
  draw(canvasId, {
    type: "bar",
    data: {
      labels,
      datasets: datasets.map((d, i) => ({ backgroundColor: PALETTE[i % PALETTE.length], ...d })),
    },
    options,
  });
}

function byName(items) { return items.map((item) => item.name); }

// --- the views -----------------------------------------------------------------------------

function shareTable(tableId, metricPrefix, groups, total) {
  const rows = groups.map((g) => ({
    cells: [g.name, num(g.customers, "count", `${metricPrefix}.${g.name}.customers`),
      num(g.share, "percent", `${metricPrefix}.${g.name}.share`)],
  }));
  rows.push({
    className: "total",
    cells: ["total", num(total, "count", `${metricPrefix}.total.customers`), ""],
  });
  fillTable(document.getElementById(tableId), ["", "customers", "share"], rows);
}

async function equityView() {
  for (const by of ["tier", "segment"]) {
    const equity = await api(`/equity?by=${by}`);
    const prefix = `equity.${by}`;
    const rows = [...equity.groups, equity.total].map((g) => ({
      className: g === equity.total ? "total" : null,
      cells: [g.name,
        num(g.customers, "count", `${prefix}.${g.name}.customers`),
        num(g.pcltv, "money", `${prefix}.${g.name}.pcltv`),
        num(g.historic, "money", `${prefix}.${g.name}.historic`)],
    }));
    fillTable(document.getElementById(`table-equity-${by}`),
      [by, "customers", "pCLTV", "historic"], rows);
    bars(`chart-equity-${by}`, byName(equity.groups), [
      { label: "pCLTV", data: equity.groups.map((g) => g.pcltv) },
      { label: "historic", data: equity.groups.map((g) => g.historic) },
    ]);
  }
}

async function segmentsView() {
  const distribution = await api("/distribution");
  shareTable("table-segment-sizes", "segments.size", distribution.segments,
    distribution.customers);
  draw("chart-segment-sizes", {
    type: "doughnut",
    data: {
      labels: byName(distribution.segments),
      datasets: [{
        data: distribution.segments.map((s) => s.customers),
        backgroundColor: distribution.segments.map((_, i) => PALETTE[i % PALETTE.length]),
      }],
    },
    options: { plugins: { legend: { position: "right", labels: { boxWidth: 12 } } } },
  });
  const figure = document.getElementById("table-segment-trend").closest("figure");
  let trends;
  try {
    trends = await api("/trends?days=90");
  } catch (error) {
    if (!(error instanceof Unavailable)) throw error;
    note(figure, "trends", "Trends are not available on this server yet.");
    return;
  }
  const days = trends.days;
  note(figure, "trends", days.length ? "" :
    "No daily snapshots yet: they are taken daily (or by POST /v1/insights/snapshots).");
  const names = [...new Set(days.flatMap((d) => byName(d.segments)))];
  const count = (day, name) => day.segments.find((s) => s.name === name)?.customers;
  fillTable(document.getElementById("table-segment-trend"), ["day", ...names],
    days.map((d) => ({
      cells: [d.day, ...names.map((n) => num(count(d, n) ?? null, "count",
        `segments.trend.${d.day}.${n}`))],
    })));
  draw("chart-segment-trend", {
    type: "line",
    data: {
      labels: days.map((d) => d.day),
      datasets: names.map((n, i) => ({
        label: n, data: days.map((d) => count(d, n) ?? null),
        borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
        pointRadius: days.length > 1 ? 2 : 4,
      })),
    },
  });
}

const NEW_CUSTOMERS = "(new)";

async function flowsView() {
  const flows = await api("/movements?by=segment&days=7");
  document.getElementById("flows-moved").textContent = fmt(flows.moved, "count");
  // A null "from" is a customer first scored within the period.
  const from = (c) => c.from ?? NEW_CUSTOMERS;
  const froms = [...new Set(flows.cells.map(from))].sort();
  const tos = [...new Set(flows.cells.map((c) => c.to))].sort();
  const cell = (f, t) => flows.cells.find((c) => from(c) === f && c.to === t);
  fillTable(document.getElementById("table-flows"), ["from \\ to", ...tos],
    froms.map((f) => ({
      cells: [f, ...tos.map((t) => {
        const found = cell(f, t);
        return found ? num(found.customers, "count", `flows.${f}.${t}`) : "·";
      })],
    })));
  bars("chart-flows", froms,
    tos.map((t) => ({ label: `to ${t}`, data: froms.map((f) => cell(f, t)?.customers ?? 0) })),
    { scales: { x: { stacked: true }, y: { stacked: true } } });
}

async function distributionsView() {
  const distribution = await api("/distribution");
  for (const [part, tableId, chartId] of [
    ["tiers", "table-tiers", "chart-tiers"],
    ["churn_bands", "table-churn", "chart-churn"],
  ]) {
    const groups = distribution[part];
    shareTable(tableId, `distributions.${part}`, groups, distribution.customers);
    bars(chartId, byName(groups), [{ label: "customers", data: groups.map((g) => g.customers) }],
      { plugins: { legend: { display: false } } });
  }
}

function heat(share) {
  // Cell colour by the share still active: white at 0, full blue at 1.
  const alpha = Math.max(0, Math.min(1, share ?? 0));
  return { background: `rgba(37, 99, 235, ${alpha.toFixed(3)})`, dark: alpha > 0.55 };
}

async function cohortsView() {
  const answer = await api("/cohorts?months=12");
  const cohorts = answer.cohorts;
  const width = Math.max(0, ...cohorts.flatMap((c) => c.months.map((m) => m.months_since + 1)));
  const offsets = [...Array(width).keys()];
  const table = fillTable(document.getElementById("table-cohorts"),
    ["cohort", "customers", "revenue", ...offsets.map((k) => `M${k}`)],
    cohorts.map((c) => ({
      cells: [c.month,
        num(c.customers, "count", `cohorts.${c.month}.customers`),
        num(c.revenue, "money", `cohorts.${c.month}.revenue`),
        ...offsets.map((k) => {
          const m = c.months.find((x) => x.months_since === k);
          return m ? num(m.share, "percent", `cohorts.${c.month}.m${k}`) : "";
        })],
    })));
  // Colour the share cells (the CSS object model, which the page's policy allows).
  for (const td of table.querySelectorAll("td[data-metric]")) {
    const [, month, column] = td.dataset.metric.split(".");
    if (!column.startsWith("m")) continue;
    const cohort = cohorts.find((c) => c.month === month);
    const m = cohort.months.find((x) => `m${x.months_since}` === column);
    const { background, dark } = heat(m.share);
    td.style.backgroundColor = background;
    td.style.color = dark ? "#fff" : "";
    td.title = `${fmt(m.active, "count")} active, ${fmt(m.revenue, "money")} revenue`;
  }
  draw("chart-cohorts", {
    type: "line",
    data: {
      labels: offsets.map((k) => `M${k}`),
      datasets: cohorts.map((c, i) => ({
        label: c.month,
        data: offsets.map((k) => c.months.find((m) => m.months_since === k)?.share ?? null),
        borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
        pointRadius: 2,
      })),
    },
    options: {
      scales: { y: { min: 0, max: 1, ticks: { callback: (v) => fmt(v, "percent") } } },
      plugins: { legend: { position: "right", labels: { boxWidth: 12 } } },
    },
  });
}

async function offersView() {
  const report = await api("/offers?days=30&outcome_days=30");
  const offers = report.offers;
  fillTable(document.getElementById("table-offers"),
    ["offer", "shown", "accepted", "rate", "95% low", "95% high"],
    offers.map((o) => ({
      cells: [o.offer_id,
        num(o.shown, "count", `offers.acceptance.${o.offer_id}.shown`),
        num(o.accepted, "count", `offers.acceptance.${o.offer_id}.accepted`),
        num(o.acceptance_rate, "percent", `offers.acceptance.${o.offer_id}.rate`),
        num(o.acceptance_ci95.low, "percent", `offers.acceptance.${o.offer_id}.low`),
        num(o.acceptance_ci95.high, "percent", `offers.acceptance.${o.offer_id}.high`)],
    })));
  draw("chart-offers", {
    type: "bar",
    data: {
      labels: offers.map((o) => o.offer_id),
      datasets: [
        { label: "acceptance", data: offers.map((o) => o.acceptance_rate), backgroundColor: STEADY },
        {
          label: "95% interval", data: offers.map((o) => [o.acceptance_ci95.low, o.acceptance_ci95.high]),
          backgroundColor: "rgba(249, 115, 22, 0.45)",
        },
      ],
    },
    options: { scales: { y: { min: 0, ticks: { callback: (v) => fmt(v, "percent") } } } },
  });
  const figure = document.getElementById("table-uplift").closest("figure");
  const uplift = report.uplift;
  note(figure, "uplift", uplift ? "" :
    "Too few decisions in treatment or control for an uplift estimate.");
  const kinds = { orders_per_decision: "decimal", revenue_per_decision: "money" };
  fillTable(document.getElementById("table-uplift"),
    ["per decision", "treatment", "control", "uplift", "95% low", "95% high"],
    Object.entries(uplift ?? {}).map(([name, u]) => ({
      cells: [name.replace("_per_decision", ""),
        ...Object.entries(upliftFields(u)).map(([field, value]) =>
          num(value, kinds[name] ?? "decimal", `offers.uplift.${name}.${field}`))],
    })));
}

function upliftFields(u) {
  return {
    treatment_mean: u.treatment_mean, control_mean: u.control_mean, uplift: u.uplift,
    ci95_low: u.ci95.low, ci95_high: u.ci95.high,
  };
}

async function modelHealthView() {
  const health = await api("/model-health");
  fillTable(document.getElementById("table-models"),
    ["model", "version", "activated", "trained", "training metrics"],
    health.models.map((m) => ({
      cells: [m.name, m.version, m.activated_at ?? "—", m.trained_at ?? "—",
        Object.entries(m.metrics ?? {})
          .filter(([, v]) => typeof v === "number")
          .map(([k, v]) => `${k} ${fmt(v, "decimal")}`).join(", ") || "—"],
    })));
  const calibrationFigure = document.getElementById("table-calibration").closest("figure");
  const bins = health.calibration?.bins ?? [];
  note(calibrationFigure, "calibration", health.calibration ? "" :
    "No calibration yet: it needs scored customers whose outcome is known.");
  fillTable(document.getElementById("table-calibration"),
    ["bin", "customers", "predicted", "observed"],
    bins.map((b, i) => ({
      cells: [String(i + 1),
        num(b.customers, "count", `model-health.calibration.${i}.customers`),
        num(b.predicted, "decimal", `model-health.calibration.${i}.predicted`),
        num(b.observed, "decimal", `model-health.calibration.${i}.observed`)],
    })));
  draw("chart-calibration", {
    type: "scatter",
    data: {
      datasets: [
        {
          label: "observed", data: bins.map((b) => ({ x: b.predicted, y: b.observed })),
          backgroundColor: STEADY, borderColor: STEADY, showLine: true,
        },
        {
          label: "perfect", data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], showLine: true,
          borderColor: "#9ca3af", borderDash: [4, 4], pointRadius: 0,
        },
      ],
    },
    options: {
      scales: {
        x: { min: 0, max: 1, title: { display: true, text: "predicted" } },
        y: { min: 0, max: 1, title: { display: true, text: "observed" } },
      },
    },
  });
  const driftFigure = document.getElementById("table-drift").closest("figure");
  const drift = health.drift;
  note(driftFigure, "drift", drift ? `Drifted: PSI above ${fmt(drift.threshold, "decimal")}.` :
    "No drift yet: it needs a reference sample and recent scores.");
  const rows = drift ? [
    ...drift.features.map((f) => ({ part: "features", ...f })),
    ...drift.predictions.map((f) => ({ part: "predictions", ...f })),
  ] : [];
  fillTable(document.getElementById("table-drift"), ["", "kind", "PSI", "state"],
    rows.map((r) => ({
      className: r.drifted ? "drifted" : null,
      cells: [`${r.model}: ${r.name}`, r.part,
        num(r.psi, "decimal", `model-health.drift.${r.part}.${r.model}.${r.name}.psi`),
        r.drifted ? "drifted" : "steady"],
    })));
  bars("chart-drift", rows.map((r) => `${r.model}: ${r.name}`), [{
    label: "PSI", data: rows.map((r) => r.psi),
    backgroundColor: rows.map((r) => (r.drifted ? DRIFTED : STEADY)),
  }], { indexAxis: "y", plugins: { legend: { display: false } } });
}

async function alertsView() {
  const answer = await api("/alerts");
  const alerts = answer.data;
  fillTable(document.getElementById("table-alerts"),
    ["alert", "metric", "condition", "threshold", "firing"],
    alerts.map((a) => ({
      className: a.firing ? "drifted" : null,
      cells: [a.name, [a.metric, a.subject].filter(Boolean).join(": "), a.operator,
        num(a.threshold, "decimal", `alerts.${a.alert_id}.threshold`),
        a.firing ? "firing" : "quiet"],
    })));
}

const VIEWS = {
  equity: equityView,
  segments: segmentsView,
  flows: flowsView,
  distributions: distributionsView,
  cohorts: cohortsView,
  offers: offersView,
  "model-health": modelHealthView,
  alerts: alertsView,
};

// --- navigation and the key ----------------------------------------------------------------

function currentView() {
  const name = location.hash.slice(1);
  return name in VIEWS ? name : "equity";
}

function showAuth(message) {
  document.getElementById("key-form").hidden = false;
  document.getElementById("key-state").hidden = true;
  document.getElementById("views").hidden = true;
  document.getElementById("intro").hidden = false;
  for (const section of document.querySelectorAll("section.view")) section.hidden = true;
  const error = document.getElementById("auth-error");
  error.textContent = message ?? "";
  error.hidden = !message;
}

function sectionMessage(section, text, className) {
  section.querySelector(":scope > .status")?.remove();
  if (text) section.querySelector("h2").after(el("p", { class: `status ${className}` }, text));
}

async function openView(name, fresh = false) {
  if (!storedKey()) return showAuth();
  document.getElementById("key-form").hidden = true;
  document.getElementById("key-state").hidden = false;
  document.getElementById("views").hidden = false;
  document.getElementById("intro").hidden = true;
  document.getElementById("auth-error").hidden = true;
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === name);
  }
  for (const section of document.querySelectorAll("section.view")) {
    section.hidden = section.dataset.view !== name;
  }
  const section = document.getElementById(`view-${name}`);
  if (!fresh && ["ready", "loading"].includes(section.dataset.state)) return;
  section.dataset.state = "loading";
  sectionMessage(section, "Loading…", "loading");
  try {
    await VIEWS[name]();
    section.dataset.state = "ready";
    sectionMessage(section, "");
  } catch (error) {
    if (error instanceof AuthError) {
      sessionStorage.removeItem(KEY_STORAGE);
      for (const s of document.querySelectorAll("section.view")) delete s.dataset.state;
      showAuth(error.message);
      return;
    }
    const unavailable = error instanceof Unavailable;
    section.dataset.state = unavailable ? "unavailable" : "error";
    sectionMessage(section, unavailable ? `Not available: ${error.message}.` : error.message,
      unavailable ? "unavailable" : "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("api-key");
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    input.value = "";
    openView(currentView(), true);
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    for (const s of document.querySelectorAll("section.view")) delete s.dataset.state;
    showAuth();
  });
  document.getElementById("refresh").addEventListener("click", () => {
    for (const s of document.querySelectorAll("section.view")) delete s.dataset.state;
    openView(currentView(), true);
  });
  window.addEventListener("hashchange", () => openView(currentView()));
  openView(currentView());
});
