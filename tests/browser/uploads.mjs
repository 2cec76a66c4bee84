// Drives the console's two upload forms in headless Chromium for tests/tests/uploads.rs.
//
// Input (environment): HOTLINE_URL, HOTLINE_USERS (JSON {role: {username, password}}),
// PROMPT_WAV (a recording to upload as msg/welcome), PROMPT_MS (its length), TEMPLATE (the
// approved SMS template's name), SCREENSHOT_DIR, CHROMIUM (default /usr/bin/chromium).
// The administrator's bad file is refused with its reason beside the form, the good one is
// listed as uploaded and the page's <audio> reaches canplay on it; the business user's CSV
// list with a bad row shows that row's line, a good list shows the preview and is
// confirmed. Prints `DONE` at the end; any failure exits 1 with the reason.
import { chromium } from 'playwright-core';
import path from 'node:path';

const base = process.env.HOTLINE_URL;
const users = JSON.parse(process.env.HOTLINE_USERS);
const shots = process.env.SCREENSHOT_DIR;
const T = 60_000;

function check(cond, msg) { if (!cond) throw new Error(msg); }

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
const problems = [];

async function session(role) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  page.on('pageerror', (e) => problems.push(`${role}: script error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(`${role}: ${m.text()}`);
  });
  const u = users[role];
  await page.goto(base + '/login');
  await page.fill('#username', u.username);
  await page.fill('#password', u.password);
  await Promise.all([page.waitForURL((url) => new URL(url).pathname !== '/login'), page.click('button[type=submit]')]);
  return { ctx, page };
}

async function shot(page, name, selector) {
  if (!shots) return;
  const file = path.join(shots, name + '.png');
  if (selector) await page.locator(selector).screenshot({ path: file });
  else await page.screenshot({ path: file });
}

try {
  // --- Administrator: replace the welcome prompt and listen to it -------------------------
  const admin = await session('admin');
  const page = admin.page;
  await page.goto(base + '/admin');
  const row = '#prompts tbody tr[data-name="msg/welcome"]';
  await page.waitForSelector(row);
  check(await page.textContent(row + ' .prompt-source') === '内置', 'the welcome starts as the built-in prompt');
  await page.selectOption('#prompt-name', 'msg/welcome');
  await page.setInputFiles('#prompt-file', { name: 'notes.wav', mimeType: 'audio/wav', buffer: Buffer.from('这不是录音文件', 'utf-8') });
  await page.click('#prompt-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#prompt-error').textContent.length > 0);
  const refusal = await page.textContent('#prompt-error');
  check(refusal.includes('无法识别'), `a bad file is refused with its reason (${refusal})`);
  check(await page.textContent(row + ' .prompt-source') === '内置', 'a refused file changes nothing');

  await page.setInputFiles('#prompt-file', process.env.PROMPT_WAV);
  await page.click('#prompt-form button[type=submit]');
  await page.waitForSelector(row + ' .prompt-source[data-source="uploaded"]');
  check(await page.textContent('#prompt-error') === '', 'no error after a good upload');
  // Listen from the table: the player loads the uploaded recording and can play it.
  await page.click(row + ' .prompt-play');
  await page.waitForFunction(() => {
    const a = document.querySelector('#prompt-player');
    return a.src.includes('msg%2Fwelcome') && a.readyState >= 3; // HAVE_FUTURE_DATA: canplay fired
  });
  const duration = await page.evaluate(() => document.querySelector('#prompt-player').duration);
  const want = Number(process.env.PROMPT_MS) / 1000;
  check(Math.abs(duration - want) < 0.1, `the player has the uploaded recording (${duration} s, want ${want})`);
  await page.fill('#prompt-filter', 'welcome');
  await shot(page, 'admin-prompts', '#prompts-card');
  await admin.ctx.close();

  // --- Business user: an SMS list upload, a bad row first --------------------------------
  const biz = await session('business');
  await biz.page.goto(base + '/sms');
  const p = biz.page;
  await p.waitForFunction((name) => Array.from(document.querySelectorAll('#upload-template option')).some((o) => o.textContent === name), process.env.TEMPLATE);
  await p.selectOption('#upload-template', { label: process.env.TEMPLATE });
  await p.fill('#upload-form input[name=name]', '缴款提醒（上传名单）');
  await p.fill('#upload-form textarea[name=variables]', 'deadline=12月3日17:00');
  const bad = 'mobile,name\n13800000001,王五\n1380000,赵六\n13800000003,孙七\n';
  await p.setInputFiles('#upload-file', { name: 'list-bad.csv', mimeType: 'text/csv', buffer: Buffer.from(bad, 'utf-8') });
  await p.click('#upload-form button[type=submit]');
  await p.waitForSelector('#upload-problems tbody tr');
  const rows = await p.$$eval('#upload-problems tbody tr', (trs) => trs.map((t) => Array.from(t.cells).map((c) => c.textContent)));
  check(rows.length === 1 && rows[0][0] === '3', `the bad row is named by its line: ${JSON.stringify(rows)}`);
  check((await p.textContent('#upload-error')).includes('1 行错误'), 'the refusal says how many rows are wrong');
  check(await p.$('#preview-confirm') === null, 'a refused list has nothing to confirm');
  await shot(p, 'sms-upload-errors');

  const good = 'mobile,name\n13800000001,王五\n138 0000 0002,赵六\n13800000001,王五\n';
  await p.setInputFiles('#upload-file', { name: 'list.csv', mimeType: 'text/csv', buffer: Buffer.from(good, 'utf-8') });
  await p.click('#upload-form button[type=submit]');
  await p.waitForSelector('#batch-preview');
  const preview = await p.textContent('#batch-preview');
  check(preview.includes('list.csv') && preview.includes('收件人 2 人') && preview.includes('重复 1'), `the preview counts: ${preview}`);
  const sample = await p.textContent('#batch-sample');
  check(sample.includes('王五') && sample.includes('12月3日17:00'), `the sample message is filled in: ${sample}`);
  check(await p.$('#upload-problems') === null, 'the old errors are gone');
  await shot(p, 'sms-upload-preview');
  await p.click('#preview-confirm');
  await p.waitForFunction(() => !document.querySelector('#preview-confirm'));
  await p.waitForFunction(() => Array.from(document.querySelectorAll('#batches tbody tr')).some((tr) =>
    tr.cells[0] && tr.cells[0].textContent === '缴款提醒（上传名单）' && tr.cells[1].textContent !== '待确认'));
  await biz.ctx.close();

  check(problems.length === 0, 'browser problems:\n' + problems.join('\n'));
  console.log('DONE');
  await browser.close();
  process.exit(0);
} catch (e) {
  console.error('FAIL: ' + e.message + (problems.length ? '\n' + problems.join('\n') : ''));
  await browser.close().catch(() => {});
  process.exit(1);
}
