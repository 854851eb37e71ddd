// penstock dashboard: plain JavaScript over the read API, no libraries, nothing fetched
// from anywhere but this server. Every value from the API is set as text, never as HTML.
"use strict";

const $ = (selector) => document.querySelector(selector);
const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const SVG = "http://www.w3.org/2000/svg";

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`${path}: ${body.error}: ${body.detail}`);
  }
  return body;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    if (cell instanceof Node) {
      const td = document.createElement("td");
      td.appendChild(cell);
      tr.appendChild(td);
    } else {
      const [text, className] = Array.isArray(cell) ? cell : [cell, undefined];
      tr.appendChild(el("td", text, className));
    }
  }
  return tr;
}

function mwh(value) {
  return value === null || value === undefined ? "unknown" : numberFormat.format(value);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function report(error) {
  console.warn(error.message);
  $("#updated").textContent = `Could not refresh: ${error.message}`;
}

// Headline statistics.
async function loadStats() {
  const stats = await api("/plants/statistics");
  const set = (name, text) => { document.querySelector(`[data-stat="${name}"]`).textContent = text; };
  set("plants", numberFormat.format(stats.plants));
  set("generators", numberFormat.format(stats.generators));
  set("states", stats.states);
  set("years", stats.years);
  set("total", stats.total_net_generation_mwh === null ? "–" : `${numberFormat.format(stats.total_net_generation_mwh / 1e6)} TWh`);
  set("negative", numberFormat.format(stats.generators_negative));
  set("unknown", numberFormat.format(stats.generators_unknown));
  const last = document.querySelector('[data-stat="last_load"]');
  last.textContent = stats.last_load_at ? new Date(stats.last_load_at).toLocaleDateString() : "–";
  last.title = when(stats.last_load_at);
}

// Year and state pickers, filled from the data.
async function loadFilters() {
  const [years, states] = await Promise.all([api("/plants/years"), api("/plants/states")]);
  const yearValues = years.data.map((y) => y.year);
  fillSelect($("#chart-year"), yearValues);
  fillSelect($("#top-year"), yearValues);
  fillSelect($("#top-state"), states.data.map((s) => s.state));
}

// Replaces a picker's options with "all" plus `values`, keeping the current choice.
function fillSelect(select, values) {
  const chosen = select.value;
  const all = el("option", "all");
  all.value = "";
  select.replaceChildren(all);
  for (const value of values) {
    const option = el("option", value);
    option.value = value;
    select.appendChild(option);
  }
  select.value = chosen;
}

// Bar chart of net generation by state, drawn as SVG.
async function loadChart() {
  const chart = await api(`/plants/chart/by-state${query({ year: $("#chart-year").value })}`);
  const width = 960;
  const height = 280;
  const margin = { top: 10, right: 10, bottom: 40, left: 70 };
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const title = document.createElementNS(SVG, "title");
  title.textContent = chart.title;
  svg.appendChild(title);
  const max = Math.max(1, ...chart.values);
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const step = plotWidth / Math.max(1, chart.labels.length);
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4;
    const y = margin.top + plotHeight - (plotHeight * i) / 4;
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("class", "gridline");
    line.setAttribute("x1", margin.left);
    line.setAttribute("x2", width - margin.right);
    line.setAttribute("y1", y);
    line.setAttribute("y2", y);
    svg.appendChild(line);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("class", "axis");
    label.setAttribute("x", margin.left - 6);
    label.setAttribute("y", y + 3);
    label.setAttribute("text-anchor", "end");
    label.textContent = `${numberFormat.format(value / 1e6)} TWh`;
    svg.appendChild(label);
  }
  chart.labels.forEach((state, i) => {
    const value = Math.max(0, chart.values[i]);
    const barHeight = (plotHeight * value) / max;
    const x = margin.left + i * step + step * 0.1;
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("class", "bar");
    rect.setAttribute("x", x);
    rect.setAttribute("y", margin.top + plotHeight - barHeight);
    rect.setAttribute("width", Math.max(1, step * 0.8));
    rect.setAttribute("height", barHeight);
    rect.dataset.label = state;
    rect.dataset.value = chart.values[i];
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = `${state}: ${mwh(chart.values[i])} MWh`;
    rect.appendChild(tip);
    svg.appendChild(rect);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("class", "axis");
    label.setAttribute("x", x + step * 0.4);
    label.setAttribute("y", height - margin.bottom + 14 + (i % 2) * 11);
    label.setAttribute("text-anchor", "middle");
    label.textContent = state;
    svg.appendChild(label);
  });
  $("#chart").replaceChildren(svg);
}

function plantLink(plant) {
  const button = el("button", plant.plant_name, "link");
  button.type = "button";
  button.addEventListener("click", () => showPlant(plant.id).catch(report));
  return button;
}

// Top plants for the chosen year and state.
async function loadTop() {
  const form = new FormData($("#top-form"));
  const top = await api(`/plants/top${query(Object.fromEntries(form))}`);
  const body = $("#top tbody");
  body.replaceChildren(
    ...top.data.map((plant, i) => row([i + 1, plantLink(plant), plant.state, plant.year, [mwh(plant.net_generation_mwh), "num"]])),
  );
}

// Search with pages.
const search = { q: "", page: 1, perPage: 20 };

async function runSearch() {
  const result = await api(`/plants/search${query({ q: search.q, page: search.page, per_page: search.perPage })}`);
  $("#search-results tbody").replaceChildren(
    ...result.data.map((plant) => row([plantLink(plant), plant.state, plant.year, [plant.generators, "num"], [mwh(plant.net_generation_mwh), "num"]])),
  );
  const pages = Math.max(1, Math.ceil(result.total / result.per_page));
  $("#search-summary").textContent = `${numberFormat.format(result.total)} plants match “${search.q}” — page ${result.page} of ${pages}`;
  $("#search-prev").disabled = result.page <= 1;
  $("#search-next").disabled = result.page >= pages;
}

// One plant with its generators and where each row came from.
async function showPlant(id) {
  const detail = await api(`/plants/${id}`);
  const plant = detail.plant;
  $("#plant-title").textContent = `${plant.plant_name} (${plant.state}, ${plant.year})`;
  $("#plant-summary").textContent = `${plant.generators} generators, ${mwh(plant.net_generation_mwh)} MWh net`;
  $("#plant-generators tbody").replaceChildren(
    ...detail.generators.map((g) => row([g.generator_id, [mwh(g.net_generation_mwh), "num"], g.source.key ?? `file ${g.source.file_id}`, [g.source.line, "num"]])),
  );
  $("#plant-detail").hidden = false;
  $("#plant-detail").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

// Files with live progress and links to their quarantined rows.
async function loadFiles() {
  const files = await api("/files?per_page=20");
  $("#files tbody").replaceChildren(
    ...files.data.map((file) => {
      const progress = document.createElement("progress");
      progress.max = 1;
      progress.value = file.progress;
      progress.title = `${file.chunks_done} of ${file.chunks_total ?? "?"} chunks`;
      let quarantined = el("span", numberFormat.format(file.rows_quarantined));
      if (file.rows_quarantined > 0) {
        const noun = file.rows_quarantined === 1 ? "row" : "rows";
        quarantined = el("button", `${numberFormat.format(file.rows_quarantined)} ${noun}`, "link");
        quarantined.type = "button";
        quarantined.addEventListener("click", () => showQuarantine(file).catch(report));
      }
      const status = el("span", file.status.replaceAll("_", " "), `status status-${file.status}`);
      if (file.reason) status.title = file.reason;
      const tr = row([file.id, file.key, status, progress, [numberFormat.format(file.rows_loaded), "num"], quarantined, when(file.finished_at)]);
      tr.lastChild.previousSibling.className = "num";
      return tr;
    }),
  );
}

async function showQuarantine(file) {
  const errors = await api(`/files/${file.id}/errors?per_page=100`);
  $("#quarantine-title").textContent = `Quarantined rows of ${file.key} (${errors.total})`;
  $("#quarantine-rows tbody").replaceChildren(
    ...errors.data.map((e) => row([[e.line ?? "–", "num"], e.column ?? "–", e.reason, [e.raw, "raw"]])),
  );
  $("#quarantine").hidden = false;
  $("#quarantine").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

// Active alerts.
async function loadAlerts() {
  const alerts = await api("/alerts?status=active&per_page=20");
  $("#alerts-empty").hidden = alerts.data.length > 0;
  $("#alerts").replaceChildren(
    ...alerts.data.map((alert) => {
      const li = el("li", undefined, `severity-${alert.severity}`);
      li.appendChild(el("div", alert.message));
      li.appendChild(el("div", `${alert.severity} · ${alert.source} · seen ${alert.count}× · last ${when(alert.last_seen)}`, "meta"));
      return li;
    }),
  );
}

// Data that changes only when a file finishes: refreshed when the files list says so.
let lastFinished = null;

async function refreshLive() {
  await Promise.all([loadFiles(), loadAlerts()]);
  const finished = await api("/plants/statistics");
  if (finished.last_load_at !== lastFinished) {
    lastFinished = finished.last_load_at;
    await Promise.all([loadStats(), loadFilters().then(() => Promise.all([loadChart(), loadTop()]))]);
  }
  $("#updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

function wire() {
  $("#chart-year").addEventListener("change", () => loadChart().catch(report));
  $("#top-form").addEventListener("change", () => loadTop().catch(report));
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search.q = $("#search-q").value.trim();
    search.page = 1;
    if (search.q) runSearch().catch(report);
  });
  $("#search-prev").addEventListener("click", () => { search.page -= 1; runSearch().catch(report); });
  $("#search-next").addEventListener("click", () => { search.page += 1; runSearch().catch(report); });
  $("#plant-close").addEventListener("click", () => { $("#plant-detail").hidden = true; });
  $("#quarantine-close").addEventListener("click", () => { $("#quarantine").hidden = true; });
}

wire();
refreshLive().catch(report);
setInterval(() => refreshLive().catch(report), 2000);
