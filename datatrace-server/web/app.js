// DataTrace web UI: plain JavaScript, no build step. Talks to the REST API with the bearer
// token kept in this tab's sessionStorage; live progress over server-sent events.
'use strict';

const main = document.getElementById('main');
let stream = null; // the open EventSource of a task page

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function token() { return sessionStorage.getItem('datatrace-token'); }

function toast(text, error) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.className = error ? 'error' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, error ? 8000 : 3000);
}

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: 'Bearer ' + token() } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) {
    sessionStorage.removeItem('datatrace-token');
    location.hash = '#/login';
    throw new Error('please sign in');
  }
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const msg = (data && data.error) || r.statusText;
    throw new Error(data && data.field ? data.field + ': ' + msg : msg);
  }
  return data;
}

function fmt(n) { return n === null || n === undefined ? '' : Number(n).toLocaleString('en-US'); }
function badge(s) { return h('span', { class: 'badge ' + s, 'data-status': s }, s); }
function bar(percent, state, big) {
  const p = Math.max(0, Math.min(100, percent || 0));
  return h('div', { class: 'bar' + (big ? ' big ' : ' ') + (state || '') }, h('div', { style: 'width:' + p + '%' }));
}

// ---------- sign in ----------
function loginPage() {
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off' });
  const form = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    sessionStorage.setItem('datatrace-token', input.value.trim());
    try { await api('GET', '/api/tasks'); location.hash = '#/tasks'; }
    catch (err) { toast('The token was not accepted', true); }
  } },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'token' }, 'Server token'),
    input,
    h('p', { class: 'hint' }, 'The token given to datatrace serve (--token or DATATRACE_TOKEN). It stays in this browser tab only.'),
    h('div', { class: 'actions' }, h('button', { id: 'login-btn', type: 'submit' }, 'Sign in')));
  main.replaceChildren(form);
  input.focus();
}

// ---------- data sources ----------
async function dataSourcesPage(editId) {
  const list = await api('GET', '/api/datasources');
  const editing = list.find((d) => String(d.id) === String(editId));
  const rows = list.map((d) => {
    const result = h('span', { class: 'test-result' });
    return h('tr', { 'data-id': d.id },
      h('td', {}, d.name), h('td', {}, d.type), h('td', {}, d.url),
      h('td', {}, d.has_password || d.has_api_key ? 'stored (encrypted)' : 'none'),
      h('td', {},
        h('button', { class: 'secondary test', onclick: async () => {
          result.textContent = 'testing...'; result.className = 'test-result';
          try {
            const t = await api('POST', '/api/datasources/' + d.id + '/test');
            result.textContent = t.ok ? 'OK: ' + t.flavor + ' ' + t.version : t.error;
            result.className = 'test-result ' + (t.ok ? 'ok' : 'err');
          } catch (e) { result.textContent = e.message; result.className = 'test-result err'; }
        } }, 'Test'), ' ',
        h('button', { class: 'secondary', onclick: () => { location.hash = '#/datasources/' + d.id; } }, 'Edit'), ' ',
        h('button', { class: 'danger', onclick: async () => {
          if (!confirm('Delete data source ' + d.name + '?')) return;
          try { await api('DELETE', '/api/datasources/' + d.id); route(); } catch (e) { toast(e.message, true); }
        } }, 'Delete'), ' ', result));
  });
  const f = {
    name: h('input', { type: 'text', id: 'ds-name', value: editing ? editing.name : '' }),
    type: h('select', { id: 'ds-type' }, h('option', { value: 'mysql' }, 'MySQL / MariaDB'), h('option', { value: 'elasticsearch' }, 'Elasticsearch / OpenSearch')),
    url: h('input', { type: 'text', id: 'ds-url', value: editing ? editing.url : '', placeholder: 'mysql://user@host:3306/db' }),
    username: h('input', { type: 'text', id: 'ds-username', value: editing && editing.username ? editing.username : '' }),
    password: h('input', { type: 'password', id: 'ds-password', autocomplete: 'new-password', placeholder: editing && editing.has_password ? '(unchanged)' : '' }),
    api_key: h('input', { type: 'password', id: 'ds-api-key', autocomplete: 'off', placeholder: editing && editing.has_api_key ? '(unchanged)' : '' }),
  };
  if (editing) f.type.value = editing.type;
  const esOnly = [h('label', { for: 'ds-username' }, 'User name'), f.username, h('label', { for: 'ds-api-key' }, 'API key'), f.api_key];
  const sync = () => {
    const es = f.type.value === 'elasticsearch';
    esOnly.forEach((el) => { el.hidden = !es; });
    f.url.placeholder = es ? 'http://host:9200' : 'mysql://user@host:3306/db';
  };
  f.type.addEventListener('change', sync);
  sync();
  const form = h('form', { class: 'card', id: 'ds-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: f.name.value, type: f.type.value, url: f.url.value };
    if (f.type.value === 'elasticsearch') {
      if (f.username.value) body.username = f.username.value;
      if (f.api_key.value) body.api_key = f.api_key.value;
    }
    if (f.password.value) body.password = f.password.value;
    try {
      if (editing) await api('PUT', '/api/datasources/' + editing.id, body);
      else await api('POST', '/api/datasources', body);
      toast('Saved');
      location.hash = '#/datasources';
      route();
    } catch (err) { toast(err.message, true); }
  } },
    h('h2', {}, editing ? 'Edit ' + editing.name : 'Add a data source'),
    h('label', { for: 'ds-name' }, 'Name'), f.name,
    h('label', { for: 'ds-type' }, 'Type'), f.type,
    h('label', { for: 'ds-url' }, 'URL'), f.url,
    h('div', { class: 'hint' }, 'No password in the URL: use the field below, it is stored encrypted and never shown again.'),
    esOnly,
    h('label', { for: 'ds-password' }, 'Password'), f.password,
    h('div', { class: 'actions' }, h('button', { id: 'ds-save', type: 'submit' }, editing ? 'Save' : 'Add'),
      editing && h('button', { type: 'button', class: 'secondary', onclick: () => { location.hash = '#/datasources'; } }, 'Cancel')));
  main.replaceChildren(
    h('h1', {}, 'Data sources'),
    list.length ? h('table', { id: 'ds-list' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Type'), h('th', {}, 'URL'), h('th', {}, 'Secret'), h('th', {}, ''))),
      h('tbody', {}, rows)) : h('p', { class: 'hint' }, 'No data sources yet: add the MySQL servers and Elasticsearch clusters to copy between.'),
    form);
}

// ---------- tasks ----------
async function tasksPage() {
  const tasks = await api('GET', '/api/tasks');
  const rows = tasks.map((t) => h('tr', { 'data-id': t.id },
    h('td', {}, h('a', { href: '#/tasks/' + t.id }, t.name)),
    h('td', {}, badge(t.status)),
    h('td', {}, bar(t.overall.percent, t.status)),
    h('td', { class: 'num' }, Math.floor(t.overall.percent) + '%'),
    h('td', { class: 'num' }, fmt(t.overall.written)),
    h('td', { class: 'num' }, t.overall.units_done + ' / ' + t.overall.units_total)));
  main.replaceChildren(
    h('h1', {}, 'Tasks'),
    tasks.length ? h('table', { id: 'task-list' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Status'), h('th', {}, 'Progress'), h('th', { class: 'num' }, ''), h('th', { class: 'num' }, 'Written'), h('th', { class: 'num' }, 'Units'))),
      h('tbody', {}, rows)) : h('p', { class: 'hint' }, 'No tasks yet.'),
    h('div', { class: 'actions' }, h('button', { onclick: () => { location.hash = '#/new'; } }, 'New task')));
}

// ---------- the wizard ----------
async function wizardPage() {
  const sources = await api('GET', '/api/datasources');
  if (!sources.length) {
    main.replaceChildren(h('h1', {}, 'New task'), h('p', {}, 'First ', h('a', { href: '#/datasources' }, 'add a data source'), '.'));
    return;
  }
  const st = { step: 1, source: sources[0].id, target: sources[sources.length - 1].id, units: [], naming: '{table}', name: '', batch: 1000, concurrency: 2, policy: 'fail', mode: 'full' };
  const byId = (id) => sources.find((d) => d.id === Number(id));
  const labels = ['1. Source and target', '2. Tables / indices', '3. Parameters', '4. Confirm'];
  const config = () => {
    const src = byId(st.source);
    const dst = byId(st.target);
    const source = { datasource: src.id };
    source[src.type === 'mysql' ? 'tables' : 'indices'] = st.units;
    const target = { datasource: dst.id };
    target[dst.type === 'mysql' ? 'table' : 'index'] = st.naming;
    return { name: st.name, mode: src.type === 'mysql' ? st.mode : 'full', source, target,
      settings: { batch_size: Number(st.batch), concurrency: Number(st.concurrency), error_policy: st.policy } };
  };
  const render = async () => {
    const body = h('div', { class: 'card', id: 'wizard', 'data-step': st.step });
    const next = h('button', { id: 'wz-next' }, 'Next');
    const back = h('button', { class: 'secondary', id: 'wz-back', disabled: st.step === 1, onclick: () => { st.step -= 1; render(); } }, 'Back');
    if (st.step === 1) {
      const opts = (sel) => sources.map((d) => h('option', { value: d.id, selected: d.id === sel }, d.name + ' (' + d.type + ')'));
      const s = h('select', { id: 'wz-source', onchange: (e) => { st.source = Number(e.target.value); st.units = []; } }, opts(st.source));
      const t = h('select', { id: 'wz-target', onchange: (e) => { st.target = Number(e.target.value); } }, opts(st.target));
      body.append(h('label', { for: 'wz-source' }, 'Read from'), s, h('label', { for: 'wz-target' }, 'Write to'), t);
      next.onclick = () => { st.step = 2; render(); };
    } else if (st.step === 2) {
      const src = byId(st.source);
      const box = h('div', { class: 'units-pick', id: 'wz-units' }, 'Loading from ' + src.name + '...');
      body.append(h('label', {}, src.type === 'mysql' ? 'Tables' : 'Indices'), box);
      next.disabled = true;
      api('GET', '/api/datasources/' + src.id + '/units').then((units) => {
        box.replaceChildren(...(units.length ? units.map((u) => h('label', {},
          h('input', { type: 'checkbox', value: u, checked: st.units.includes(u), onchange: (e) => {
            st.units = e.target.checked ? st.units.concat([u]) : st.units.filter((x) => x !== u);
            next.disabled = !st.units.length;
          } }), ' ', u)) : ['Nothing found.']));
        next.disabled = !st.units.length;
      }).catch((e) => { box.replaceChildren(h('span', { class: 'err' }, e.message)); });
      next.onclick = () => { st.step = 3; render(); };
    } else if (st.step === 3) {
      const dst = byId(st.target);
      if (!st.name) st.name = (byId(st.source).name + '-to-' + dst.name).replace(/[^A-Za-z0-9._-]/g, '-');
      const field = (id, label, key, type, hint) => [h('label', { for: id }, label),
        h('input', { type, id, value: st[key], oninput: (e) => { st[key] = e.target.value; } }), hint && h('div', { class: 'hint' }, hint)];
      body.append(h('div', {},
        field('wz-name', 'Task name', 'name', 'text'),
        field('wz-naming', dst.type === 'mysql' ? 'Target table' : 'Target index', 'naming', 'text', 'Patterns: {table} (the source table or index), {db}.'),
        field('wz-batch', 'Batch size', 'batch', 'number'),
        field('wz-concurrency', 'Units at the same time', 'concurrency', 'number'),
        byId(st.source).type === 'mysql' && [h('label', { for: 'wz-mode' }, 'Mode'),
          h('select', { id: 'wz-mode', onchange: (e) => { st.mode = e.target.value; } },
            [['full', 'Full copy'], ['incremental', 'Incremental (binlog changes only)'], ['full+incremental', 'Full copy, then changes (keeps running)']]
              .map(([v, l]) => h('option', { value: v, selected: st.mode === v }, l)))],
        h('label', { for: 'wz-policy' }, 'When the target rejects a record'),
        h('select', { id: 'wz-policy', onchange: (e) => { st.policy = e.target.value; } },
          ['fail', 'skip', 'dead-letter'].map((p) => h('option', { value: p, selected: st.policy === p }, p)))));
      next.onclick = () => { st.step = 4; render(); };
    } else {
      const how = config().mode === 'full' ? 'in full' : config().mode === 'incremental' ? 'as a stream of their changes' : 'in full, then stream their changes';
      body.append(h('p', {}, 'The task will copy these ' + st.units.length + ' unit(s) ' + how + ':'),
        h('div', { class: 'summary', id: 'wz-summary' }, JSON.stringify(config(), null, 2)));
      next.textContent = 'Create and start';
      next.id = 'wz-create';
      next.onclick = async () => {
        next.disabled = true;
        try {
          const t = await api('POST', '/api/tasks', config());
          await api('POST', '/api/tasks/' + t.id + '/start');
          location.hash = '#/tasks/' + t.id;
        } catch (e) { toast(e.message, true); next.disabled = false; }
      };
    }
    body.append(h('div', { class: 'actions' }, back, next));
    main.replaceChildren(h('h1', {}, 'New task'),
      h('div', { class: 'steps' }, labels.map((l, i) => h('span', { class: i + 1 === st.step ? 'on' : '' }, l))), body);
  };
  render();
}

// ---------- a task ----------
async function taskPage(id) {
  const task = await api('GET', '/api/tasks/' + id);
  const state = { units: new Map(), status: task.status, tab: 'realtime' };
  const status = h('span', { id: 'task-status' });
  const overallBar = h('div', { id: 'overall-bar' });
  const overallText = h('span', { id: 'overall-text' });
  const stats = h('div', { class: 'grid' });
  const tbody = h('tbody', {});
  const logBox = h('div', { class: 'logs', id: 'log-list' });
  const errorBox = h('p', { class: 'err', id: 'task-error' });
  const btn = (id2, label, path, cls) => h('button', { id: id2, class: cls, onclick: async () => {
    try { await api('POST', '/api/tasks/' + id + '/' + path); toast(label + ': ok'); } catch (e) { toast(e.message, true); }
  } }, label);
  const buttons = { start: btn('btn-start', 'Start', 'start'), stop: btn('btn-stop', 'Stop', 'stop', 'danger'),
    resume: btn('btn-resume', 'Resume', 'resume', 'secondary'), retry: btn('btn-retry', 'Retry failed', 'retry', 'secondary') };
  const verifyBox = h('div', { id: 'verify-result' });
  buttons.verify = h('button', { id: 'btn-verify', class: 'secondary', onclick: async () => {
    buttons.verify.disabled = true;
    verifyBox.replaceChildren(h('p', { class: 'hint' }, 'Comparing the target with the source...'));
    try {
      const r = await api('POST', '/api/tasks/' + id + '/verify');
      verifyBox.replaceChildren(
        h('p', { class: r.equal ? 'ok' : 'err', id: 'verify-verdict' }, r.equal ? 'Verified: the target equals the source.' : 'Differences found.'),
        h('table', {}, h('thead', {}, h('tr', {}, ['Unit', 'Method', 'Source rows', 'Target rows', 'Missing', 'Extra', 'Different'].map((c) => h('th', {}, c)))),
          h('tbody', {}, r.units.map((u) => h('tr', {}, h('td', {}, u.unit), h('td', {}, u.method), h('td', { class: 'num' }, fmt(u.source_rows)),
            h('td', { class: 'num' }, fmt(u.target_rows)), h('td', { class: 'num' }, fmt(u.missing)), h('td', { class: 'num' }, fmt(u.extra)), h('td', { class: 'num' }, fmt(u.different)))))));
    } catch (e) { verifyBox.replaceChildren(h('p', { class: 'err' }, e.message)); }
    buttons.verify.disabled = ['running', 'queued', 'stopping'].includes(state.status);
  } }, 'Verify');
  const paintStatus = (s, error, overall) => {
    state.status = s;
    status.replaceChildren(badge(s));
    errorBox.textContent = error || '';
    const active = ['running', 'queued', 'stopping'].includes(s);
    buttons.start.disabled = active;
    buttons.stop.disabled = !active || s === 'stopping';
    buttons.resume.disabled = active || !['stopped', 'failed'].includes(s);
    buttons.retry.disabled = active || s !== 'failed';
    if (buttons.verify) buttons.verify.disabled = active;
    if (overall) paintOverall(overall);
  };
  const paintOverall = (o) => {
    overallBar.replaceChildren(bar(o.percent, state.status, true));
    overallText.textContent = o.percent.toFixed(1) + '%';
    stats.replaceChildren(
      h('div', { class: 'stat' }, 'Written', h('b', { id: 'stat-written' }, fmt(o.written))),
      h('div', { class: 'stat' }, 'Rows / s', h('b', {}, fmt(Math.round(o.rate)))),
      h('div', { class: 'stat' }, 'Rejected', h('b', {}, fmt(o.rejected))),
      h('div', { class: 'stat' }, 'Units done', h('b', {}, o.units_done + ' / ' + o.units_total + (o.units_failed ? ' (' + o.units_failed + ' failed)' : ''))));
  };
  const paintUnits = () => {
    tbody.replaceChildren(...[...state.units.values()].map((u) => h('tr', { 'data-unit': u.unit },
      h('td', {}, u.unit), h('td', {}, u.target || ''), h('td', {}, badge(u.state)),
      h('td', {}, bar(u.percent, u.state)),
      h('td', { class: 'num' }, u.percent === null ? '' : Math.floor(u.percent) + '%'),
      h('td', { class: 'num' }, fmt(u.written) + (u.estimated_total ? ' / ' + fmt(u.estimated_total) : '')),
      h('td', { class: 'num' }, u.state === 'running' ? fmt(Math.round(u.rate)) : ''),
      h('td', { class: 'err' }, u.error || ''))));
  };
  const logLine = (l) => h('div', { class: l.category === 'error' ? 'error' : '' },
    h('span', { class: 'ts' }, l.ts.replace('T', ' ').replace(/\..*/, '')), l.unit ? '[' + l.unit + '] ' : '', l.message);
  const loadLogs = async () => {
    const page = await api('GET', '/api/tasks/' + id + '/logs?category=' + state.tab + '&limit=200');
    logBox.replaceChildren(...page.lines.reverse().map(logLine));
    logBox.scrollTop = logBox.scrollHeight;
  };
  const tabs = h('div', { class: 'tabs' }, ['realtime', 'error'].map((t) => h('button', { id: 'tab-' + t, class: t === state.tab ? 'on' : '', onclick: (e) => {
    state.tab = t;
    tabs.querySelectorAll('button').forEach((b) => b.classList.toggle('on', b === e.target));
    loadLogs();
  } }, t === 'realtime' ? 'Realtime' : 'Errors')));
  main.replaceChildren(
    h('h1', {}, task.name, ' ', status),
    h('div', { class: 'card' },
      h('div', { style: 'display:flex;gap:12px;align-items:center' }, h('div', { style: 'flex:1' }, overallBar), overallText),
      stats, errorBox,
      h('div', { class: 'actions' }, buttons.start, buttons.stop, buttons.resume, buttons.retry, buttons.verify), verifyBox),
    h('h2', {}, 'Units'),
    h('table', { id: 'units' }, h('thead', {}, h('tr', {}, h('th', {}, 'Unit'), h('th', {}, 'Target'), h('th', {}, 'State'),
      h('th', {}, 'Progress'), h('th', { class: 'num' }, ''), h('th', { class: 'num' }, 'Written'), h('th', { class: 'num' }, 'Rows / s'), h('th', {}, 'Error'))), tbody),
    h('h2', {}, 'Logs'), tabs, logBox);
  paintStatus(task.status, task.error, task.overall);
  loadLogs();
  // EventSource cannot send headers: the token goes as ?access_token= on this route only.
  stream = new EventSource('/api/tasks/' + id + '/events?access_token=' + encodeURIComponent(token()));
  const units = (list) => { list.forEach((u) => state.units.set(u.unit, u)); paintUnits(); };
  stream.addEventListener('snapshot', (e) => { const d = JSON.parse(e.data); state.units.clear(); units(d.units); paintStatus(d.status, d.error, d.overall); });
  stream.addEventListener('progress', (e) => { const d = JSON.parse(e.data); units(d.units); paintOverall(d.overall); });
  stream.addEventListener('unit', (e) => { const d = JSON.parse(e.data); units([d.unit]); paintOverall(d.overall); });
  stream.addEventListener('status', (e) => { const d = JSON.parse(e.data); paintStatus(d.status, d.error, d.overall); });
  stream.addEventListener('log', (e) => {
    const l = JSON.parse(e.data);
    if (state.tab === 'realtime' || l.category === state.tab) { logBox.append(logLine(l)); logBox.scrollTop = logBox.scrollHeight; }
  });
}

// ---------- routing ----------
async function route() {
  if (stream) { stream.close(); stream = null; }
  const hash = location.hash || '#/tasks';
  const logout = document.getElementById('logout');
  if (!token() && hash !== '#/login') { location.hash = '#/login'; return; }
  logout.hidden = !token();
  const parts = hash.slice(2).split('/');
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', a.dataset.nav === parts[0]));
  try {
    if (parts[0] === 'login') loginPage();
    else if (parts[0] === 'datasources') await dataSourcesPage(parts[1]);
    else if (parts[0] === 'new') await wizardPage();
    else if (parts[0] === 'tasks' && parts[1]) await taskPage(parts[1]);
    else await tasksPage();
  } catch (e) { main.replaceChildren(h('p', { class: 'err' }, e.message)); }
}

document.getElementById('logout').addEventListener('click', () => { sessionStorage.removeItem('datatrace-token'); location.hash = '#/login'; });
window.addEventListener('hashchange', route);
route();
