// A task's page: overall progress with start, end, elapsed time and ETA, the actions, the
// units (live: counters, lag and stream position), schedules and run history, and the logs.
'use strict';
import { h, api, main, toast, fmt, bar, badge, taskBadge, when, duration, position, partitionLag, ACTIVE, confirmed, cell } from './lib.js';
import { subscribe } from './live.js';
import { logPanel } from './logs.js';
import { deadLetterPanel } from './deadletters.js';
import { taskActions, elapsedOf } from './tasks.js';
import { schedulesPanel } from './schedules.js';

export let stream = null;
export function closeStream() { if (stream) { stream.close(); stream = null; } }

// The ETA of a running task: what is left at the current rate, when both are known.
function eta(task, o) {
  if (!ACTIVE.includes(task.status) || !(o.rate > 0) || !(o.total > o.written)) return '';
  return duration(((o.total - o.written) / o.rate) * 1000);
}

// `view`: 'dead-letters' opens the dead letters instead of the logs.
export async function taskPage(id, view) {
  const task = await api('GET', '/api/tasks/' + id);
  const state = { units: new Map(), task };
  const status = h('span', { id: 'task-status' });
  const conn = h('span', { id: 'conn', class: 'conn' });
  const overallBar = h('div', { id: 'overall-bar' });
  const overallText = h('span', { id: 'overall-text' });
  const stats = h('div', { class: 'grid', id: 'stats' });
  const tbody = h('tbody', {});
  const errorBox = h('p', { class: 'err', id: 'task-error' });
  const rejectBox = h('p', { class: 'warn', id: 'task-rejects' });
  const act = async (path, label) => {
    try { await api('POST', '/api/tasks/' + id + '/' + path); toast(label + ': ok'); } catch (e) { toast(e.message, true); }
  };
  const buttons = {
    start: h('button', { id: 'btn-start', onclick: () => {
      const t = state.task;
      const earlier = t.overall.written > 0 || ['done', 'stopped', 'failed', 'interrupted'].includes(t.status);
      if (earlier && !confirmed('Start "' + t.name + '" afresh? This forgets its checkpoints and copies everything again.'
        + (['stopped', 'failed', 'interrupted'].includes(t.status) ? ' To continue where it stopped, use Resume.' : ''))) return;
      act('start', 'Start');
    } }, 'Start'),
    stop: h('button', { id: 'btn-stop', class: 'danger', onclick: () => act('stop', 'Stop') }, 'Stop'),
    resume: h('button', { id: 'btn-resume', class: 'secondary', onclick: () => act('resume', 'Resume') }, 'Resume'),
    retry: h('button', { id: 'btn-retry', class: 'secondary', onclick: () => act('retry', 'Retry failed') }, 'Retry failed'),
  };
  const verifyBox = h('div', { id: 'verify-result' });
  buttons.verify = h('button', { id: 'btn-verify', class: 'secondary', onclick: async () => {
    buttons.verify.disabled = true;
    verifyBox.replaceChildren(h('p', { class: 'hint' }, 'Comparing the target with the source...'));
    try {
      const r = await api('POST', '/api/tasks/' + id + '/verify');
      verifyBox.replaceChildren(
        h('p', { class: r.equal ? 'ok' : 'err', id: 'verify-verdict' }, r.equal ? 'Verified: the target equals the source.' : 'Differences found.'),
        h('table', {}, h('thead', {}, h('tr', {}, ['Unit', 'Method', 'Source rows', 'Target rows', 'Missing', 'Extra', 'Different'].map((c) => h('th', {}, c)))),
          h('tbody', {}, r.units.map((u) => h('tr', {}, cell(u.unit), h('td', {}, u.method), h('td', { class: 'num' }, fmt(u.source_rows)),
            h('td', { class: 'num' }, fmt(u.target_rows)), h('td', { class: 'num' }, fmt(u.missing)), h('td', { class: 'num' }, fmt(u.extra)), h('td', { class: 'num' }, fmt(u.different)))))));
    } catch (e) { verifyBox.replaceChildren(h('p', { class: 'err' }, e.message)); }
    sched.refreshRuns().catch(() => { /* the verdict is shown above */ });
    buttons.verify.disabled = ACTIVE.includes(state.task.status);
  } }, 'Verify');
  const manage = h('span', { class: 'manage' });

  const paintOverall = (o) => {
    const t = state.task;
    t.overall = o;
    overallBar.replaceChildren(bar(o.percent, t.status === 'done' && o.rejected ? 'done-rejects' : t.status, true));
    overallText.textContent = o.percent.toFixed(1) + '%';
    const lags = [...state.units.values()].map((u) => u.lag_ms).filter((l) => l !== null && l !== undefined);
    const stat = (label, id2, value) => h('div', { class: 'stat' }, label, h('b', { id: id2 }, value));
    stats.replaceChildren(
      stat('Written', 'stat-written', fmt(o.written)),
      stat('Rows / s', 'stat-rate', fmt(Math.round(o.rate))),
      stat('Rejected', 'stat-rejected', fmt(o.rejected)),
      stat('Units done', 'stat-units', o.units_done + ' / ' + o.units_total + (o.units_failed ? ' (' + o.units_failed + ' failed)' : '')),
      stat('Started', 'stat-started', when(t.started_at) || '-'),
      stat('Finished', 'stat-finished', ACTIVE.includes(t.status) ? '-' : (when(t.finished_at) || '-')),
      stat('Elapsed', 'stat-elapsed', duration(elapsedOf(t)) || '-'),
      stat(lags.length ? 'Lag' : 'ETA', 'stat-eta', lags.length ? duration(Math.max(...lags)) : (eta(t, o) || '-')));
    const first = [...state.units.values()].map((u) => u.first_rejection).find((x) => x);
    rejectBox.replaceChildren(...(o.rejected ? [fmt(o.rejected) + ' record(s) rejected' + (first ? '; the first: ' + first : '') + ' ',
      h('a', { href: '#/tasks/' + id + '/dead-letters', class: 'to-dead-letters' }, 'See the dead letters')] : []));
  };
  // A finished run with rejects links to its dead letters.
  const statusBadge = () => {
    const b = taskBadge(state.task);
    return b.dataset.status === 'done-rejects' ? h('a', { href: '#/tasks/' + id + '/dead-letters', id: 'rejects-link', title: 'See the dead letters' }, b) : b;
  };
  const paintStatus = (s, error, overall) => {
    state.task.status = s;
    status.replaceChildren(statusBadge());
    errorBox.textContent = error || '';
    const active = ACTIVE.includes(s);
    buttons.start.disabled = active;
    buttons.stop.disabled = !active || s === 'stopping';
    buttons.resume.disabled = active || !['stopped', 'failed', 'interrupted'].includes(s);
    buttons.retry.disabled = active || s !== 'failed';
    buttons.verify.disabled = active;
    manage.replaceChildren(...taskActions(state.task, () => { location.hash = '#/tasks'; }));
    if (overall) paintOverall(overall);
    status.replaceChildren(statusBadge());
  };
  const paintUnits = () => {
    tbody.replaceChildren(...[...state.units.values()].map((u) => h('tr', { 'data-unit': u.unit },
      cell(u.unit), cell(u.target || ''), h('td', {}, badge(u.state)),
      h('td', {}, bar(u.percent, u.state)),
      h('td', { class: 'num' }, u.percent === null ? '' : Math.floor(u.percent) + '%'),
      h('td', { class: 'num' }, fmt(u.written) + (u.estimated_total && u.state !== 'done' ? ' / ' + fmt(u.estimated_total) : '')),
      h('td', { class: 'num' }, u.state === 'running' ? fmt(Math.round(u.rate)) : ''),
      h('td', { class: 'num' }, u.lag_ms === null || u.lag_ms === undefined ? '' : duration(u.lag_ms)),
      cell(u.partitions && u.partitions.length ? partitionLag(u.partitions) : position(u.position), 'mono'),
      cell(u.error || u.first_rejection || '', u.error ? 'err' : 'warn'))));
  };
  const sched = schedulesPanel(id);
  const logs = logPanel('/api/tasks/' + id + '/logs', [['realtime', 'Realtime'], ['error', 'Errors'], ['system', 'System']]);
  const dead = deadLetterPanel(id);
  const showDead = view === 'dead-letters';
  logs.node.hidden = showDead;
  dead.node.hidden = !showDead;
  const pageTab = (key, label, on) => h('button', { id: 'page-tab-' + key, class: on ? 'on' : '', onclick: () => {
    location.hash = '#/tasks/' + id + (key === 'dead-letters' ? '/dead-letters' : '');
  } }, label);
  const pageTabs = h('div', { class: 'tabs page-tabs' }, pageTab('logs', 'Logs', !showDead), pageTab('dead-letters', 'Dead letters', showDead));
  main().replaceChildren(
    h('div', { class: 'title' }, h('h1', { class: 'clip', title: task.name }, task.name), status, conn),
    h('div', { class: 'card' },
      h('div', { class: 'progress-line' }, h('div', { class: 'grow' }, overallBar), overallText),
      stats, errorBox, rejectBox,
      h('div', { class: 'actions' }, buttons.start, buttons.stop, buttons.resume, buttons.retry, buttons.verify, manage), verifyBox),
    h('h2', {}, 'Units'),
    h('table', { id: 'units', class: 'fixed' }, h('thead', {}, h('tr', {}, h('th', { class: 'w-name' }, 'Unit'), h('th', { class: 'w-name' }, 'Target'), h('th', { class: 'w-status' }, 'State'),
      h('th', {}, 'Progress'), h('th', { class: 'num w-pct' }, ''), h('th', { class: 'num w-num' }, 'Written'), h('th', { class: 'num w-pct' }, 'Rows / s'),
      h('th', { class: 'num w-pct' }, 'Lag'), h('th', { class: 'w-name' }, 'Position'), h('th', {}, 'Error'))), tbody),
    sched.node,
    pageTabs, logs.node, dead.node);
  paintStatus(task.status, task.error, task.overall);
  if (showDead) await dead.load(); else await logs.load();
  try { await sched.load(); } catch (e) { toast(e.message, true); }
  const units = (list) => { list.forEach((u) => state.units.set(u.unit, u)); paintUnits(); };
  closeStream();
  stream = subscribe(id, {
    snapshot: (d) => { state.units.clear(); units(d.units); paintStatus(d.status, d.error, d.overall); logs.since(); },
    progress: (d) => { units(d.units); paintOverall(d.overall); },
    unit: (d) => { units([d.unit]); paintOverall(d.overall); },
    status: async (d) => {
      try { Object.assign(state.task, await api('GET', '/api/tasks/' + id)); } catch (_) { /* shown on the next event */ }
      paintStatus(d.status, d.error, d.overall);
      sched.refreshRuns().catch(() => { /* shown on the next event */ });
    },
    log: (l) => logs.push(l),
  }, (s) => {
    conn.textContent = s === 'live' ? 'live' : s === 'reconnecting' ? 'reconnecting...' : 'connecting...';
    conn.className = 'conn ' + s;
    main().classList.toggle('stale', s === 'reconnecting');
    if (s === 'reconnecting') status.replaceChildren(badge('unknown', state.task.status + '?'));
  });
}
