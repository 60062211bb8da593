// Drives the web UI of `datatrace serve` in headless Chromium: signs in, adds a MySQL and an
// Elasticsearch data source (testing the first), runs the 4-step wizard, starts the task and
// waits for it to be done on the task page, then saves a screenshot of that page.
//
// node wizard.mjs <server-url> <token> <mysql-url> <mysql-password> <table> <es-url> <index> <screenshot>
import { chromium } from 'playwright-core';

const [url, token, mysqlUrl, mysqlPassword, table, esUrl, index, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error('usage: node wizard.mjs URL TOKEN MYSQL_URL MYSQL_PASSWORD TABLE ES_URL INDEX SCREENSHOT');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const step = (what) => console.log('step: ' + what);
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
  await page.selectOption('#ds-type', 'mysql');
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

  step('wizard 1: source and target');
  await page.click('a[data-nav="new"]');
  await page.waitForSelector('#wz-source');
  await page.selectOption('#wz-source', { label: 'shop (mysql)' });
  await page.selectOption('#wz-target', { label: 'search (elasticsearch)' });
  await page.click('#wz-next');

  step('wizard 2: pick the table from the live source');
  const box = page.locator(`#wz-units input[value="${table}"]`);
  await box.waitFor();
  await box.check();
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
  await page.locator('#log-list div').first().waitFor();
  await page.click('#tab-error');
  await page.click('#tab-realtime');
  await page.locator('#log-list div', { hasText: 'done' }).first().waitFor();
  step('verify');
  await page.click('#btn-verify');
  await page.locator('#verify-verdict.ok').waitFor();
  await page.screenshot({ path: screenshot, fullPage: true });
  if (errors.length) throw new Error('errors in the page: ' + errors.join('; '));
  console.log('done: written ' + written);
} finally {
  await browser.close();
}
