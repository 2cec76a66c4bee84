// Drives the console for tests/tests/alerts.rs: an administrator opens the wallboard before
// the alert exists; the system-alert banner must show RULE's alert when it is raised (pushed
// over the live stream, no reload); 确认 on the banner acknowledges it; the admin page lists
// it. Prints `WALLBOARD_OPEN` once the wallboard is live, then `BANNER <text>`, `ACKED`,
// `ADMIN_OK`, `DONE`. Any failure exits 1 with the reason.
//
// Input (environment): HOTLINE_URL, USERNAME, PASSWORD, RULE, CHROMIUM.
import { chromium } from 'playwright-core';

const base = process.env.HOTLINE_URL;
const rule = process.env.RULE;
const T = 120_000;
const check = (cond, msg) => { if (!cond) throw new Error(msg); };

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const problems = [];
try {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(m.text());
  });
  await page.goto(base + '/login?next=/wallboard');
  await page.fill('#username', process.env.USERNAME);
  await page.fill('#password', process.env.PASSWORD);
  await Promise.all([page.waitForURL((u) => new URL(u).pathname === '/wallboard'), page.click('button[type=submit]')]);
  await page.waitForSelector('#sys-alerts', { state: 'attached' });
  console.log('WALLBOARD_OPEN');
  const item = `#sys-alerts .alert-item[data-rule="${rule}"]`;
  await page.waitForSelector(item);
  const text = await page.textContent(item);
  check(/【严重】中继中断：/.test(text), `the banner names the alert in Chinese: ${text}`);
  console.log(`BANNER ${text}`);
  await page.click(`${item} button[data-ack]`);
  await page.waitForFunction((sel) => { const e = document.querySelector(sel); return e && e.textContent.includes('已确认'); }, item);
  console.log('ACKED');
  await page.goto(base + '/admin');
  await page.waitForFunction(() => Array.from(document.querySelectorAll('#alert-list tbody tr')).some((tr) => tr.textContent.includes('中继中断') && tr.textContent.includes('已确认')));
  console.log('ADMIN_OK');
  check(problems.length === 0, problems.join('; '));
  console.log('DONE');
  await browser.close();
} catch (e) {
  console.log(`FAILED ${e.message}`);
  await browser.close();
  process.exit(1);
}
