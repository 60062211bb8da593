// Log views: a task's logs (tabs, search, older pages, live lines without gaps) and the
// server's own log page.
'use strict';
import { h, api, main } from './lib.js';

function logLine(l) {
  return h('div', { class: 'line ' + (l.category === 'error' ? 'error ' : '') + (l.level || ''), 'data-id': l.id },
    h('span', { class: 'ts' }, (l.ts || '').replace('T', ' ').replace(/\..*/, '')),
    l.unit ? h('span', { class: 'unit' }, '[' + l.unit + '] ') : null, l.message);
}

// A log panel over `base` (`/api/tasks/3/logs` or `/api/logs`): tabs for categories, a
// search box, "older" paging, and `push(line)` / `since()` for live lines.
export function logPanel(base, tabs) {
  const st = { tab: tabs[0][0], q: '', newest: 0, oldest: null, more: false };
  const list = h('div', { class: 'logs', id: 'log-list' });
  const older = h('button', { class: 'secondary small', id: 'log-older', hidden: true }, 'Older lines');
  const search = h('input', { type: 'search', id: 'log-search', placeholder: 'Search the logs' });
  const query = (extra) => {
    const p = new URLSearchParams({ category: st.tab, limit: '200' });
    if (st.q) p.set('q', st.q);
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    return base + '?' + p.toString();
  };
  const matches = (l) => (st.tab === 'realtime' || l.category === st.tab)
    && (!st.q || l.message.toLowerCase().includes(st.q.toLowerCase()));
  const atBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 30;
  const append = (lines) => {
    const stick = atBottom();
    for (const l of lines) {
      if (l.id <= st.newest || !matches(l)) continue;
      list.append(logLine(l));
      st.newest = l.id;
    }
    if (stick) list.scrollTop = list.scrollHeight;
  };
  const load = async () => {
    const page = await api('GET', query());
    const lines = page.lines.slice().reverse();
    list.replaceChildren(...lines.map(logLine));
    st.newest = lines.length ? lines[lines.length - 1].id : st.newest;
    st.oldest = lines.length ? lines[0].id : null;
    st.more = page.next_before !== null && page.next_before !== undefined;
    older.hidden = !st.more;
    if (!lines.length) list.replaceChildren(h('div', { class: 'hint' }, st.q ? 'No line matches.' : 'No lines yet.'));
    list.scrollTop = list.scrollHeight;
  };
  older.onclick = async () => {
    if (st.oldest === null) return;
    const page = await api('GET', query({ before: String(st.oldest) }));
    const lines = page.lines.slice().reverse();
    const height = list.scrollHeight;
    list.prepend(...lines.map(logLine));
    if (lines.length) st.oldest = lines[0].id;
    older.hidden = page.next_before === null || page.next_before === undefined;
    list.scrollTop = list.scrollHeight - height;
  };
  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => { st.q = search.value.trim(); st.newest = 0; load(); }, 250);
  });
  const tabBar = h('div', { class: 'tabs' }, tabs.map(([t, label]) => h('button', { id: 'tab-' + t, class: t === st.tab ? 'on' : '', onclick: (e) => {
    st.tab = t;
    tabBar.querySelectorAll('button').forEach((b) => b.classList.toggle('on', b === e.target));
    st.newest = 0;
    load();
  } }, label)), h('span', { class: 'spacer' }), search);
  return {
    node: h('div', { class: 'log-panel' }, tabBar, h('div', { class: 'older' }, older), list),
    load,
    push(line) { append([line]); },
    // Lines written since the newest one shown (after a reconnect, or the first subscribe).
    async since() {
      if (!st.newest) return;
      const page = await api('GET', query({ after: String(st.newest), limit: '1000' }));
      append(page.lines);
    },
  };
}

export async function serverLogsPage() {
  const panel = logPanel('/api/logs', [['realtime', 'All'], ['error', 'Errors'], ['system', 'System']]);
  main().replaceChildren(h('h1', {}, 'Server logs'), panel.node);
  await panel.load();
}
