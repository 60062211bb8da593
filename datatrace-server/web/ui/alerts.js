// Alerts: channels (webhook, Slack, DingTalk, WeCom; a Test button showing the delivery's
// outcome), rules (kind, threshold, for, level, channels, enabled) and the history of
// firings, resolutions and test sends with each delivery. Admins change channels and rules,
// operators test-send, everyone reads. Every text from the server is set as text.
'use strict';
import { h, api, auth, main, toast, cell, when, confirmed } from './lib.js';

const CHANNEL_KINDS = ['webhook', 'slack', 'dingtalk', 'wecom'];
const LEVELS = ['info', 'warning', 'critical'];
// Per rule kind: what the threshold counts and its default.
const RULE_KINDS = {
  task_failed: { label: 'Task failed', threshold: null },
  lag: { label: 'Lag above N seconds', threshold: 'seconds of lag (default 60)' },
  dlq_growing: { label: 'Dead letters growing', threshold: 'dead letters waiting (default 0)' },
  drift_found: { label: 'Drift found', threshold: 'rows differing (default 0)' },
  binlog_retention: { label: 'Binlog retention running out', threshold: 'seconds of binlog left (default 3600)' },
  task_idle: { label: 'Task idle', threshold: 'seconds without a write (default 600)' },
};

// The last test-send outcome per channel id, kept across re-renders.
const tested = new Map();

// 0 viewer, 1 operator, 2 admin.
function role() { const me = auth.user(); return me ? ['viewer', 'operator', 'admin'].indexOf(me.role) : 0; }

function table(head, rows, id) {
  return h('table', { class: 'fixed', id },
    h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows));
}

function select(id, values, value, labels) {
  return h('select', { id }, values.map((v) => h('option', { value: v, selected: v === value }, labels ? labels(v) : v)));
}

// "ok (HTTP 200)", "ok after 2 attempts (HTTP 500, HTTP 200)", "failed: ...".
export function outcome(d) {
  const tries = (d.tries || []).map((t) => t.status ? 'HTTP ' + t.status : (t.error || '?')).join(', ');
  const head = d.ok ? 'ok' : 'failed';
  const attempts = d.attempts > 1 ? ' after ' + d.attempts + ' attempts' : '';
  return head + attempts + (tries ? ' (' + tries + ')' : '') + (!d.ok && d.error ? ': ' + d.error : '');
}

function testCell(c) {
  const result = h('span', { class: 'test-result' });
  const paint = () => {
    const t = tested.get(c.id);
    result.textContent = t ? t.text : '';
    result.className = 'test-result ' + (t ? t.cls : '');
  };
  paint();
  const button = h('button', { class: 'secondary small', 'data-test': c.id, onclick: async () => {
    tested.set(c.id, { text: 'sending...', cls: '' });
    paint();
    try {
      const d = await api('POST', '/api/alerts/channels/' + c.id + '/test');
      tested.set(c.id, { text: outcome(d), cls: d.ok ? 'ok' : 'err' });
    } catch (e) { tested.set(c.id, { text: e.message, cls: 'err' }); }
    paint();
  } }, 'Test');
  return h('td', { class: 'row-actions' }, role() >= 1 ? button : '', ' ', result);
}

function channelForm(editing) {
  const c = editing || {};
  const name = h('input', { type: 'text', id: 'channel-name', value: c.name || '', maxlength: 191 });
  const kind = select('channel-kind', CHANNEL_KINDS, c.kind || 'webhook');
  const url = h('input', { type: 'password', id: 'channel-url', autocomplete: 'off',
    placeholder: editing ? 'unchanged (' + c.endpoint + ')' : 'https://hooks.example.com/...' });
  const secret = h('input', { type: 'password', id: 'channel-secret', autocomplete: 'off',
    placeholder: c.has_secret ? 'unchanged; "-" removes it' : 'DingTalk robots with signing only' });
  const enabled = h('input', { type: 'checkbox', id: 'channel-enabled', checked: editing ? c.enabled : true });
  return h('form', { class: 'card', id: 'channel-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), kind: kind.value, enabled: enabled.checked };
    if (url.value.trim()) body.url = url.value.trim();
    if (secret.value === '-') body.secret = '';
    else if (secret.value) body.secret = secret.value;
    try {
      if (editing) await api('PUT', '/api/alerts/channels/' + c.id, body);
      else await api('POST', '/api/alerts/channels', body);
      toast(editing ? 'Channel saved' : 'Channel added');
      location.hash = '#/alerts';
      alertsPage();
    } catch (err) { toast(err.message, true); }
  } },
  h('h2', {}, editing ? 'Edit channel' : 'Add a channel'),
  h('label', { for: 'channel-name' }, 'Name'), name,
  h('label', { for: 'channel-kind' }, 'Kind'), kind,
  h('label', { for: 'channel-url' }, 'URL (with its token; stored encrypted, never shown again)'), url,
  h('label', { for: 'channel-secret' }, 'Signing secret'), secret,
  h('label', {}, enabled, ' enabled'),
  h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'channel-save' }, editing ? 'Save' : 'Add channel'),
    editing ? h('button', { type: 'button', class: 'secondary', onclick: () => { location.hash = '#/alerts'; } }, 'Cancel') : ''));
}

function channelsCard(channels, editId) {
  const admin = role() >= 2;
  const rows = channels.map((c) => h('tr', { 'data-channel': c.id },
    cell(c.name), h('td', {}, c.kind), cell(c.endpoint), h('td', {}, c.has_secret ? 'yes' : ''),
    h('td', {}, c.enabled ? 'yes' : 'no'), testCell(c),
    h('td', { class: 'row-actions' }, admin ? [
      h('button', { class: 'secondary small', onclick: () => { location.hash = '#/alerts/channel/' + c.id; } }, 'Edit'), ' ',
      h('button', { class: 'danger small', onclick: async () => {
        if (!confirmed('Delete the channel "' + c.name + '"?')) return;
        try { await api('DELETE', '/api/alerts/channels/' + c.id); alertsPage(); } catch (e) { toast(e.message, true); }
      } }, 'Delete')] : '')));
  const editing = channels.find((c) => String(c.id) === String(editId));
  return [h('h2', {}, 'Channels'),
    table(['Name', 'Kind', 'Endpoint', 'Secret', 'Enabled', 'Test', ''], rows, 'alert-channels'),
    admin ? channelForm(editing) : ''];
}

function ruleForm(editing, channels, tasks) {
  const r = editing || {};
  const name = h('input', { type: 'text', id: 'rule-name', value: r.name || '', maxlength: 191 });
  const kind = select('rule-kind', Object.keys(RULE_KINDS), r.kind || 'task_failed', (k) => RULE_KINDS[k].label);
  const task = h('select', { id: 'rule-task' }, h('option', { value: '' }, 'every task'),
    tasks.map((t) => h('option', { value: String(t.id), selected: r.task_id === t.id }, t.name)));
  const threshold = h('input', { type: 'number', id: 'rule-threshold', min: 0, step: 'any',
    value: r.threshold === null || r.threshold === undefined ? '' : String(r.threshold) });
  const hint = h('p', { class: 'hint', id: 'rule-threshold-hint' });
  const paintHint = () => {
    const k = RULE_KINDS[kind.value];
    threshold.disabled = !k.threshold;
    hint.textContent = k.threshold ? 'Threshold: ' + k.threshold : 'No threshold: fires when the task fails.';
  };
  kind.addEventListener('change', paintHint);
  paintHint();
  const forSecs = h('input', { type: 'number', id: 'rule-for', min: 0, value: String(r.for_secs || 0) });
  const level = select('rule-level', LEVELS, r.level || 'warning');
  const picks = channels.map((c) => h('input', { type: 'checkbox', value: String(c.id), checked: (r.channels || []).includes(c.id) }));
  const enabled = h('input', { type: 'checkbox', id: 'rule-enabled', checked: editing ? r.enabled : true });
  return h('form', { class: 'card', id: 'rule-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: name.value.trim(), kind: kind.value, level: level.value,
      for_secs: Number(forSecs.value || 0), enabled: enabled.checked,
      channels: picks.filter((p) => p.checked).map((p) => Number(p.value)) };
    if (task.value) body.task_id = Number(task.value);
    if (!threshold.disabled && threshold.value !== '') body.threshold = Number(threshold.value);
    try {
      if (editing) await api('PUT', '/api/alerts/rules/' + r.id, body);
      else await api('POST', '/api/alerts/rules', body);
      toast(editing ? 'Rule saved' : 'Rule added');
      location.hash = '#/alerts';
      alertsPage();
    } catch (err) { toast(err.message, true); }
  } },
  h('h2', {}, editing ? 'Edit rule' : 'Add a rule'),
  h('label', { for: 'rule-name' }, 'Name'), name,
  h('label', { for: 'rule-kind' }, 'When'), kind,
  h('label', { for: 'rule-task' }, 'Task'), task,
  h('label', { for: 'rule-threshold' }, 'Threshold'), threshold, hint,
  h('label', { for: 'rule-for' }, 'For (seconds the condition must hold before it fires)'), forSecs,
  h('label', { for: 'rule-level' }, 'Level'), level,
  h('label', {}, 'Channels'),
  h('div', { class: 'units-pick', id: 'rule-channels' }, channels.length
    ? channels.map((c, i) => h('label', {}, picks[i], ' ', c.name + ' (' + c.kind + ')'))
    : h('p', { class: 'hint' }, 'No channel yet: alerts are recorded in the history only.')),
  h('label', {}, enabled, ' enabled'),
  h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'rule-save' }, editing ? 'Save' : 'Add rule'),
    editing ? h('button', { type: 'button', class: 'secondary', onclick: () => { location.hash = '#/alerts'; } }, 'Cancel') : ''));
}

function rulesCard(rules, channels, tasks, editId) {
  const admin = role() >= 2;
  const chName = (id) => (channels.find((c) => c.id === id) || { name: '#' + id }).name;
  const taskName = (id) => id === null || id === undefined ? 'every task' : (tasks.find((t) => t.id === id) || { name: '#' + id }).name;
  const rows = rules.map((r) => h('tr', { 'data-rule': r.id },
    cell(r.name), h('td', {}, r.kind), cell(taskName(r.task_id)),
    h('td', {}, r.threshold === null ? 'default' : String(r.threshold)), h('td', {}, r.for_secs + ' s'),
    h('td', {}, r.level), cell(r.channels.map(chName).join(', ')), h('td', {}, r.enabled ? 'yes' : 'no'),
    h('td', { class: 'row-actions' }, admin ? [
      h('button', { class: 'secondary small', onclick: () => { location.hash = '#/alerts/rule/' + r.id; } }, 'Edit'), ' ',
      h('button', { class: 'danger small', onclick: async () => {
        if (!confirmed('Delete the rule "' + r.name + '"? Its history stays.')) return;
        try { await api('DELETE', '/api/alerts/rules/' + r.id); alertsPage(); } catch (e) { toast(e.message, true); }
      } }, 'Delete')] : '')));
  const editing = rules.find((r) => String(r.id) === String(editId));
  return [h('h2', {}, 'Rules'),
    table(['Name', 'Kind', 'Task', 'Threshold', 'For', 'Level', 'Channels', 'Enabled', ''], rows, 'alert-rules'),
    admin ? ruleForm(editing, channels, tasks) : ''];
}

async function historyCard(rules, tasks, filter) {
  const q = new URLSearchParams({ limit: '100' });
  for (const k of ['rule', 'level', 'task', 'state', 'before']) if (filter[k]) q.set(k, String(filter[k]));
  const rows = await api('GET', '/api/alerts/history?' + q.toString());
  const pick = (id, values, value, labels) => h('select', { id }, h('option', { value: '' }, 'any'),
    values.map((v) => h('option', { value: String(v), selected: String(v) === String(value || '') }, labels ? labels(v) : String(v))));
  const rule = pick('history-rule', rules.map((r) => r.id), filter.rule, (id) => rules.find((r) => r.id === id).name);
  const level = pick('history-level', LEVELS, filter.level);
  const task = pick('history-task', tasks.map((t) => t.id), filter.task, (id) => tasks.find((t) => t.id === id).name);
  const state = pick('history-state', ['firing', 'resolved', 'test'], filter.state);
  const body = rows.map((r) => h('tr', { class: r.state === 'firing' && r.level !== 'info' ? 'warn' : '' },
    h('td', {}, when(r.ts)), h('td', {}, r.state), h('td', {}, r.level), cell(r.rule), cell(r.task || ''),
    cell(r.message), cell((r.deliveries || []).map((d) => d.channel + ': ' + outcome(d)).join('; ') || 'no channel')));
  const last = rows.length ? rows[rows.length - 1].id : null;
  return [h('h2', {}, 'History'),
    h('form', { class: 'row', onsubmit: (e) => {
      e.preventDefault();
      alertsPage(null, { rule: rule.value, level: level.value, task: task.value, state: state.value });
    } },
    h('label', { for: 'history-rule' }, 'Rule'), rule, h('label', { for: 'history-level' }, 'Level'), level,
    h('label', { for: 'history-task' }, 'Task'), task, h('label', { for: 'history-state' }, 'State'), state,
    h('button', { type: 'submit', id: 'history-filter' }, 'Filter')),
    table(['When', 'State', 'Level', 'Rule', 'Task', 'Message', 'Deliveries'], body, 'alert-history'),
    rows.length === 100
      ? h('button', { class: 'secondary', onclick: () => alertsPage(null, { ...filter, before: last }) }, 'Older')
      : h('p', { class: 'hint' }, rows.length ? 'The oldest entry is shown.' : 'No alert yet.')];
}

// `#/alerts`, `#/alerts/channel/ID` (editing a channel), `#/alerts/rule/ID` (a rule).
export async function alertsPage(edit, filter = {}) {
  const [channels, rules, tasks] = await Promise.all([
    api('GET', '/api/alerts/channels'), api('GET', '/api/alerts/rules'), api('GET', '/api/tasks')]);
  const e = edit || {};
  main().replaceChildren(h('h1', {}, 'Alerts'),
    ...channelsCard(channels, e.channel),
    ...rulesCard(rules, channels, tasks, e.rule),
    ...(await historyCard(rules, tasks, filter)));
}
