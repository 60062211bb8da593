// Users and tokens: my API tokens (create: shown once; revoke), and for admins the users
// with their roles (add, change role, new password, delete).
'use strict';
import { h, api, auth, main, toast } from './lib.js';

function table(head, rows) {
  return h('table', { class: 'fixed' },
    h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows));
}

async function tokensCard() {
  const card = h('section', { class: 'card' }, h('h2', {}, 'My API tokens'));
  const me = auth.user();
  if (!me || me.username === 'token') {
    card.append(h('p', { class: 'hint' }, 'The server token is not a user: sign in as a user to manage API tokens.'));
    return card;
  }
  const tokens = await api('GET', '/api/tokens');
  const shown = h('p', { id: 'new-token', class: 'hint' });
  const name = h('input', { id: 'token-name', placeholder: 'what it is for', maxlength: 64 });
  card.append(
    table(['Name', 'Created', 'Last used', 'State', ''], tokens.map((t) => h('tr', {},
      h('td', { class: 'clip' }, t.name), h('td', {}, t.created_at), h('td', {}, t.last_used_at || ''),
      h('td', {}, t.revoked_at ? 'revoked ' + t.revoked_at : 'live'),
      h('td', {}, t.revoked_at ? '' : h('button', { class: 'link', onclick: async () => {
        if (!confirm('Revoke the token "' + t.name + '"?')) return;
        try { await api('DELETE', '/api/tokens/' + t.id); toast('Revoked'); accountsPage(); } catch (e) { toast(e.message, true); }
      } }, 'Revoke'))))),
    h('form', { class: 'row', onsubmit: async (e) => {
      e.preventDefault();
      try {
        const t = await api('POST', '/api/tokens', { name: name.value.trim() });
        await accountsPage();
        const again = document.getElementById('new-token');
        if (again) again.replaceChildren('New token (shown once, copy it now): ', h('code', {}, t.token));
      } catch (err) { toast(err.message, true); }
    } }, name, h('button', { type: 'submit', id: 'token-create' }, 'Create token')),
    shown);
  return card;
}

async function usersCard() {
  const users = await api('GET', '/api/users');
  const roles = ['viewer', 'operator', 'admin'];
  const select = (value, id) => h('select', { id }, roles.map((r) => h('option', { value: r, selected: r === value }, r)));
  const name = h('input', { id: 'user-name', autocomplete: 'off', maxlength: 64 });
  const password = h('input', { id: 'user-password', type: 'password', autocomplete: 'new-password' });
  const role = select('viewer', 'user-role');
  const rows = users.map((u) => {
    const r = select(u.role);
    r.addEventListener('change', async () => {
      try { await api('PUT', '/api/users/' + u.id, { role: r.value }); toast('Role changed'); } catch (e) { toast(e.message, true); r.value = u.role; }
    });
    return h('tr', {},
      h('td', { class: 'clip' }, u.username), h('td', {}, r), h('td', {}, u.created_at),
      h('td', {},
        h('button', { class: 'link', onclick: async () => {
          const p = prompt('New password for ' + u.username + ' (at least 10 characters; signs them out)');
          if (!p) return;
          try { await api('PUT', '/api/users/' + u.id, { password: p }); toast('Password changed'); } catch (e) { toast(e.message, true); }
        } }, 'New password'), ' ',
        h('button', { class: 'link', onclick: async () => {
          if (!confirm('Delete the user "' + u.username + '" with their tokens?')) return;
          try { await api('DELETE', '/api/users/' + u.id); accountsPage(); } catch (e) { toast(e.message, true); }
        } }, 'Delete')));
  });
  return h('section', { class: 'card' }, h('h2', {}, 'Users'),
    table(['User', 'Role', 'Created', ''], rows),
    h('form', { class: 'row', onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api('POST', '/api/users', { username: name.value.trim(), password: password.value, role: role.value });
        toast('User added');
        accountsPage();
      } catch (err) { toast(err.message, true); }
    } },
    h('label', { for: 'user-name' }, 'User'), name,
    h('label', { for: 'user-password' }, 'Password'), password,
    h('label', { for: 'user-role' }, 'Role'), role,
    h('button', { type: 'submit', id: 'user-add' }, 'Add user')));
}

export async function accountsPage() {
  const me = auth.user();
  const parts = [h('h1', {}, 'Users & tokens'),
    h('p', { class: 'hint' }, me ? 'Signed in as ' + me.username + ' (' + me.role + ')' : '')];
  parts.push(await tokensCard());
  if (me && me.role === 'admin') parts.push(await usersCard());
  main().replaceChildren(...parts);
}
