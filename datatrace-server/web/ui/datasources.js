// Data sources: list (with a Test button whose result stays until the next test), add,
// edit. What each type of data source asks for is in KINDS, the one place that names them.
'use strict';
import { h, api, main, toast, cell, confirmed } from './lib.js';

// Per type (every name a connector answers to): its label, URL placeholder, the fields
// beyond name, URL and password, the keys of its units and targets, whether it streams.
// Filled from GET /api/connectors (the server's registry) by loadKinds().
export const KINDS = {};

export async function loadKinds() {
  if (Object.keys(KINDS).length) return KINDS;
  for (const c of await api('GET', '/api/connectors')) {
    const fields = [];
    if (c.username) fields.push({ key: 'username', label: 'User name', type: 'text' });
    if (c.api_key) fields.push({ key: 'api_key', label: 'API key', type: 'password', secret: 'has_api_key' });
    const kind = { type: c.type, label: c.label, url: c.url_example, fields, dataSource: c.data_source,
      units: c.units_label, unitsKey: c.units_key, target: c.target_label, targetKey: c.target_key,
      streams: !!c.stream_modes, taskFields: c.task_fields || [] };
    for (const t of c.types || [c.type]) KINDS[t] = kind;
  }
  return KINDS;
}

// The kind of a type (a fallback for one the server no longer knows).
export function kindOf(type) {
  return KINDS[type] || { type, label: type, url: '', fields: [], units: 'Units', unitsKey: 'units',
    target: 'Target', targetKey: 'target', streams: false, taskFields: [] };
}

// The last test result per data source id, kept across re-renders of the page.
const tested = new Map();

function testCell(d) {
  const result = h('span', { class: 'test-result' });
  const paint = () => {
    const t = tested.get(d.id);
    if (!t) { result.textContent = ''; result.className = 'test-result'; return; }
    result.textContent = t.text;
    result.className = 'test-result ' + t.cls;
    result.title = t.detail || t.text;
  };
  paint();
  const button = h('button', { class: 'secondary test', onclick: async () => {
    tested.set(d.id, { text: 'testing...', cls: '' });
    paint();
    try {
      const t = await api('POST', '/api/datasources/' + d.id + '/test');
      tested.set(d.id, t.ok
        ? { text: 'OK: ' + t.flavor + ' ' + t.version, cls: 'ok', detail: (t.details || []).join('\n') }
        : { text: t.error, cls: 'err' });
    } catch (e) { tested.set(d.id, { text: e.message, cls: 'err' }); }
    paint();
  } }, 'Test');
  return [button, ' ', result];
}

export async function dataSourcesPage(editId) {
  const list = await api('GET', '/api/datasources');
  await loadKinds();
  // Each data-source connector once (under its canonical type).
  const offered = Object.entries(KINDS).filter(([t, k]) => k.dataSource && k.type === t);
  const editing = list.find((d) => String(d.id) === String(editId));
  const rows = list.map((d) => h('tr', { 'data-id': d.id },
    cell(d.name), h('td', {}, kindOf(d.type).label), cell(d.url),
    h('td', {}, d.has_password || d.has_api_key ? 'stored (encrypted)' : 'none'),
    h('td', { class: 'row-actions' },
      testCell(d), ' ',
      h('button', { class: 'secondary', onclick: () => { location.hash = '#/datasources/' + d.id; } }, 'Edit'), ' ',
      h('button', { class: 'danger', onclick: async () => {
        if (!confirmed('Delete data source ' + d.name + '?')) return;
        try { await api('DELETE', '/api/datasources/' + d.id); tested.delete(d.id); dataSourcesPage(); } catch (e) { toast(e.message, true); }
      } }, 'Delete'))));

  const f = {
    name: h('input', { type: 'text', id: 'ds-name', value: editing ? editing.name : '' }),
    type: h('select', { id: 'ds-type' }, offered.map(([k, v]) => h('option', { value: k }, v.label))),
    url: h('input', { type: 'text', id: 'ds-url', value: editing ? editing.url : '' }),
    password: h('input', { type: 'password', id: 'ds-password', autocomplete: 'new-password', placeholder: editing && editing.has_password ? '(unchanged)' : '' }),
  };
  if (editing) f.type.value = kindOf(editing.type).type;
  // The type-specific fields, each with its label in one block hidden as a whole.
  const extra = {};
  const blocks = [];
  for (const [kind, spec] of offered) {
    for (const fld of spec.fields) {
      // One id per kind: two kinds with the same field (a user name) need two labels.
      const id = 'ds-' + kind + '-' + fld.key.replace('_', '-');
      const input = h('input', { type: fld.type, id, autocomplete: fld.type === 'password' ? 'off' : undefined,
        value: editing && !fld.secret && editing[fld.key] ? editing[fld.key] : '',
        placeholder: editing && fld.secret && editing[fld.secret] ? '(unchanged)' : '' });
      extra[fld.key] = { input, kind };
      blocks.push(h('div', { class: 'field', 'data-kind': kind }, h('label', { for: id }, fld.label), input));
    }
  }
  const sync = () => {
    blocks.forEach((b) => { b.hidden = b.dataset.kind !== f.type.value; });
    f.url.placeholder = kindOf(f.type.value).url;
  };
  f.type.addEventListener('change', sync);
  sync();
  const form = h('form', { class: 'card', id: 'ds-form', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: f.name.value, type: f.type.value, url: f.url.value };
    for (const [key, { input, kind }] of Object.entries(extra)) {
      if (kind === f.type.value && input.value) body[key] = input.value;
    }
    if (f.password.value) body.password = f.password.value;
    try {
      if (editing) await api('PUT', '/api/datasources/' + editing.id, body);
      else await api('POST', '/api/datasources', body);
      if (editing) tested.delete(editing.id);
      toast('Saved');
      if (location.hash === '#/datasources') dataSourcesPage(); else location.hash = '#/datasources';
    } catch (err) { toast(err.message, true); }
  } },
    h('h2', {}, editing ? 'Edit ' + editing.name : 'Add a data source'),
    h('label', { for: 'ds-name' }, 'Name'), f.name,
    h('label', { for: 'ds-type' }, 'Type'), f.type,
    h('label', { for: 'ds-url' }, 'URL'), f.url,
    h('div', { class: 'hint' }, 'No password in the URL: use the field below, it is stored encrypted and never shown again. Pointing the URL at another host or port needs the password again.'),
    blocks,
    h('label', { for: 'ds-password' }, 'Password'), f.password,
    h('div', { class: 'actions' }, h('button', { id: 'ds-save', type: 'submit' }, editing ? 'Save' : 'Add'),
      editing && h('button', { type: 'button', class: 'secondary', onclick: () => { location.hash = '#/datasources'; } }, 'Cancel')));
  main().replaceChildren(
    h('h1', {}, 'Data sources'),
    list.length ? h('table', { id: 'ds-list', class: 'fixed' },
      h('thead', {}, h('tr', {}, h('th', { class: 'w-name' }, 'Name'), h('th', { class: 'w-type' }, 'Type'), h('th', {}, 'URL'), h('th', { class: 'w-type' }, 'Secret'), h('th', { class: 'w-actions' }, ''))),
      h('tbody', {}, rows)) : h('p', { class: 'hint' }, 'No data sources yet: add the servers and clusters to copy between.'),
    form);
}
