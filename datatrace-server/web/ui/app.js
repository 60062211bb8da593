// DataTrace web UI: plain JavaScript modules, no build step. Routes by the URL's hash.
'use strict';
import { h, main, auth, api } from './lib.js';
import { loginPage } from './login.js';
import { dataSourcesPage } from './datasources.js';
import { tasksPage } from './tasks.js';
import { wizardPage } from './wizard.js';
import { taskPage, closeStream } from './task.js';
import { serverLogsPage } from './logs.js';
import { accountsPage } from './accounts.js';
import { auditPage } from './audit.js';
import { alertsPage } from './alerts.js';

async function route() {
  closeStream();
  main().classList.remove('stale');
  const hash = location.hash || '#/tasks';
  const logout = document.getElementById('logout');
  if (!auth.signedIn() && hash !== '#/login') { location.hash = '#/login'; return; }
  logout.hidden = !auth.signedIn();
  const me = auth.user();
  document.querySelectorAll('[data-role]').forEach((a) => {
    a.hidden = !(me && (a.dataset.role !== 'admin' || me.role === 'admin'));
  });
  const parts = hash.slice(2).split('/');
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', a.dataset.nav === parts[0]));
  try {
    if (parts[0] === 'login') loginPage();
    else if (parts[0] === 'datasources') await dataSourcesPage(parts[1]);
    else if (parts[0] === 'new') await wizardPage('new');
    else if (parts[0] === 'tasks' && parts[1] && parts[2] === 'edit') await wizardPage('edit', parts[1]);
    else if (parts[0] === 'tasks' && parts[1] && parts[2] === 'clone') await wizardPage('clone', parts[1]);
    else if (parts[0] === 'tasks' && parts[1] && parts[2] === 'dead-letters') await taskPage(parts[1], 'dead-letters');
    else if (parts[0] === 'tasks' && parts[1]) await taskPage(parts[1]);
    else if (parts[0] === 'logs') await serverLogsPage();
    else if (parts[0] === 'account') await accountsPage();
    else if (parts[0] === 'audit') await auditPage();
    else if (parts[0] === 'alerts') await alertsPage({ [parts[1]]: parts[2] });
    else await tasksPage();
  } catch (e) { main().replaceChildren(h('p', { class: 'err' }, e.message)); }
}

document.getElementById('logout').addEventListener('click', async () => {
  if (auth.csrf() && !auth.token()) { try { await api('POST', '/api/logout'); } catch (_) { /* signed out anyway */ } }
  auth.clear();
  location.hash = '#/login';
});
window.addEventListener('hashchange', route);
route();
