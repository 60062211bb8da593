// The task wizard: new, edit (a stopped task) and clone. Four steps: source and target ->
// tables / indices (picked from the live source: filter, select all, or patterns) ->
// parameters -> confirm. Keys of an existing task that the wizard does not show are kept.
'use strict';
import { h, api, main, toast } from './lib.js';
import { loadKinds, kindOf } from './datasources.js';

const unitsKey = (type) => kindOf(type).unitsKey;
const targetKey = (type) => kindOf(type).targetKey;
// The keys a kind asks of a task's source or target (a Kafka source's group, ...).
const fieldsOf = (type, side) => kindOf(type).taskFields.filter((f) => f.side === side);

// mode: 'new' | 'edit' | 'clone'
export async function wizardPage(mode, taskId) {
  const sources = await api('GET', '/api/datasources');
  await loadKinds();
  const titleText = mode === 'edit' ? 'Edit task' : mode === 'clone' ? 'Clone task' : 'New task';
  if (!sources.length) {
    main().replaceChildren(h('h1', {}, titleText), h('p', {}, 'First ', h('a', { href: '#/datasources' }, 'add a data source'), '.'));
    return;
  }
  const byId = (id) => sources.find((d) => d.id === Number(id));
  const st = { step: 1, source: sources[0].id, target: sources[sources.length - 1].id, units: [], naming: '{table}', name: '',
    batch: 3000, concurrency: 2, policy: 'fail', mode: 'full', base: null, fields: { source: {}, target: {} } };
  // a task field's value: as typed, else its default (`{task}`: the task's name)
  const fieldValue = (side, f) => st.fields[side][f.key] ?? f.default.replace('{task}', st.name);
  if (taskId) {
    const t = await api('GET', '/api/tasks/' + taskId);
    const c = t.config;
    st.base = c;
    st.source = c.source.datasource || st.source;
    st.target = c.target.datasource || st.target;
    const src = byId(st.source);
    const dst = byId(st.target);
    st.units = (src && c.source[unitsKey(src.type)]) || [];
    st.naming = (dst && c.target[targetKey(dst.type)]) || st.naming;
    st.name = mode === 'clone' ? c.name + '-copy' : c.name;
    const s = c.settings || {};
    st.batch = s.batch_size || st.batch;
    st.concurrency = s.concurrency || st.concurrency;
    st.policy = s.error_policy || st.policy;
    st.mode = c.mode || 'full';
    for (const [side, ds] of [['source', src], ['target', dst]]) {
      for (const f of ds ? fieldsOf(ds.type, side) : []) {
        if (c[side][f.key] !== undefined) st.fields[side][f.key] = String(c[side][f.key]);
      }
    }
  }
  const labels = ['1. Source and target', '2. Tables / indices', '3. Parameters', '4. Confirm'];
  const config = () => {
    const src = byId(st.source);
    const dst = byId(st.target);
    const base = st.base ? JSON.parse(JSON.stringify(st.base)) : {};
    const keepSource = st.base && st.base.source.datasource === src.id ? base.source : {};
    const keepTarget = st.base && st.base.target.datasource === dst.id ? base.target : {};
    const source = Object.assign(keepSource, { datasource: src.id });
    delete source.tables; delete source.indices;
    source[unitsKey(src.type)] = st.units;
    for (const f of fieldsOf(src.type, 'source')) source[f.key] = fieldValue('source', f);
    const target = Object.assign(keepTarget, { datasource: dst.id });
    delete target.table; delete target.index;
    if (targetKey(dst.type)) target[targetKey(dst.type)] = st.naming;
    for (const f of fieldsOf(dst.type, 'target')) target[f.key] = fieldValue('target', f);
    const settings = Object.assign(base.settings || {}, { batch_size: Number(st.batch), concurrency: Number(st.concurrency), error_policy: st.policy });
    const out = Object.assign(base, { name: st.name, mode: kindOf(src.type).streams ? st.mode : 'full', source, target, settings });
    return out;
  };
  const render = () => {
    const body = h('div', { class: 'card', id: 'wizard', 'data-step': st.step });
    const next = h('button', { id: 'wz-next', type: 'button' }, 'Next');
    const back = h('button', { class: 'secondary', id: 'wz-back', type: 'button', disabled: st.step === 1, onclick: () => { st.step -= 1; render(); } }, 'Back');
    let extra = null;
    if (st.step === 1) stepEndpoints(body, st, sources, next, render);
    else if (st.step === 2) stepUnits(body, st, byId(st.source), next, render);
    else if (st.step === 3) stepParams(body, st, byId, fieldValue, next, render);
    else extra = stepConfirm(body, st, config, next, mode, taskId);
    body.append(h('div', { class: 'actions' }, back, next, extra));
    main().replaceChildren(h('h1', {}, titleText),
      h('div', { class: 'steps' }, labels.map((l, i) => h('span', { class: i + 1 === st.step ? 'on' : '' }, l))), body);
  };
  render();
}

function stepEndpoints(body, st, sources, next, render) {
  const opts = (sel) => sources.map((d) => h('option', { value: d.id, selected: d.id === sel }, d.name + ' (' + d.type + ')'));
  const s = h('select', { id: 'wz-source', onchange: (e) => { st.source = Number(e.target.value); st.units = []; } }, opts(st.source));
  const t = h('select', { id: 'wz-target', onchange: (e) => { st.target = Number(e.target.value); } }, opts(st.target));
  body.append(h('label', { for: 'wz-source' }, 'Read from'), s, h('label', { for: 'wz-target' }, 'Write to'), t);
  next.onclick = () => { st.step = 2; render(); };
}

function stepUnits(body, st, src, next, render) {
  const kind = kindOf(src.type);
  const filter = h('input', { type: 'text', id: 'wz-filter', placeholder: 'Filter by name' });
  const box = h('div', { class: 'units-pick', id: 'wz-units' }, 'Loading from ' + src.name + '...');
  const chosen = h('div', { class: 'chosen', id: 'wz-chosen' });
  const examples = { tables: 'shop.* or shop.order_*', topics: '^shop\\.inventory\\..* (a regular expression)' };
  const pattern = h('input', { type: 'text', id: 'wz-pattern', placeholder: examples[kind.unitsKey] || 'logs-*' });
  let all = [];
  const sync = () => {
    next.disabled = !st.units.length;
    chosen.replaceChildren(...(st.units.length ? st.units.map((u) => h('span', { class: 'chip', 'data-unit': u }, u,
      h('button', { type: 'button', class: 'link', title: 'Remove', onclick: () => { st.units = st.units.filter((x) => x !== u); paint(); } }, '×'))) : [h('span', { class: 'hint' }, 'Nothing chosen yet.')]));
  };
  const visible = () => all.filter((u) => u.toLowerCase().includes(filter.value.toLowerCase()));
  const paint = () => {
    const shown = visible();
    box.replaceChildren(...(shown.length ? shown.map((u) => h('label', {},
      h('input', { type: 'checkbox', value: u, checked: st.units.includes(u), onchange: (e) => {
        st.units = e.target.checked ? st.units.concat([u]) : st.units.filter((x) => x !== u);
        sync();
      } }), ' ', u)) : [all.length ? 'Nothing matches the filter.' : 'Nothing found.']));
    sync();
  };
  filter.addEventListener('input', paint);
  const selectAll = h('button', { type: 'button', class: 'secondary', id: 'wz-all', onclick: () => {
    const add = visible().filter((u) => !st.units.includes(u));
    st.units = st.units.concat(add);
    paint();
  } }, 'Select all shown');
  const none = h('button', { type: 'button', class: 'secondary', id: 'wz-none', onclick: () => {
    const shown = new Set(visible());
    st.units = st.units.filter((u) => !shown.has(u));
    paint();
  } }, 'Clear shown');
  const addPattern = h('button', { type: 'button', class: 'secondary', id: 'wz-add-pattern', onclick: () => {
    const p = pattern.value.trim();
    if (p && !st.units.includes(p)) st.units = st.units.concat([p]);
    pattern.value = '';
    paint();
  } }, 'Add pattern');
  body.append(h('label', { for: 'wz-filter' }, kind.units), h('div', { class: 'inline' }, filter, selectAll, none), box,
    h('label', { for: 'wz-pattern' }, 'Or a pattern (also matches ' + kind.units.toLowerCase() + ' created later)'),
    h('div', { class: 'inline' }, pattern, addPattern), h('label', {}, 'Chosen'), chosen);
  next.disabled = true;
  api('GET', '/api/datasources/' + src.id + '/units').then((units) => { all = units; paint(); })
    .catch((e) => { box.replaceChildren(h('span', { class: 'err' }, e.message)); sync(); });
  sync();
  next.onclick = () => { st.step = 3; render(); };
}

function stepParams(body, st, byId, fieldValue, next, render) {
  const src = byId(st.source);
  const dst = byId(st.target);
  if (!st.name) st.name = (src.name + '-to-' + dst.name).replace(/[^A-Za-z0-9._-]/g, '-');
  const field = (id, label, key, type, hint) => [h('label', { for: id }, label),
    h('input', { type, id, value: st[key], oninput: (e) => { st[key] = e.target.value; } }), hint && h('div', { class: 'hint' }, hint)];
  // the source's and target's own keys (a Kafka source's consumer group, ...)
  const own = [['source', src], ['target', dst]].flatMap(([side, ds]) => fieldsOf(ds.type, side).map((f) => {
    const id = 'wz-' + side + '-' + f.key;
    return [h('label', { for: id }, f.label),
      h('input', { type: 'text', id, value: fieldValue(side, f), oninput: (e) => { st.fields[side][f.key] = e.target.value; } }),
      f.hint && h('div', { class: 'hint' }, f.hint)];
  }));
  body.append(h('div', {},
    field('wz-name', 'Task name', 'name', 'text'),
    targetKey(dst.type) ? field('wz-naming', kindOf(dst.type).target, 'naming', 'text', 'Patterns: {table} (the source table or index), {db}.') : null,
    own,
    field('wz-batch', 'Batch size', 'batch', 'number'),
    field('wz-concurrency', 'Units at the same time', 'concurrency', 'number'),
    kindOf(byId(st.source).type).streams && [h('label', { for: 'wz-mode' }, 'Mode'),
      h('select', { id: 'wz-mode', onchange: (e) => { st.mode = e.target.value; } },
        [['full', 'Full copy'], ['incremental', 'Incremental (changes only)'], ['full+incremental', 'Full copy, then changes (keeps running)']]
          .map(([v, l]) => h('option', { value: v, selected: st.mode === v }, l)))],
    h('label', { for: 'wz-policy' }, 'When the target rejects a record'),
    h('select', { id: 'wz-policy', onchange: (e) => { st.policy = e.target.value; } },
      [['fail', 'fail the unit'], ['skip', 'skip it (counted)'], ['dead-letter', 'keep it as a dead letter (replayable)']]
        .map(([v, l]) => h('option', { value: v, selected: st.policy === v }, l)))));
  next.onclick = () => { st.step = 4; render(); };
}

function stepConfirm(body, st, config, next, mode, taskId) {
  const c = config();
  const how = c.mode === 'full' ? 'in full' : c.mode === 'incremental' ? 'as a stream of their changes' : 'in full, then stream their changes';
  body.append(h('p', {}, 'The task will copy these ' + st.units.length + ' unit(s) ' + how + ':'),
    h('pre', { class: 'summary', id: 'wz-summary' }, JSON.stringify(c, null, 2)));
  const save = async (start) => {
    next.disabled = true;
    try {
      const t = mode === 'edit' ? await api('PUT', '/api/tasks/' + taskId, config()) : await api('POST', '/api/tasks', config());
      if (start) await api('POST', '/api/tasks/' + t.id + '/start');
      location.hash = '#/tasks/' + t.id;
    } catch (e) { toast(e.message, true); next.disabled = false; }
  };
  if (mode === 'edit') {
    next.textContent = 'Save';
    next.id = 'wz-save';
    next.onclick = () => save(false);
    return null;
  }
  next.textContent = 'Create and start';
  next.id = 'wz-create';
  next.onclick = () => save(true);
  return h('button', { type: 'button', class: 'secondary', id: 'wz-create-only', onclick: () => save(false) }, 'Create without starting');
}
