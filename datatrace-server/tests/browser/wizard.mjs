// Drives the web UI of `datatrace serve` in headless Chromium: signs in, adds a MySQL and an
// Elasticsearch data source (testing the first), runs the 4-step wizard, starts the task and
// waits for it to be done on the task page, then saves a screenshot of that page. With a Kafka
// URL: adds a Kafka data source (tested), runs the wizard MySQL -> Kafka (a topic prefix, no
// target name) to done, then Kafka -> Elasticsearch (the topic picked from the live cluster, a
// consumer group) until every row is written, and stops that stream.
// Between the two it asks the test (on stdout, answered on stdin) to kill the server and
// start it again, and sees the task page say "reconnecting" meanwhile.
//
// node wizard.mjs <server-url> <token> <mysql-url> <mysql-password> <table> <es-url> <index> <screenshot> [<kafka-url> <topic-prefix> <index2>]
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [url, token, mysqlUrl, mysqlPassword, table, esUrl, index, screenshot, kafkaUrl, prefix, index2] = process.argv.slice(2);
if (!screenshot || (kafkaUrl && !index2)) {
  console.error('usage: node wizard.mjs URL TOKEN MYSQL_URL MYSQL_PASSWORD TABLE ES_URL INDEX SCREENSHOT [KAFKA_URL TOPIC_PREFIX INDEX2]');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const step = (what) => console.log('step: ' + what);
const fail = (why) => { throw new Error(why); };
const db = table.split('.')[0];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(60000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) errors.push(r.status() + ' ' + r.url()); });

  step('sign in');
  await page.goto(url + '/');
  await page.waitForSelector('#token');
  await page.fill('#token', token);
  await page.click('#login-btn');
  await page.waitForSelector('h1:has-text("Tasks")');

  step('add the MySQL data source and test it');
  await page.click('a[data-nav="datasources"]');
  await page.waitForSelector('#ds-form');
  await page.fill('#ds-name', 'shop');
  // The Elasticsearch-only fields (user name, API key) and their labels are hidden for MySQL.
  await page.selectOption('#ds-type', 'elasticsearch');
  await page.locator('label[for="ds-elasticsearch-api-key"]').waitFor();
  await page.selectOption('#ds-type', 'mysql');
  for (const sel of ['label[for="ds-elasticsearch-api-key"]', 'label[for="ds-elasticsearch-username"]', '#ds-elasticsearch-api-key', '#ds-elasticsearch-username']) {
    if (await page.evaluate((q) => [...document.querySelectorAll(q)].some((e) => e.checkVisibility()), sel)) fail(sel + ' is shown on the MySQL form');
  }
  // Every id of the page once (Elasticsearch and Kafka both ask for a user name), and every
  // label of the form points at an input of its own.
  const dup = await page.evaluate(() => {
    const seen = new Set();
    for (const e of document.querySelectorAll('[id]')) { if (seen.has(e.id)) return e.id; seen.add(e.id); }
    return null;
  });
  if (dup) fail('the id ' + dup + ' is used twice on the data-source page');
  await page.fill('#ds-url', mysqlUrl);
  await page.fill('#ds-password', mysqlPassword);
  await page.click('#ds-save');
  const row = page.locator('#ds-list tr', { hasText: 'shop' });
  await row.waitFor();
  await row.locator('button.test').click();
  await row.locator('.test-result.ok').waitFor();
  console.log('test: ' + await row.locator('.test-result').textContent());

  step('add the Elasticsearch data source');
  await page.fill('#ds-name', 'search');
  await page.selectOption('#ds-type', 'elasticsearch');
  await page.fill('#ds-url', esUrl);
  await page.click('#ds-save');
  await page.locator('#ds-list tr', { hasText: 'search' }).waitFor();
  // The list was drawn again: the MySQL source's test result is still there.
  if (!await page.locator('#ds-list tr', { hasText: 'shop' }).locator('.test-result.ok').isVisible()) {
    fail('the test result vanished when the list was drawn again');
  }

  step('wizard 1: source and target');
  await page.click('a[data-nav="new"]');
  await page.waitForSelector('#wz-source');
  await page.selectOption('#wz-source', { label: 'shop (mysql)' });
  await page.selectOption('#wz-target', { label: 'search (elasticsearch)' });
  await page.click('#wz-next');

  step('wizard 2: pick the table from the live source (filter, select all, clear, pattern)');
  const box = page.locator(`#wz-units input[value="${table}"]`);
  await box.waitFor();
  const boxes = page.locator('#wz-units input[type=checkbox]');
  const chips = page.locator('#wz-chosen .chip');
  const everything = await boxes.count();
  await page.fill('#wz-filter', db + '.');
  await page.waitForFunction((n) => document.querySelectorAll('#wz-units input[type=checkbox]').length === n, 2);
  if (everything <= 2) fail('the filter had nothing to hide: ' + everything + ' unit(s)');
  await page.click('#wz-all');
  if (await chips.count() !== 2 || await page.locator('#wz-units input:checked').count() !== 2) fail('select all shown did not pick both tables');
  if (await page.locator('#wz-next').isDisabled()) fail('Next is disabled with units chosen');
  await page.click('#wz-none');
  if (await chips.count() !== 0) fail('clear shown left units chosen');
  if (!await page.locator('#wz-next').isDisabled()) fail('Next is enabled with nothing chosen');
  await page.fill('#wz-filter', 'no-such-table-anywhere');
  await page.locator('#wz-units', { hasText: 'Nothing matches the filter.' }).waitFor();
  await page.fill('#wz-pattern', db + '.it*');
  await page.click('#wz-add-pattern');
  await page.locator(`#wz-chosen .chip[data-unit="${db}.it*"]`).waitFor();
  await page.locator(`#wz-chosen .chip[data-unit="${db}.it*"] button`).click();
  if (await chips.count() !== 0) fail('the pattern chip was not removed');
  await page.fill('#wz-filter', 'ITEMS');
  await box.check();
  await page.locator(`#wz-chosen .chip[data-unit="${table}"]`).waitFor();
  if (await chips.count() !== 1) fail('more than the one table chosen');
  await page.click('#wz-next');

  step('wizard 3: parameters');
  await page.waitForSelector('#wz-naming');
  await page.fill('#wz-name', 'shop-to-search');
  await page.fill('#wz-naming', index);
  await page.fill('#wz-batch', '250');
  await page.click('#wz-next');

  step('wizard 4: confirm');
  const summary = await page.locator('#wz-summary').textContent();
  if (!summary.includes(table) || !summary.includes(index)) throw new Error('summary lacks the choices: ' + summary);
  await page.click('#wz-create');

  step('task page: progress to done');
  await page.waitForURL(/#\/tasks\/\d+$/);
  await page.waitForSelector('#task-status [data-status="done"]', { timeout: 120000 });
  await page.waitForFunction(() => document.querySelector('#overall-text')?.textContent === '100.0%');
  await page.locator(`#units tr[data-unit="${table}"] [data-status="done"]`).waitFor();
  const written = await page.locator('#stat-written').textContent();
  // Done: the unit's count is final, not "2,000 / <estimate>" (the estimate was known).
  const estimate = await page.evaluate(async () => {
    const r = await fetch('/api/tasks/' + location.hash.split('/')[2] + '/units', { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('datatrace-token') } });
    return (await r.json()).map((u) => u.estimated_total)[0];
  });
  if (!estimate) fail('no estimated total for the unit: nothing to check');
  const unitWritten = await page.locator(`#units tr[data-unit="${table}"] td.num`).nth(1).textContent();
  if (unitWritten !== written) fail('the done unit shows ' + JSON.stringify(unitWritten) + ' (estimate ' + estimate + '), not ' + written);

  step('Start on a done task asks before starting afresh');
  const starts = [];
  page.on('request', (r) => { if (r.method() === 'POST' && /\/start$/.test(r.url())) starts.push(r.url()); });
  let asked = null;
  page.once('dialog', async (d) => { asked = d.type() + ': ' + d.message(); await d.dismiss(); });
  await page.click('#btn-start');
  await page.waitForTimeout(1000);
  if (!asked || !asked.startsWith('confirm') || !asked.includes('afresh')) fail('Start on a done task did not ask: ' + asked);
  if (starts.length) fail('Start went ahead although the question was declined');
  await page.locator('#task-status [data-status="done"]').waitFor();
  await page.locator('#log-list div').first().waitFor();
  await page.click('#tab-error');
  await page.click('#tab-realtime');
  await page.locator('#log-list div', { hasText: 'done' }).first().waitFor();
  step('verify');
  await page.click('#btn-verify');
  await page.locator('#verify-verdict.ok').waitFor();

  step('run history: the copy and the verify, charted');
  await page.locator('#runs tr', { hasText: 'sync' }).locator('[data-status="done"]').waitFor();
  await page.locator('#runs tr', { hasText: 'check' }).locator('[data-status="done"]', { hasText: 'equal' }).waitFor();
  if (await page.locator('#runs-chart rect').count() < 2) throw new Error('the chart has no bar per run');
  await page.locator('#drift.ok', { hasText: 'Drift: 0 row(s)' }).waitFor();

  step('schedules: a wrong one names the field, a right one shows its next firings in its zone');
  await page.click('#sched-add');
  await page.fill('#sched-cron', '61 * * * *');
  await page.fill('#sched-zone', 'Asia/Shanghai');
  await page.selectOption('#sched-action', 'drift_check');
  await page.click('#sched-save');
  await page.locator('#sched-error', { hasText: 'cron:' }).waitFor();
  // That refusal was the point: the 400 and the browser's note of it are no page errors.
  const refused = (e) => e.includes('/api/schedules') || e.includes('status of 400');
  for (let i = errors.length - 1; i >= 0; i--) if (refused(errors[i])) errors.splice(i, 1);
  await page.fill('#sched-cron', '30 2 * * *');
  await page.click('#sched-save');
  const sched = page.locator('#schedules tr[data-schedule]');
  await sched.waitFor();
  const next = await sched.locator('.next-fires').textContent();
  if (!/02:30 CST/.test(next)) throw new Error('next firings not in the zone: ' + next);
  await sched.locator('button', { hasText: 'Run now' }).click();
  await page.locator('#runs tr', { hasText: 'drift check' }).locator('[data-status="done"]', { hasText: 'equal' }).waitFor();
  await page.screenshot({ path: screenshot, fullPage: true });
  if (errors.length) throw new Error('errors in the page: ' + errors.join('; '));
  console.log('done: written ' + written);
  const taskUrl = page.url();
  await manage(page, errors);
  await outage(page, errors, taskUrl);
  if (kafkaUrl) await kafka(page, errors);
} finally {
  await browser.close();
}

// Clone the task (with a long name), edit the clone, see the long name clipped in the task
// table, delete the clone.
async function manage(page, errors) {
  step('clone: the wizard starts from the task');
  const taskUrl = page.url();
  await page.click('.manage button[data-action="clone"]');
  await page.waitForURL(/#\/tasks\/\d+\/clone$/);
  await page.waitForSelector('h1:has-text("Clone task")');
  if (await page.locator('#wz-source option:checked').textContent() !== 'shop (mysql)') fail('the clone lost its source');
  await page.click('#wz-next');
  await page.locator(`#wz-chosen .chip[data-unit="${table}"]`).waitFor();
  await page.click('#wz-next');
  await page.waitForSelector('#wz-naming');
  if (await page.inputValue('#wz-name') !== 'shop-to-search-copy') fail('the clone is not named after the task: ' + await page.inputValue('#wz-name'));
  if (await page.inputValue('#wz-naming') !== index) fail('the clone lost the target index');
  const long = 'shop-to-search-copy-with-a-very-long-name-' + 'x'.repeat(160);
  await page.fill('#wz-name', long);
  await page.click('#wz-next');
  await page.click('#wz-create-only');
  await page.waitForURL((u) => /#\/tasks\/\d+$/.test(u.hash) && u.href !== taskUrl);
  const cloneId = page.url().split('/').pop();
  await page.waitForSelector('#task-status [data-status="idle"]');
  const h1 = await page.locator('h1.clip').evaluate((e) => [e.scrollWidth > e.clientWidth, e.title]);
  if (!h1[0] || h1[1] !== long) fail('the long name is not clipped in the title: ' + JSON.stringify(h1));

  step('edit the clone');
  await page.click('.manage button[data-action="edit"]');
  await page.waitForSelector('h1:has-text("Edit task")');
  await page.click('#wz-next');
  await page.click('#wz-next');
  await page.waitForSelector('#wz-batch');
  if (await page.inputValue('#wz-batch') !== '250') fail('the clone lost the batch size');
  await page.fill('#wz-batch', '400');
  await page.click('#wz-next');
  const summary = await page.locator('#wz-summary').textContent();
  if (!summary.includes('"batch_size": 400')) fail('the edit summary lacks the new batch size: ' + summary);
  await page.click('#wz-save');
  await page.waitForURL((u) => u.hash === '#/tasks/' + cloneId);
  const saved = await page.evaluate(async (id) => {
    const r = await fetch('/api/tasks/' + id, { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('datatrace-token') } });
    return (await r.json()).config;
  }, cloneId);
  if (saved.settings.batch_size !== 400 || saved.name !== long) fail('the edit was not saved: ' + JSON.stringify(saved));

  step('the task table clips the long name');
  await page.click('a[data-nav="tasks"]');
  const row = page.locator(`#task-list tr[data-id="${cloneId}"]`);
  await row.waitFor();
  const fit = await page.evaluate((id) => {
    const td = document.querySelector(`#task-list tr[data-id="${id}"] td`);
    const table = document.getElementById('task-list');
    const r = td.getBoundingClientRect();
    // what is drawn just right of the name's cell: the status cell, not the name running on
    const beside = document.elementFromPoint(r.right + 4, r.top + r.height / 2);
    return { clipped: td.scrollWidth > td.clientWidth, ellipsis: getComputedStyle(td).textOverflow, title: td.title,
      overlaps: !!beside && td.contains(beside), table: table.getBoundingClientRect().width, main: document.getElementById('main').clientWidth };
  }, cloneId);
  if (!fit.clipped || fit.ellipsis !== 'ellipsis' || fit.overlaps || fit.title !== long) fail('the long name is not clipped with its title: ' + JSON.stringify(fit));
  if (fit.table > fit.main) fail('the long name widens the task table: ' + JSON.stringify(fit));

  step('delete the clone (after confirming)');
  let asked = null;
  page.once('dialog', async (d) => { asked = d.message(); await d.accept(); });
  await row.locator('button[data-action="delete"]').click();
  await row.waitFor({ state: 'detached' });
  if (!asked || !asked.includes('Delete task')) fail('delete did not ask: ' + asked);
  const ids = await page.evaluate(async () => (await (await fetch('/api/tasks', { headers: { Authorization: 'Bearer ' + sessionStorage.getItem('datatrace-token') } })).json()).map((t) => String(t.id)));
  if (ids.includes(cloneId)) fail('the deleted task is still listed');
  if (errors.length) fail('errors in the page: ' + errors.join('; '));
  console.log('managed: cloned, edited, deleted');
}

// A server outage: the test kills the server when told and starts it again on the same
// address when told. Meanwhile the task page says it is reconnecting and marks what it shows
// as stale (the status as "done?"); once the server is back, it is live again.
async function outage(page, errors, taskUrl) {
  step('outage: the task page says it is reconnecting while the server is down');
  await page.goto(taskUrl);
  await page.locator('#conn.live').waitFor();
  await page.locator('#task-status [data-status="done"]').waitFor();
  const before = errors.length;
  const stale = () => page.evaluate(() => document.getElementById('main').classList.contains('stale'));
  console.log('outage: stop the server');
  await page.locator('#conn.reconnecting', { hasText: 'reconnecting' }).waitFor();
  await page.locator('#task-status [data-status="unknown"]', { hasText: 'done?' }).waitFor();
  if (!await stale()) fail('the page is not marked stale during the outage');
  const rl = createInterface({ input: process.stdin });
  const told = rl[Symbol.asyncIterator]();
  console.log('outage: start the server');
  const answer = (await told.next()).value;
  rl.close();
  process.stdin.destroy();
  if (answer !== 'started') fail('the server was not started again: ' + answer);
  await page.locator('#conn.live').waitFor();
  await page.locator('#task-status [data-status="done"]').waitFor();
  if (await stale()) fail('the page is still marked stale after the reconnect');
  // the refused connections while the server was down are no page errors
  errors.splice(before);
  console.log('outage: reconnecting shown, live again');
}

// The Kafka part: a Kafka data source, then MySQL -> Kafka and Kafka -> Elasticsearch tasks
// made with the wizard.
async function kafka(page, errors) {
  step('add the Kafka data source and test it');
  await page.click('a[data-nav="datasources"]');
  await page.waitForSelector('#ds-form');
  await page.fill('#ds-name', 'events');
  await page.selectOption('#ds-type', 'kafka');
  await page.fill('#ds-url', kafkaUrl);
  await page.click('#ds-save');
  const row = page.locator('#ds-list tr', { hasText: 'events' });
  await row.waitFor();
  await row.locator('button.test').click();
  await row.locator('.test-result.ok').waitFor();
  console.log('kafka test: ' + await row.locator('.test-result').textContent());

  step('wizard: MySQL -> Kafka');
  await page.click('a[data-nav="new"]');
  await page.waitForSelector('#wz-source');
  await page.selectOption('#wz-source', { label: 'shop (mysql)' });
  await page.selectOption('#wz-target', { label: 'events (kafka)' });
  await page.click('#wz-next');
  const box = page.locator(`#wz-units input[value="${table}"]`);
  await box.waitFor();
  await box.check();
  await page.click('#wz-next');
  await page.waitForSelector('#wz-target-topic_prefix');
  if (await page.locator('#wz-naming').count()) throw new Error('a Kafka target asks for a target name');
  await page.fill('#wz-name', 'shop-to-events');
  await page.fill('#wz-target-topic_prefix', prefix);
  await page.click('#wz-next');
  const summary = await page.locator('#wz-summary').textContent();
  if (!summary.includes('"topic_prefix": "' + prefix + '"')) throw new Error('summary lacks the topic prefix: ' + summary);
  await page.click('#wz-create');
  await page.waitForSelector('h1:has-text("shop-to-events")');
  await page.waitForSelector('#task-status [data-status="done"]', { timeout: 120000 });
  console.log('kafka out: written ' + await page.locator('#stat-written').textContent());

  step('wizard: Kafka -> Elasticsearch, the topic picked from the cluster');
  const topic = prefix + '.' + table;
  await page.click('a[data-nav="new"]');
  await page.waitForSelector('#wz-source');
  await page.selectOption('#wz-source', { label: 'events (kafka)' });
  await page.selectOption('#wz-target', { label: 'search (elasticsearch)' });
  await page.click('#wz-next');
  const pick = page.locator(`#wz-units input[value="${topic}"]`);
  await pick.waitFor();
  await pick.check();
  await page.click('#wz-next');
  await page.waitForSelector('#wz-source-group');
  await page.fill('#wz-name', 'events-to-search');
  await page.fill('#wz-source-group', prefix + '-workers');
  await page.fill('#wz-naming', index2);
  await page.click('#wz-next');
  const summary2 = await page.locator('#wz-summary').textContent();
  if (!summary2.includes('"group": "' + prefix + '-workers"') || !summary2.includes(topic)) throw new Error('summary lacks the group or topic: ' + summary2);
  await page.click('#wz-create');
  await page.waitForSelector('h1:has-text("events-to-search")');
  await page.waitForSelector('#task-status [data-status="running"]', { timeout: 120000 });
  await page.waitForFunction(() => document.querySelector('#stat-written')?.textContent === '2,000', null, { timeout: 180000 });
  // the consumer's lag per partition is shown in the unit's row
  await page.locator('#units tr[data-unit="kafka"]').waitFor();
  console.log('kafka unit: ' + await page.locator('#units tr[data-unit="kafka"]').textContent());
  await page.click('#btn-stop');
  await page.waitForSelector('#task-status [data-status="stopped"]', { timeout: 120000 });
  if (errors.length) throw new Error('errors in the page: ' + errors.join('; '));
  console.log('kafka in: written 2,000');
}
