// Drives the admin page's queue and service-hours sections in headless Chromium for
// tests/tests/admin_settings.rs: the administrator logs in, sets queue `hotline` to round
// robin, adds 2027-02-06 as a closed day (春节), and reads both back from the page's lists.
//
// Input (environment): HOTLINE_URL, ADMIN_USER, ADMIN_PASSWORD, CHROMIUM (default
// /usr/bin/chromium), SCREENSHOT (optional PNG path).
// Output: one JSON line {"queue_row": [...], "day_row": [...]} on success; any failure
// (a step over its time limit, a script error, a CSP refusal) exits 1 with the reason.
import { chromium } from 'playwright-core';

const base = process.env.HOTLINE_URL;
const T = 30_000;

function check(cond, msg) { if (!cond) throw new Error(msg); }

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const problems = [];
try {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(m.text());
  });
  await page.goto(base + '/login');
  await page.fill('#username', process.env.ADMIN_USER);
  await page.fill('#password', process.env.ADMIN_PASSWORD);
  await Promise.all([page.waitForURL((url) => new URL(url).pathname === '/admin'), page.click('button[type=submit]')]);

  // Queues: edit `hotline`, choose round robin, save; the list shows it.
  await page.click('#queue-settings button[data-queue="hotline"]');
  await page.waitForSelector('#queue-form', { state: 'visible' });
  await page.selectOption('#queue-form select[name=strategy]', 'round_robin');
  await page.fill('#queue-form input[name=announce_s]', '45');
  await page.click('#queue-form button[type=submit]');
  await page.waitForFunction(() => {
    const row = [...document.querySelectorAll('#queue-settings tbody tr')].find((r) => r.cells[0]?.textContent === 'hotline');
    return row && row.cells[1].textContent === '轮流分配' && row.cells[7].textContent.startsWith('v1');
  });
  const queueRow = await page.$$eval('#queue-settings tbody tr', (rows) => {
    const r = rows.find((x) => x.cells[0]?.textContent === 'hotline');
    return [r.cells[0].textContent, r.cells[1].textContent];
  });

  // Service hours: the weekly pattern is shown; add a closed day; the list shows it.
  await page.waitForFunction(() => document.querySelector('#hours-weekly').textContent.includes('每周服务'));
  await page.fill('#day-form input[name=date]', '2027-02-06');
  await page.check('#day-form input[name=closed]');
  await page.fill('#day-form input[name=note]', '春节');
  await page.click('#day-submit');
  await page.waitForFunction(() => [...document.querySelectorAll('#service-days tbody tr')].some((r) => r.cells[0]?.textContent === '2027-02-06'));
  const dayRow = await page.$$eval('#service-days tbody tr', (rows) => {
    const r = rows.find((x) => x.cells[0]?.textContent === '2027-02-06');
    return [r.cells[0].textContent, r.cells[1].textContent, r.cells[2].textContent];
  });
  // A bad entry is refused with the server's zh-CN reason (a toast), nothing listed.
  await page.fill('#day-form input[name=date]', '2027-02-07');
  await page.fill('#day-form input[name=open]', '12:00');
  await page.fill('#day-form input[name=close]', '09:00');
  await page.click('#day-submit');
  await page.waitForFunction(() => [...document.querySelectorAll('#toast .bad')].some((t) => t.textContent.includes('须早于')));
  const listed = await page.$$eval('#service-days tbody tr', (rows) => rows.map((r) => r.cells[0]?.textContent));
  check(!listed.includes('2027-02-07'), 'a refused day is not listed');
  if (process.env.SCREENSHOT) {
    await page.locator('#queues-admin').screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, '-queues.png') });
    await page.locator('#hours-admin').screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, '-hours.png') });
  }

  check(problems.length === 0, problems.join('; '));
  console.log(JSON.stringify({ queue_row: queueRow, day_row: dayRow }));
  await browser.close();
  process.exit(0);
} catch (e) {
  console.log('FAILED ' + e.message + (problems.length ? ' | ' + problems.join('; ') : ''));
  await browser.close().catch(() => {});
  process.exit(1);
}
