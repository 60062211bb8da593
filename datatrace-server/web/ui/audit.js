// The audit log (admins): who did what, on what, when, and how it ended; filtered by actor
// and action, paged back by id.
'use strict';
import { h, api, main } from './lib.js';

export async function auditPage(filter = {}) {
  const q = new URLSearchParams({ limit: '100' });
  if (filter.actor) q.set('actor', filter.actor);
  if (filter.action) q.set('action', filter.action);
  if (filter.before) q.set('before', String(filter.before));
  const rows = await api('GET', '/api/audit?' + q.toString());
  const actor = h('input', { id: 'audit-actor', placeholder: 'user', value: filter.actor || '' });
  const action = h('input', { id: 'audit-action', placeholder: 'task, login, user.create, ...', value: filter.action || '' });
  const last = rows.length ? rows[rows.length - 1].id : null;
  main().replaceChildren(
    h('h1', {}, 'Audit log'),
    h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); auditPage({ actor: actor.value.trim(), action: action.value.trim() }); } },
      h('label', { for: 'audit-actor' }, 'Actor'), actor,
      h('label', { for: 'audit-action' }, 'Action'), action,
      h('button', { type: 'submit', id: 'audit-filter' }, 'Filter')),
    h('table', { class: 'fixed', id: 'audit' },
      h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'On', 'Result'].map((c) => h('th', {}, c)))),
      h('tbody', {}, rows.map((r) => h('tr', { class: r.outcome === 'ok' ? '' : 'warn' },
        h('td', {}, r.ts), h('td', { class: 'clip' }, r.actor), h('td', {}, r.action),
        h('td', { class: 'clip' }, r.target || ''), h('td', {}, r.outcome))))),
    rows.length === 100
      ? h('button', { class: 'link', onclick: () => auditPage({ ...filter, before: last }) }, 'Older')
      : h('p', { class: 'hint' }, rows.length ? 'The oldest record is shown.' : 'Nothing recorded yet.'));
}
