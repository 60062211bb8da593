// The task list, and the actions on a task shared with its page: edit, clone, delete.
'use strict';
import { h, api, main, toast, fmt, bar, taskBadge, cell, when, duration, ACTIVE, confirmed } from './lib.js';

export function elapsedOf(t) {
  if (!t.started_at) return null;
  const end = ACTIVE.includes(t.status) ? Date.now() : new Date(t.finished_at || Date.now()).getTime();
  return end - new Date(t.started_at).getTime();
}

export function taskActions(t, after) {
  const active = ACTIVE.includes(t.status);
  return [
    h('button', { class: 'secondary', 'data-action': 'edit', disabled: active, title: active ? 'Stop the task to change it' : '',
      onclick: () => { location.hash = '#/tasks/' + t.id + '/edit'; } }, 'Edit'), ' ',
    h('button', { class: 'secondary', 'data-action': 'clone', onclick: () => { location.hash = '#/tasks/' + t.id + '/clone'; } }, 'Clone'), ' ',
    h('button', { class: 'danger', 'data-action': 'delete', disabled: active, onclick: async () => {
      if (!confirmed('Delete task ' + t.name + ' with its history and logs? The data it copied stays where it is.')) return;
      try { await api('DELETE', '/api/tasks/' + t.id); toast('Deleted'); after(); } catch (e) { toast(e.message, true); }
    } }, 'Delete'),
  ];
}

export async function tasksPage() {
  const tasks = await api('GET', '/api/tasks');
  const reload = () => tasksPage();
  const rows = tasks.map((t) => h('tr', { 'data-id': t.id },
    h('td', { class: 'clip', title: t.name }, h('a', { href: '#/tasks/' + t.id }, t.name)),
    h('td', {}, taskBadge(t)),
    h('td', {}, bar(t.overall.percent, t.status)),
    h('td', { class: 'num' }, Math.floor(t.overall.percent) + '%'),
    h('td', { class: 'num' }, fmt(t.overall.written)),
    h('td', { class: 'num' }, t.overall.units_done + ' / ' + t.overall.units_total),
    cell(when(t.started_at)),
    h('td', { class: 'num' }, duration(elapsedOf(t))),
    h('td', { class: 'row-actions' }, taskActions(t, reload))));
  main().replaceChildren(
    h('h1', {}, 'Tasks'),
    tasks.length ? h('table', { id: 'task-list', class: 'fixed' },
      h('thead', {}, h('tr', {}, h('th', { class: 'w-name' }, 'Name'), h('th', { class: 'w-status' }, 'Status'), h('th', {}, 'Progress'),
        h('th', { class: 'num w-pct' }, ''), h('th', { class: 'num w-num' }, 'Written'), h('th', { class: 'num w-num' }, 'Units'),
        h('th', { class: 'w-time' }, 'Started'), h('th', { class: 'num w-num' }, 'Elapsed'), h('th', { class: 'w-actions' }, ''))),
      h('tbody', {}, rows)) : h('p', { class: 'hint' }, 'No tasks yet.'),
    h('div', { class: 'actions' }, h('button', { onclick: () => { location.hash = '#/new'; } }, 'New task')));
}
