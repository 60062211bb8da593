// The web UI against hostile data, in headless Chromium: signs in with a user name and
// password (session cookie + CSRF token), visits every page that renders user-supplied
// strings (task names, data-source names and URLs, alert channel and rule names, user names
// in the audit log, log lines, dead-letter values and errors) stored with XSS payloads by the
// test, and proves nothing executes: no page script sets window.__xss, no dialog opens, no CSP
// violation is reported, no element or event-handler attribute comes from the data, and the
// payloads show as text.
// It also discards a dead letter through the UI (a session change with its CSRF token) and
// checks that the same change without the token is refused.
//
// The task's page is walked with its schedule and run history, and a second (failed) task's
// run history, a failed check whose error names the target's URL; an API token is created with a payload name.
//
// node security.mjs <server-url> <username> <password> <task-id> <payload-marker> <checked-task-id>
import { chromium } from 'playwright-core';

const [url, username, password, taskId, marker, checkedId] = process.argv.slice(2);
if (!checkedId) {
  console.error('usage: node security.mjs URL USERNAME PASSWORD TASK_ID MARKER CHECKED_TASK_ID');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const step = (what) => console.log('step: ' + what);
const fail = (why) => { throw new Error(why); };
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(60000);
  const problems = [];
  page.on('dialog', async (d) => { problems.push('a ' + d.type() + ' dialog opened: ' + d.message()); await d.dismiss(); });
  page.on('pageerror', (e) => problems.push('page error: ' + e));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));
  });

  // Nothing from the data became markup, and nothing ran.
  const audit = async (where) => {
    const r = await page.evaluate(() => {
      const injected = [];
      for (const el of document.querySelectorAll('*')) {
        const tag = el.tagName.toLowerCase();
        if (['img', 'iframe', 'object', 'embed', 'video', 'audio'].includes(tag)) injected.push(tag);
        // The only SVG the UI draws is the run-history chart (class "chart").
        if (tag === 'svg' && !el.classList.contains('chart')) injected.push('svg');
        if (tag === 'script' && el.getAttribute('src') !== '/ui/app.js') injected.push('script');
        for (const a of el.attributes) {
          if (a.name.startsWith('on')) injected.push(tag + '[' + a.name + ']');
          if ((a.name === 'href' || a.name === 'src' || a.name === 'action') && /^\s*javascript:/i.test(a.value)) injected.push(tag + '[' + a.name + '=javascript:]');
        }
      }
      return { xss: window.__xss, csp: window.__csp, injected, text: document.body.innerText };
    });
    if (r.xss !== undefined) fail(where + ': a payload ran (window.__xss = ' + r.xss + ')');
    if (r.csp.length) fail(where + ': CSP violations: ' + r.csp.join('; '));
    if (r.injected.length) fail(where + ': elements from the data: ' + r.injected.join(', '));
    if (problems.length) fail(where + ': ' + problems.join('; '));
    return r.text;
  };
  const shows = (text, where) => {
    if (!text.includes(marker)) fail(where + ': the payload is not shown as text');
  };

  step('sign in with a user name and password');
  await page.goto(url + '/');
  await page.waitForSelector('#username');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-user-btn');
  await page.waitForSelector('h1:has-text("Tasks")');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'dt_session');
  if (!session) fail('no session cookie');
  if (!session.httpOnly || session.sameSite !== 'Strict') fail('session cookie not HttpOnly/SameSite=Strict: ' + JSON.stringify(session));
  if ((await page.evaluate(() => document.cookie)).includes('dt_session')) fail('the page can read the session cookie');
  if (await page.evaluate(() => sessionStorage.getItem('datatrace-token'))) fail('a token was stored for a session sign-in');

  step('tasks list');
  await page.locator('table', { hasText: marker }).first().waitFor();
  shows(await audit('tasks'), 'tasks');

  step('task page: units and logs');
  await page.goto(url + '/#/tasks/' + taskId);
  await page.waitForSelector('#task-status [data-status]');
  await page.locator('#log-list div', { hasText: marker }).first().waitFor();
  await page.click('#tab-error');
  await page.locator('#log-list div', { hasText: marker }).first().waitFor();
  shows(await audit('task page'), 'task page');

  step('task page: schedules and run history');
  await page.locator('#schedules tr[data-schedule]').waitFor();
  await page.locator('#runs tr[data-run]').first().waitFor();
  await page.locator('#runs-chart rect').first().waitFor({ state: 'attached' });
  await audit('schedules and run history');

  step('the amber status links to the dead letters');
  await page.click('#rejects-link');
  await page.waitForURL(/dead-letters$/);
  await page.locator('#dl-rows tr[data-id]').first().waitFor();
  shows(await audit('dead letters'), 'dead letters');
  const before = await page.locator('#dl-rows tr[data-id]').count();

  step('filter the dead letters by error text');
  await page.fill('#dl-q', 'no such text anywhere');
  await page.click('#dl-apply');
  await page.locator('#dl-rows td.hint').waitFor();
  await page.fill('#dl-q', '');
  await page.click('#dl-apply');
  await page.locator('#dl-rows tr[data-id]').first().waitFor();

  step('inspect one');
  await page.locator('#dl-rows tr[data-id] button.inspect').first().click();
  await page.locator('#dl-dialog[open] #dl-fields').waitFor();
  const dialogText = await page.locator('#dl-dialog').innerText();
  if (!dialogText.includes(marker)) fail('the inspect dialog lacks the value: ' + dialogText);
  await audit('inspect dialog');
  await page.click('#dl-close');

  step('discard one through the session (CSRF token)');
  await page.locator('#dl-rows tr[data-id] button.discard').first().click();
  await page.locator('#toast', { hasText: 'Discarded: 1' }).waitFor();
  await page.locator('#dl-rows .badge.dl-discarded').first().waitFor();
  if (await page.locator('#dl-rows tr[data-id]').count() !== before) fail('the list changed size after a discard');
  const noCsrf = await page.evaluate(async (id) => {
    const list = await (await fetch('/api/tasks/' + id + '/dead-letters?state=new')).json();
    const r = await fetch('/api/tasks/' + id + '/dead-letters/' + list.dead_letters[0].id + '/discard', { method: 'POST' });
    return r.status;
  }, taskId);
  if (noCsrf !== 403) fail('a change without the CSRF token answered ' + noCsrf);

  step('a failed check: the run history shows its error naming the URL');
  await page.goto(url + '/#/tasks/' + checkedId);
  await page.locator('#task-status [data-status]').waitFor();
  await page.locator('#runs tr[data-run]', { hasText: marker }).first().waitFor();
  await page.locator('#runs tr[data-run] [data-status="failed"]').first().waitFor();
  await page.locator('#schedules td.hint').waitFor();
  shows(await audit('failed check: run history'), 'failed check: run history');

  step('data sources');
  await page.goto(url + '/#/datasources');
  await page.locator('#ds-list tr', { hasText: marker }).first().waitFor();
  shows(await audit('data sources'), 'data sources');

  step('alerts: channel and rule names');
  await page.goto(url + '/#/alerts');
  await page.waitForSelector('h1:has-text("Alerts")');
  await page.locator('table', { hasText: marker }).first().waitFor();
  shows(await audit('alerts'), 'alerts');

  step('audit log (the user names tried at sign-in)');
  await page.goto(url + '/#/audit');
  // (the alerts' tables hold the marker too: wait for the audit log's own)
  await page.locator('#audit', { hasText: marker }).waitFor();
  shows(await audit('audit log'), 'audit log');

  step('server logs, account page');
  await page.goto(url + '/#/logs');
  await page.waitForSelector('h1:has-text("Server logs")');
  await page.locator('#log-list div').first().waitFor({ state: 'attached' });
  await audit('server logs');
  await page.goto(url + '/#/account');
  await page.waitForSelector('h2:has-text("My API tokens")');
  await audit('account');

  step('an API token named with a payload');
  await page.fill('#token-name', '<img src=x onerror=window.__xss=13>');
  await page.click('#token-create');
  await page.locator('#new-token code').waitFor();
  shows(await audit('account: token names'), 'account: token names');

  step('sign out ends the session');
  await page.click('#logout');
  await page.waitForSelector('#username');
  const after = await page.evaluate(async () => (await fetch('/api/me')).status);
  if (after !== 401) fail('the session still works after signing out: ' + after);
  await audit('signed out');
  console.log('xss: nothing executed');
} finally {
  await browser.close();
}
