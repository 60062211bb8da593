// The sign-in page: a user name and password (a session cookie), or a token.
'use strict';
import { h, api, auth, main, toast } from './lib.js';

export function loginPage() {
  const user = h('input', { id: 'username', autocomplete: 'username' });
  const password = h('input', { type: 'password', id: 'password', autocomplete: 'current-password' });
  const userForm = h('form', { class: 'card narrow', onsubmit: async (e) => {
    e.preventDefault();
    auth.clear();
    try {
      const me = await api('POST', '/api/login', { username: user.value.trim(), password: password.value });
      auth.session(me);
      password.value = '';
      location.hash = '#/tasks';
    } catch (err) { toast(err.status === 401 ? 'Wrong user name or password' : err.message, true); }
  } },
    h('h1', {}, 'Sign in'),
    h('label', { for: 'username' }, 'User name'), user,
    h('label', { for: 'password' }, 'Password'), password,
    h('div', { class: 'actions' }, h('button', { id: 'login-user-btn', type: 'submit' }, 'Sign in')));
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off' });
  const tokenForm = h('form', { class: 'card narrow', onsubmit: async (e) => {
    e.preventDefault();
    auth.clear();
    auth.set(input.value.trim());
    try {
      const me = await api('GET', '/api/me');
      sessionStorage.setItem('datatrace-user', JSON.stringify({ username: me.username, role: me.role }));
      location.hash = '#/tasks';
    } catch (err) { toast('The token was not accepted', true); }
  } },
    h('h2', {}, 'Or with a token'),
    h('label', { for: 'token' }, 'API token or server token'),
    input,
    h('p', { class: 'hint' }, 'An API token of yours, or the token given to datatrace serve (--token). It stays in this browser tab only.'),
    h('div', { class: 'actions' }, h('button', { id: 'login-btn', type: 'submit' }, 'Sign in with the token')));
  main().replaceChildren(userForm, tokenForm);
  user.focus();
}
