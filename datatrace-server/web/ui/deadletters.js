// A task's dead letters: filters, a paged table with state badges, an inspect dialog with
// the record's values and error, replay / discard (operators), one or all matching.
// Everything the server sends is rendered as text (h() never parses HTML).
'use strict';
import { h, api, auth, toast, fmt, badge, when, cell, confirmed } from './lib.js';

const canAct = () => {
  const me = auth.user();
  return !!me && (me.role === 'operator' || me.role === 'admin');
};

export function deadLetterPanel(taskId) {
  const base = '/api/tasks/' + taskId + '/dead-letters';
  const st = { next: null };
  const unit = h('input', { type: 'text', id: 'dl-unit', placeholder: 'Unit (table or index)' });
  const q = h('input', { type: 'search', id: 'dl-q', placeholder: 'Error or key contains' });
  const state = h('select', { id: 'dl-state' }, h('option', { value: '' }, 'Any state'),
    ['new', 'replayed', 'discarded'].map((s) => h('option', { value: s }, s)));
  const since = h('input', { type: 'datetime-local', id: 'dl-since', title: 'Last rejected from' });
  const until = h('input', { type: 'datetime-local', id: 'dl-until', title: 'Last rejected before' });
  const counts = h('p', { id: 'dl-counts', class: 'hint' });
  const tbody = h('tbody', { id: 'dl-rows' });
  const more = h('button', { type: 'button', class: 'secondary small', id: 'dl-more', hidden: true }, 'Older entries');
  const dialog = h('dialog', { id: 'dl-dialog' });

  const params = (bulk) => {
    const p = new URLSearchParams();
    if (unit.value.trim()) p.set('unit', unit.value.trim());
    if (q.value.trim()) p.set('q', q.value.trim());
    if (!bulk && state.value) p.set('state', state.value);
    if (since.value) p.set('since', new Date(since.value).toISOString());
    if (until.value) p.set('until', new Date(until.value).toISOString());
    return p;
  };
  const act = async (path, what) => {
    try {
      const r = await api('POST', path);
      toast(what + ': ' + fmt(r.done) + (r.refused ? ', ' + fmt(r.refused) + ' refused again' : ''), r.refused > 0);
    } catch (e) { toast(e.message, true); }
    await load();
  };
  const actions = (e) => {
    const cells = [h('button', { type: 'button', class: 'secondary small inspect', onclick: () => inspect(e.id) }, 'Inspect')];
    if (canAct() && e.state === 'new') {
      cells.push(h('button', { type: 'button', class: 'small replay', onclick: () => act(base + '/' + e.id + '/replay', 'Replayed') }, 'Replay'),
        h('button', { type: 'button', class: 'danger small discard', onclick: () => act(base + '/' + e.id + '/discard', 'Discarded') }, 'Discard'));
    }
    return cells;
  };
  const row = (e) => h('tr', { 'data-id': e.id, 'data-key': e.key },
    cell(e.unit), cell(e.key, 'mono'), h('td', {}, badge('dl-' + e.state, e.state)),
    h('td', { class: 'num' }, fmt(e.count)), h('td', {}, when(e.last_at)), cell(e.error, 'err'),
    h('td', { class: 'row-actions' }, actions(e)));

  async function inspect(id) {
    let e;
    try { e = await api('GET', base + '/' + id); } catch (err) { toast(err.message, true); return; }
    const fields = (e.record && e.record.fields) || [];
    dialog.replaceChildren(h('form', { method: 'dialog', class: 'dl-detail' },
      h('h2', {}, 'Dead letter ', h('span', { class: 'mono' }, e.key), ' ', badge('dl-' + e.state, e.state)),
      h('p', {}, 'Unit: ', h('b', {}, e.unit), ' (' + e.stage + '), rejected ' + fmt(e.count) + ' time(s), '
        + fmt(e.attempts) + ' attempt(s); first ' + when(e.first_at) + ', last ' + when(e.last_at)
        + (e.state_by ? '; ' + e.state + ' by ' + e.state_by + ' ' + when(e.state_at) : '')),
      h('h3', {}, 'Error'), h('pre', { class: 'summary', id: 'dl-error' }, e.error),
      h('h3', {}, 'Record (' + (e.record ? e.record.op : '') + ')'),
      h('table', { id: 'dl-fields' }, h('thead', {}, h('tr', {}, h('th', {}, 'Field'), h('th', {}, 'Type'), h('th', {}, 'Value'))),
        h('tbody', {}, fields.map((f) => h('tr', { class: f.key ? 'key' : '' },
          h('td', {}, f.name + (f.key ? ' (key)' : '')), h('td', { class: 'hint' }, f.type || ''),
          h('td', { class: 'mono' + (f.null ? ' hint' : '') }, f.value))))),
      h('div', { class: 'actions' },
        canAct() && e.state === 'new' ? h('button', { type: 'button', id: 'dl-replay-one', onclick: () => { dialog.close(); act(base + '/' + e.id + '/replay', 'Replayed'); } }, 'Replay') : null,
        canAct() && e.state === 'new' ? h('button', { type: 'button', class: 'danger', id: 'dl-discard-one', onclick: () => { dialog.close(); act(base + '/' + e.id + '/discard', 'Discarded'); } }, 'Discard') : null,
        h('button', { type: 'submit', class: 'secondary', id: 'dl-close' }, 'Close'))));
    dialog.showModal();
  }

  async function load(older) {
    const p = params(false);
    p.set('limit', '50');
    if (older && st.next) p.set('before', String(st.next));
    let page;
    try { page = await api('GET', base + '?' + p.toString()); } catch (e) { counts.textContent = e.message; return; }
    const rows = page.dead_letters.map(row);
    if (older) tbody.append(...rows); else tbody.replaceChildren(...rows);
    if (!older && !rows.length) tbody.replaceChildren(h('tr', {}, h('td', { colspan: '7', class: 'hint' }, 'No dead letters match.')));
    st.next = page.next_before;
    more.hidden = page.next_before === null || page.next_before === undefined;
    const c = page.counts;
    counts.textContent = fmt(page.total) + ' matching; ' + fmt(c.new) + ' new, ' + fmt(c.replayed) + ' replayed, ' + fmt(c.discarded) + ' discarded';
  }
  more.onclick = () => load(true);

  const bulk = (verb, what) => async () => {
    const p = params(true);
    const scope = p.toString() ? 'every new dead letter matching the filter' : 'every new dead letter of this task';
    if (!confirmed(verb + ' ' + scope + '?')) return;
    await act(base + '/' + verb.toLowerCase() + (p.toString() ? '?' + p.toString() : ''), what);
  };
  const filterForm = h('form', { class: 'row', id: 'dl-filter', onsubmit: (e) => { e.preventDefault(); load(); } },
    unit, q, state, h('label', { for: 'dl-since' }, 'from'), since, h('label', { for: 'dl-until' }, 'before'), until,
    h('button', { type: 'submit', id: 'dl-apply' }, 'Filter'));
  const bulkBar = h('div', { class: 'actions' }, canAct() ? [
    h('button', { type: 'button', id: 'dl-replay-all', onclick: bulk('Replay', 'Replayed') }, 'Replay all matching'),
    h('button', { type: 'button', class: 'danger', id: 'dl-discard-all', onclick: bulk('Discard', 'Discarded') }, 'Discard all matching'),
  ] : h('span', { class: 'hint' }, 'Replaying and discarding needs the operator role.'));
  return {
    node: h('div', { class: 'dl-panel', id: 'dead-letters' }, filterForm, counts,
      h('table', { class: 'fixed', id: 'dl-table' }, h('thead', {}, h('tr', {},
        h('th', { class: 'w-name' }, 'Unit'), h('th', { class: 'w-type' }, 'Key'), h('th', { class: 'w-pct' }, 'State'),
        h('th', { class: 'num w-pct' }, 'Count'), h('th', { class: 'w-time' }, 'Last rejected'), h('th', {}, 'Error'),
        h('th', { class: 'w-actions' }, ''))), tbody),
      h('div', { class: 'older' }, more), bulkBar, dialog),
    load,
  };
}
