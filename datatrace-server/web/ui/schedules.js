// A task's schedules (add, edit, delete, run now; the next firings in the schedule's time
// zone), its drift (rows differing at the last check) and its run history (a table paged
// back with "Older", and a chart of rows and duration per run drawn as inline SVG).
// Everything the server sends is set as text, never parsed as HTML.
'use strict';
import { h, api, toast, fmt, when, duration, badge, cell, confirmed, auth } from './lib.js';

const ACTIONS = [
  ['resync', 'Full re-sync'],
  ['check', 'Check'],
  ['check_repair', 'Check and repair'],
  ['drift_check', 'Drift check'],
];
const actionLabel = (a) => (ACTIONS.find((x) => x[0] === a) || [a, a])[1];
const canOperate = () => { const me = auth.user(); return !me || me.role !== 'viewer'; };
const localZone = () => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (_) { return 'UTC'; } };

// The badge class of a run's result.
function resultBadge(r) {
  const cls = { done: 'done', equal: 'done', repaired: 'done', running: 'running', failed: 'failed',
    differs: 'failed', skipped: 'stopped', stopped: 'stopped', interrupted: 'interrupted',
    done_with_rejects: 'done-rejects' }[r.result] || 'unknown';
  return badge(cls, r.result.replace(/_/g, ' '));
}

function runMillis(r) {
  if (!r.finished_at) return null;
  return new Date(r.finished_at).getTime() - new Date(r.started_at).getTime();
}

// Rows of a run as charted: written by a copy, compared (source rows) by a check.
function runRows(r) {
  return r.rows_written !== null && r.rows_written !== undefined && !r.kind.includes('check') ? r.rows_written : (r.rows_read || 0);
}

// An SVG element (the namespace the HTML helper does not know).
function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Bars: rows per run; the line: duration per run (each on its own scale), oldest left.
export function runChart(runs) {
  const list = runs.filter((r) => r.result !== 'skipped' && r.finished_at).slice(0, 40).reverse();
  const W = 640, H = 140, pad = 24;
  if (!list.length) return h('p', { class: 'hint', id: 'runs-chart' }, 'No finished runs to chart yet.');
  const maxRows = Math.max(1, ...list.map(runRows));
  const maxMs = Math.max(1, ...list.map((r) => runMillis(r) || 0));
  const step = (W - 2 * pad) / list.length;
  const bars = list.map((r, i) => {
    const bh = ((H - 2 * pad) * runRows(r)) / maxRows;
    return svg('rect', { x: pad + i * step + 1, y: H - pad - bh, width: Math.max(1, step - 2), height: Math.max(0, bh),
      class: 'chart-bar ' + r.result }, svg('title', {}, when(r.started_at) + ': ' + fmt(runRows(r)) + ' rows, ' + (duration(runMillis(r)) || '0s')));
  });
  const points = list.map((r, i) => (pad + i * step + step / 2).toFixed(1) + ',' + (H - pad - ((H - 2 * pad) * (runMillis(r) || 0)) / maxMs).toFixed(1)).join(' ');
  return svg('svg', { id: 'runs-chart', class: 'chart', viewBox: '0 0 ' + W + ' ' + H, width: '100%', height: H, role: 'img',
    'aria-label': 'rows and duration per run' },
  svg('line', { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, class: 'chart-axis' }),
  ...bars,
  svg('polyline', { points, class: 'chart-line' }),
  svg('text', { x: pad, y: 14, class: 'chart-label' }, 'bars: rows (max ' + fmt(maxRows) + ')'),
  svg('text', { x: W - pad, y: 14, class: 'chart-label end' }, 'line: duration (max ' + (duration(maxMs) || '0s') + ')'));
}

function runRow(r) {
  const diff = r.diff_found === null || r.diff_found === undefined ? '' : fmt(r.diff_found) + (r.diff_left !== r.diff_found ? ' \u2192 ' + fmt(r.diff_left) : '');
  return h('tr', { 'data-run': r.id },
    h('td', {}, when(r.started_at)), h('td', {}, r.kind.replace(/_/g, ' ')), h('td', {}, r.origin),
    h('td', {}, resultBadge(r)), h('td', { class: 'num' }, r.finished_at ? duration(runMillis(r)) : ''),
    h('td', { class: 'num' }, fmt(r.rows_read)), h('td', { class: 'num' }, fmt(r.rows_written)),
    h('td', { class: 'num' }, fmt(r.bytes_written)), h('td', { class: 'num' }, fmt(r.rejected)),
    h('td', { class: 'num' }, diff), cell(r.error || '', r.result === 'skipped' ? 'warn' : 'err'));
}

// The schedule form: a new schedule (`s` null) or a change of `s`.
function scheduleForm(taskId, s, done) {
  const cron = h('input', { type: 'text', id: 'sched-cron', value: s ? s.cron : '0 2 * * *', placeholder: 'minute hour day month weekday' });
  const zone = h('input', { type: 'text', id: 'sched-zone', value: s ? s.timezone : localZone(), placeholder: 'Europe/Berlin' });
  const action = h('select', { id: 'sched-action' }, ACTIONS.map(([v, l]) => h('option', { value: v, selected: s && s.action === v }, l)));
  const enabled = h('input', { type: 'checkbox', id: 'sched-enabled', checked: s ? s.enabled : true });
  const repair = h('input', { type: 'checkbox', id: 'sched-repair', checked: s ? s.repair : false });
  const delExtra = h('input', { type: 'checkbox', id: 'sched-delete-extra', checked: s ? s.delete_extra : false });
  const err = h('p', { class: 'err', id: 'sched-error' });
  const repairLabel = h('label', {}, repair, ' repair when drift is found');
  const sync = () => {
    repairLabel.hidden = action.value !== 'drift_check';
    if (repairLabel.hidden) repair.checked = false;
    delExtra.disabled = !(action.value === 'check_repair' || repair.checked);
    if (delExtra.disabled) delExtra.checked = false;
  };
  action.addEventListener('change', sync);
  repair.addEventListener('change', sync);
  sync();
  const save = async (e) => {
    e.preventDefault();
    const body = { cron: cron.value, timezone: zone.value, action: action.value, enabled: enabled.checked,
      repair: repair.checked, delete_extra: delExtra.checked };
    try {
      if (s) await api('PUT', '/api/schedules/' + s.id, body);
      else await api('POST', '/api/schedules', Object.assign({ task_id: Number(taskId) }, body));
      toast('Schedule saved');
      done();
    } catch (x) { err.textContent = x.message; }
  };
  return h('form', { class: 'card', id: 'sched-form', onsubmit: save },
    h('label', {}, 'Cron expression'), cron,
    h('p', { class: 'hint' }, 'minute hour day-of-month month day-of-week, e.g. "0 2 * * *" (02:00 daily), "*/15 * * * *", or @hourly, @daily'),
    h('label', {}, 'Time zone (IANA)'), zone,
    h('label', {}, 'Action'), action,
    repairLabel,
    h('label', {}, delExtra, ' also delete target rows that have no source row'),
    h('label', {}, enabled, ' enabled'),
    err,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'sched-save' }, 'Save'),
      h('button', { type: 'button', class: 'secondary', onclick: done }, 'Cancel')));
}

export function schedulesPanel(taskId) {
  const list = h('tbody', {});
  const formSlot = h('div', {});
  const drift = h('p', { id: 'drift' });
  const runsBody = h('tbody', {});
  const chartSlot = h('div', { class: 'card' });
  const older = h('button', { class: 'secondary small', id: 'runs-older', hidden: true }, 'Older');
  let runs = [];
  let nextBefore = null;
  let poll = null;

  const loadSchedules = async () => {
    const items = await api('GET', '/api/tasks/' + taskId + '/schedules');
    const op = canOperate();
    list.replaceChildren(...(items.length ? items.map((s) => h('tr', { 'data-schedule': s.id },
      h('td', {}, actionLabel(s.action) + (s.repair ? ' + repair' : '') + (s.delete_extra ? ' (delete extra)' : '')),
      cell(s.cron, 'mono'), cell(s.timezone), h('td', {}, s.enabled ? badge('done', 'on') : badge('stopped', 'off')),
      h('td', { class: 'next-fires', title: s.next_fires.map((f) => f.local).join('\n') }, s.next_fires.length ? s.next_fires[0].local : '-'),
      h('td', {}, when(s.last_fire) || '-'),
      h('td', { class: 'row-actions' }, op ? [
        h('button', { class: 'secondary small', onclick: async () => {
          try { const r = await api('POST', '/api/schedules/' + s.id + '/run'); toast('Run ' + ((r.run && r.run.result) || 'started')); await loadRuns(true); } catch (e) { toast(e.message, true); }
        } }, 'Run now'),
        h('button', { class: 'secondary small', onclick: () => formSlot.replaceChildren(scheduleForm(taskId, s, reload)) }, 'Edit'),
        h('button', { class: 'danger small', onclick: async () => {
          if (!confirmed('Delete this schedule (' + s.cron + ', ' + actionLabel(s.action) + ')?')) return;
          try { await api('DELETE', '/api/schedules/' + s.id); await reload(); } catch (e) { toast(e.message, true); }
        } }, 'Delete')] : ''))) : [h('tr', {}, h('td', { colspan: 7, class: 'hint' }, 'No schedules.'))]));
  };
  const loadDrift = async () => {
    const d = await api('GET', '/api/tasks/' + taskId + '/drift');
    drift.className = d && d.rows_differing > 0 ? 'warn' : 'ok';
    drift.textContent = d ? 'Drift: ' + fmt(d.rows_differing) + ' row(s) differing at the last check (' + when(d.checked_at) + ')' : 'Drift: not checked yet.';
  };
  const loadRuns = async (fresh) => {
    const q = fresh || nextBefore === null ? '' : '?before=' + nextBefore;
    const page = await api('GET', '/api/tasks/' + taskId + '/runs' + q);
    runs = fresh ? page.runs : runs.concat(page.runs);
    nextBefore = page.next_before;
    older.hidden = nextBefore === null || nextBefore === undefined;
    runsBody.replaceChildren(...(runs.length ? runs.map(runRow) : [h('tr', {}, h('td', { colspan: 11, class: 'hint' }, 'No runs yet.'))]));
    chartSlot.replaceChildren(runChart(runs));
    await loadDrift();
    // A check sends no live events: while one runs, look again every 2 s (while shown).
    clearTimeout(poll);
    if (runs.some((r) => r.result === 'running' && r.kind.includes('check'))) {
      poll = setTimeout(() => { if (node.isConnected) loadRuns(true).catch(() => { /* next look */ }); }, 2000);
    }
  };
  const reload = async () => { formSlot.replaceChildren(); await loadSchedules(); await loadRuns(true); };
  older.addEventListener('click', () => loadRuns(false).catch((e) => toast(e.message, true)));

  const node = h('div', { id: 'schedules-panel' },
    h('h2', {}, 'Schedules'),
    h('table', { id: 'schedules', class: 'fixed' }, h('thead', {}, h('tr', {}, h('th', { class: 'w-name' }, 'Action'), h('th', { class: 'w-type' }, 'Cron'),
      h('th', {}, 'Zone'), h('th', { class: 'w-pct' }, ''), h('th', { class: 'w-next' }, 'Next (in its zone)'), h('th', { class: 'w-time' }, 'Last'),
      h('th', { class: 'w-actions' }, ''))), list),
    canOperate() ? h('div', { class: 'actions' }, h('button', { class: 'secondary', id: 'sched-add', onclick: () => formSlot.replaceChildren(scheduleForm(taskId, null, reload)) }, 'Add schedule')) : '',
    formSlot,
    h('h2', {}, 'Run history'), drift, chartSlot,
    h('table', { id: 'runs' }, h('thead', {}, h('tr', {}, ['Started', 'Kind', 'Origin', 'Result', 'Duration', 'Read', 'Written', 'Bytes', 'Rejected', 'Differing', 'Error']
      .map((c, i) => h('th', { class: i >= 4 && i <= 9 ? 'num' : '' }, c)))), runsBody),
    h('div', { class: 'actions' }, older));
  return { node, load: reload, refreshRuns: () => loadRuns(true) };
}
