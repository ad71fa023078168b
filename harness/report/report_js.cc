// The report page's script. Plain ES2017, no framework: it reads the model
// from #report-data, fills the tables and draws with Chart.js (animation off,
// so every chart is drawn when the load event fires). Long lists are paged
// or capped; the model already says what it left out.
#include "report_js.h"

namespace tpmlab::report_js {

namespace {
constexpr char kScript[] = R"js(
'use strict';
const model = JSON.parse(document.getElementById('report-data').textContent);
const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function table(headers, rows, attrs) {
  const t = el('table', attrs || {});
  t.append(el('tr', {}, ...headers.map((h) => el('th', {text: h}))));
  for (const r of rows) t.append(r instanceof Node ? r : el('tr', {}, ...r.map((c) => el('td', {}, c))));
  return t;
}
function num(v) { return el('td', {class: 'num', text: v === null || v === undefined ? '' : String(v)}); }
function chartBox(parent, id) {
  const box = el('div', {class: 'chart'});
  const canvas = el('canvas', {id});
  box.append(canvas);
  parent.append(box);
  return canvas;
}
function leftOut(parent, n, what) { if (n > 0) parent.append(el('p', {class: 'left-out', text: n + ' ' + what + ' not shown'})); }
const palette = ['#b0201a', '#2b6cd9', '#d9822b', '#17702a', '#8a2bd9', '#0f8a8a', '#9a6400', '#666', '#d92b8a', '#3b3bb0'];
const S = model.series;
const bucketed = model.bucket_size > 1;
const baseOptions = (xTitle, yTitle) => ({
  animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
  interaction: {mode: 'nearest', intersect: false},
  scales: {x: {type: 'linear', title: {display: true, text: xTitle}}, y: {title: {display: true, text: yTitle}}},
  plugins: {legend: {position: 'bottom'}},
});
const stepLabel = bucketed ? 'step (first of each bucket of ' + model.bucket_size + ')' : 'step';

function header() {
  const r = model.run;
  $('title').textContent = 'tpmlab report: ' + r.scenario;
  const rows = [
    ['Scenario', r.scenario + (r.scenario_file ? ' (' + r.scenario_file + ')' : '')],
    ['Result', el('span', {class: 'status-' + r.status, id: 'run-status', text: r.status + (r.error ? ': ' + r.error : '')})],
    ['Seed', r.seed], ['DUT', r.dut], ['Bench', r.bench],
    ['Platform firmware', (r.platform_firmware || []).join(' \u2192 ') || 'none named'],
    ['TPM', r.tpm_firmware || 'unknown'],
    ['Steps', r.steps + ' (' + r.power_cycles + ' power cycles)'],
    ['Started / finished', r.started_at + ' / ' + (r.finished_at || 'not finished')],
    ['Host / tpmlab', r.host + ' / ' + r.tpmlab_version], ['Run', '#' + r.id],
  ];
  $('header').append(table(['', ''], rows.map(([k, v]) => el('tr', {}, el('th', {text: k}), el('td', {}, v)))));
}

function alarms() {
  const A = model.alarms;
  if (A.total === 0) { $('alarm-chart').append(el('p', {class: 'muted', id: 'no-alarms', text: 'No alarms.'})); return; }
  const codes = A.groups.map((g) => g.code);
  const datasets = codes.map((code, i) => ({
    label: code, type: 'scatter', backgroundColor: palette[i % palette.length],
    data: (S.alarms[code] || []).map(([b, n]) => ({x: S.first[b], y: i, n})),
    pointRadius: (ctx) => { const n = ctx.raw ? ctx.raw.n : 1; return Math.min(12, 4 + Math.log2(n)); },
  }));
  const options = baseOptions(stepLabel, 'alarm');
  options.scales.y = {min: -0.5, max: codes.length - 0.5, ticks: {stepSize: 1, callback: (v) => codes[v] || ''}};
  options.plugins.tooltip = {callbacks: {label: (c) => c.dataset.label + ' at step ' + c.raw.x + (c.raw.n > 1 ? ' (' + c.raw.n + ')' : '')}};
  new Chart(chartBox($('alarm-chart'), 'chart-alarms'), {type: 'scatter', data: {datasets}, options});
  for (const g of A.groups) {
    const d = el('details', g.count <= 10 ? {open: ''} : {}, el('summary', {},
      el('b', {class: 'sev-' + g.severity, text: g.code}), ' \u2014 ' + g.count + ' (' + g.severity + '), steps ' + g.first_step + '\u2013' + g.last_step));
    const rows = g.list.map((a) => el('tr', {class: 'alarm', 'data-step': a.step, 'data-code': a.code},
      num(a.step), el('td', {text: a.message}), el('td', {}, el('pre', {text: JSON.stringify(a.evidence || {}, null, 1)}))));
    d.append(table(['step', 'message', 'evidence'], rows));
    leftOut(d, g.left_out, 'more ' + g.code + ' alarms');
    $('alarm-groups').append(d);
  }
}

const pageSize = 50;
function driftFor(id) { return id === null || id === undefined ? null : model.grid.drifts[id]; }
function showDrift(row, bank, pcr) {
  const box = $('drift-detail');
  box.hidden = false;
  box.replaceChildren(el('h3', {text: 'Step ' + row.step + ' (' + row.action + (row.kind ? ' ' + row.kind : '') + '): ' + bank + ' PCR' + pcr}));
  for (const [against, id] of [['previous boot', row.drift], ['golden', row.golden_drift]]) {
    const d = driftFor(id);
    const moved = ((against === 'golden' ? row.golden : row.prev)[bank] || []).includes(pcr);
    box.append(el('h4', {text: 'Against ' + against + ': ' + (moved ? 'changed' : 'unchanged')}));
    if (!d) continue;
    const events = (d.events || []).filter((e) => e.pcr === pcr);
    box.append(events.length ? table(['change', 'event type', 'before', 'after'], events.map((e) =>
      el('tr', {class: 'drift-event'}, el('td', {text: e.change}), el('td', {text: e.type}),
        el('td', {text: (e.before === null ? '' : '#' + e.before + ' ') + (e.before_summary || '')}),
        el('td', {text: (e.after === null ? '' : '#' + e.after + ' ') + (e.after_summary || '')})))) :
      el('p', {class: 'muted', text: 'no logged event of PCR' + pcr + ' differs'}));
    const causes = (d.causes || []).filter((c) => c.pcr === pcr || c.pcr === -1);
    if (causes.length) box.append(el('p', {}, 'Cause: ', ...causes.map((c) => el('b', {text: c.code + (c.detail ? ' (' + c.detail + ')' : '') + ' '}))));
    if (d.events_total) leftOut(box, d.events_total - d.events.length, 'more event changes of this drift');
  }
  box.scrollIntoView();
}
function gridBank(bank, columns) {
  const rows = model.grid.rows.filter((r) => (r.prev[bank] || []).length || (r.golden[bank] || []).length);
  const wrap = el('div', {class: 'bank', 'data-bank': bank});
  wrap.append(el('h3', {text: bank + ': ' + rows.length + ' boots with a PCR changed'}));
  const body = el('div');
  const pager = el('p');
  let page = 0;
  const pages = Math.max(1, Math.ceil(rows.length / pageSize));
  const draw = () => {
    const t = el('table', {class: 'grid'});
    t.append(el('tr', {}, el('th', {text: 'step'}), el('th', {text: 'boot'}), ...columns.map((p) => el('th', {text: 'PCR' + p}))));
    for (const r of rows.slice(page * pageSize, (page + 1) * pageSize)) {
      const tr = el('tr', {}, num(r.step), el('td', {text: r.action + (r.cycle ? ' #' + r.cycle : '') + (r.kind ? ' ' + r.kind : '')}));
      for (const p of columns) {
        const prev = (r.prev[bank] || []).includes(p), golden = (r.golden[bank] || []).includes(p);
        if (!prev && !golden) { tr.append(el('td', {class: 'cell'})); continue; }
        const kind = prev && golden ? 'both' : prev ? 'prev' : 'golden';
        const id = 'drift-' + r.step + '-' + bank + '-' + p;
        const a = el('a', {href: '#' + id, id, text: prev && golden ? 'PG' : prev ? 'P' : 'G'});
        a.addEventListener('click', (ev) => { ev.preventDefault(); showDrift(r, bank, p); });
        tr.append(el('td', {class: 'cell ' + kind, 'data-step': r.step, 'data-bank': bank, 'data-pcr': p,
          'data-against': kind, title: 'step ' + r.step + ' ' + bank + ' PCR' + p}, a));
      }
      t.append(tr);
    }
    body.replaceChildren(t);
    pager.replaceChildren();
    if (pages > 1) {
      const prevButton = el('button', {id: 'grid-prev-' + bank, text: '\u2190 earlier'});
      const nextButton = el('button', {id: 'grid-next-' + bank, text: 'later \u2192'});
      prevButton.disabled = page === 0;
      nextButton.disabled = page + 1 >= pages;
      prevButton.onclick = () => { page--; draw(); };
      nextButton.onclick = () => { page++; draw(); };
      pager.append(prevButton, ' page ' + (page + 1) + ' of ' + pages + ' ', nextButton);
    }
  };
  draw();
  wrap.append(body, pager);
  return wrap;
}
function grid() {
  const G = model.grid;
  const out = $('grid-banks');
  out.append(el('p', {}, G.boots_compared + ' steps compared against the previous boot or golden; ' + G.boots_changed + ' with a change.'));
  const banks = Object.keys(G.columns);
  if (!banks.length) { out.append(el('p', {class: 'muted', id: 'no-pcr-change', text: 'No PCR changed.'})); return; }
  for (const bank of banks) {
    const seen = new Set(G.columns[bank]);
    const columns = [...Array(24).keys(), ...G.columns[bank].filter((p) => p >= 24)];
    out.append(gridBank(bank, columns.filter((p) => p < 24 || seen.has(p))));
  }
  leftOut(out, G.rows_left_out, 'more boots with changes (the grid keeps the first ' + model.limits.grid_boots + ')');
  const m = /^#drift-(\d+)-(\w+)-(\d+)$/.exec(location.hash);
  if (m) { const r = G.rows.find((x) => x.step === Number(m[1])); if (r) showDrift(r, m[2], Number(m[3])); }
}

function points(lo, hi) {
  const out = [];
  for (let b = 0; b < S.buckets; b++) if (hi[b] !== null) out.push({x: S.first[b], y: hi[b], lo: lo[b]});
  return out;
}
function counters() {
  const box = $('counter-charts');
  if (!S.snapshots.some((n) => n > 0)) { box.append(el('p', {class: 'muted', text: 'No snapshot read the TPM clock.'})); return; }
  const ds = [
    {label: 'resetCount', data: points(S.reset_min, S.reset_max), borderColor: palette[1], pointRadius: 0, stepped: true},
    {label: 'restartCount', data: points(S.restart_min, S.restart_max), borderColor: palette[3], pointRadius: 0, stepped: true},
  ];
  Object.keys(S.kinds).forEach((kind, i) => ds.push({
    label: 'power cycle: ' + kind, type: 'scatter', pointStyle: ['triangle', 'rectRot', 'crossRot', 'star'][i % 4],
    pointRadius: 6, backgroundColor: palette[(i + 4) % palette.length], borderColor: palette[(i + 4) % palette.length],
    data: S.kinds[kind].map(([b, n]) => ({x: S.first[b], y: S.reset_max[b] === null ? 0 : S.reset_max[b], n})),
  }));
  new Chart(chartBox(box, 'chart-counters'), {type: 'line', data: {datasets: ds}, options: baseOptions(stepLabel, 'count' + (bucketed ? ' (max per bucket)' : ''))});
  const clock = baseOptions(stepLabel, 'clock (ms)');
  clock.scales.y2 = {position: 'right', beginAtZero: true, title: {display: true, text: 'snapshots with safe = NO'}, grid: {drawOnChartArea: false}};
  const unsafe = [];
  for (let b = 0; b < S.buckets; b++) if (S.snapshots[b]) unsafe.push({x: S.first[b], y: S.unsafe[b]});
  const clockSets = [{label: 'clock' + (bucketed ? ' (max)' : ''), data: points(S.clock_min, S.clock_max), borderColor: palette[0], pointRadius: bucketed ? 0 : 3}];
  if (bucketed) clockSets.push({label: 'clock (min)', data: points(S.clock_max, S.clock_min), borderColor: '#e8a09c', pointRadius: 0});
  clockSets.push({label: 'safe = NO', type: 'bar', yAxisID: 'y2', data: unsafe, backgroundColor: '#9a6400'});
  new Chart(chartBox(box, 'chart-clock'), {type: 'line', data: {datasets: clockSets}, options: clock});
}

function latency() {
  const L = model.latency;
  if (!L.length) { $('latency-table').append(el('p', {class: 'muted', text: 'No command trace stored.'})); return; }
  $('latency-table').append(table(['command', 'count', 'p50 \u00b5s', 'p90 \u00b5s', 'p99 \u00b5s', 'mean \u00b5s', 'min \u00b5s', 'max \u00b5s', 'errors'],
    L.map((r) => el('tr', {class: 'latency', 'data-command': r.command}, el('td', {text: r.command}), num(r.count), num(r.p50_us),
      num(r.p90_us), num(r.p99_us), num(r.mean_us), num(r.min_us), num(r.max_us), num(r.errors)))));
  $('latency-table').append(el('p', {class: 'muted', text: 'Percentiles from 2%-wide bins: within 1% of the exact value.'}));
  const ds = L.map((r, i) => ({
    label: r.command, hidden: i >= 6, borderColor: palette[i % palette.length], pointRadius: S.buckets > 60 ? 0 : 2,
    data: (S.latency[r.command] ? S.latency[r.command].mean : []).map(([b, v]) => ({x: S.first[b], y: v})),
  }));
  const options = baseOptions(stepLabel, 'mean latency per ' + (bucketed ? 'bucket' : 'step') + ' (\u00b5s)');
  options.scales.y.type = 'logarithmic';
  new Chart(chartBox($('latency-chart'), 'chart-latency'), {type: 'line', data: {datasets: ds}, options});
}

function lists() {
  const E = model.expectations;
  $('expectation-list').append(E.length ? table(['step', 'expectation', 'result', 'detail'], E.map((e) =>
    el('tr', {class: 'expectation'}, num(e.step), el('td', {text: e.name}),
      el('td', {class: e.passed ? 'status-passed' : 'status-failed', text: e.passed ? 'passed' : 'FAILED'}), el('td', {text: e.detail || ''})))) :
    el('p', {class: 'muted', text: 'The scenario states no expectation.'}));
  const C = model.checks;
  $('check-list').append(C.length ? table(['check', 'passed', 'failed', 'first failures'], C.map((c) =>
    el('tr', {}, el('td', {text: c.name}), num(c.passed), num(c.failed),
      el('td', {}, ...c.failures.slice(0, 5).map((f) => el('div', {text: 'step ' + f.step + ': ' + f.detail}))))))
    : el('p', {class: 'muted', text: 'No checks.'}));
  const N = model.notes;
  const nl = $('note-list');
  nl.append(el('p', {}, Object.entries(N.by_type).map(([t, n]) => t + ': ' + n).join(', ') || 'No fault was injected and no firmware changed.'));
  if (N.list.length) nl.append(table(['step', 'action', 'what', 'detail'], N.list.map((n) =>
    el('tr', {class: 'note note-' + n.type}, num(n.step), el('td', {text: n.action + (n.kind ? ' ' + n.kind : '')}),
      el('td', {text: n.type}), el('td', {}, el('pre', {text: JSON.stringify(n.what)}))))));
  leftOut(nl, N.total - N.list.length, 'more');
  const K = model.causes;
  $('cause-list').append(K.length ? table(['against', 'cause', 'boots', 'steps', 'details'], K.map((c) =>
    el('tr', {}, el('td', {text: c.against}), el('td', {text: c.code}), num(c.count), el('td', {text: c.first_step + '\u2013' + c.last_step}),
      el('td', {text: c.details.join('; ')})))) : el('p', {class: 'muted', text: 'No drift cause.'}));
  const F = model.files;
  $('file-list').append(F.length ? el('ul', {}, ...F.map((f) => el('li', {}, el('a', {href: f.href, text: f.name}),
    f.bytes === null ? '' : ' (' + f.bytes + ' bytes)'))) : el('p', {class: 'muted', text: 'Written from a database, not a run folder.'}));
}

for (const part of [header, alarms, grid, counters, latency, lists]) part();
document.body.setAttribute('data-rendered', 'yes');
)js";
}  // namespace

const std::string& Source() {
  static const std::string source = kScript;
  return source;
}

}  // namespace tpmlab::report_js
