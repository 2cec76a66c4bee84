// Drives the hotline web console in headless Chromium for tests/tests/console.rs.
//
// Input (environment): HOTLINE_URL, HOTLINE_USERS (JSON {role: {username, password}}),
// HOTLINE_PAGES (JSON [{path, roles}] — the server's own page table), SCREENSHOT_DIR,
// CHROMIUM (default /usr/bin/chromium), SEAT.
// Protocol with the Rust test: prints `AGENT_READY` when the agent is ready at SEAT, then
// `POP_OK <ms>` once the screen-pop showed; waits for a `RECORDING_READY` line on stdin
// before the QA steps; prints `DONE` at the end. Any failure exits 1 with the reason.
import { chromium } from 'playwright-core';
import readline from 'node:readline';
import path from 'node:path';

const base = process.env.HOTLINE_URL;
const users = JSON.parse(process.env.HOTLINE_USERS);
const pages = JSON.parse(process.env.HOTLINE_PAGES);
const shots = process.env.SCREENSHOT_DIR;
const seat = process.env.SEAT || '8001';
const T = 60_000;

const lines = readline.createInterface({ input: process.stdin });
const waiting = [];
const got = [];
lines.on('line', (l) => { const w = waiting.shift(); if (w) w(l.trim()); else got.push(l.trim()); });
const nextLine = () => new Promise((res) => { const l = got.shift(); if (l !== undefined) res(l); else waiting.push(res); });

function check(cond, msg) { if (!cond) throw new Error(msg); }

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
const problems = [];

async function session(role) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  page.on('pageerror', (e) => problems.push(`${role}: script error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) problems.push(`${role}: ${m.text()}`);
  });
  const u = users[role];
  await page.goto(base + '/');
  check(new URL(page.url()).pathname === '/login', `${role}: not sent to the login page (${page.url()})`);
  await page.fill('#username', u.username);
  await page.fill('#password', u.password);
  await Promise.all([page.waitForURL((url) => new URL(url).pathname !== '/login'), page.click('button[type=submit]')]);
  return { ctx, page };
}

async function shot(page, name) {
  if (shots) await page.screenshot({ path: path.join(shots, name + '.png') });
}

try {
  // --- Agent: ready, then the screen-pop --------------------------------------------------
  const agent = await session('agent');
  check(new URL(agent.page.url()).pathname === '/desk', 'the agent lands on the desk');
  await agent.page.fill('#seat', seat);
  await agent.page.fill('#queues', 'hotline');
  await agent.page.click('#btn-login');
  await agent.page.waitForSelector('#agent-state[data-state="ready"]');
  await agent.page.waitForSelector('#live.on');
  console.log('AGENT_READY');
  await agent.page.waitForSelector('#pop-caller', { timeout: 120_000 });
  const lag = await agent.page.evaluate(() => Number(document.querySelector('#pop').dataset.shownAt) - Number(document.querySelector('#pop').dataset.rangAt));
  check(lag >= 0 && lag < 2000, `the screen-pop came ${lag} ms after the seat rang (goal < 2000)`);
  const caller = await agent.page.textContent('#pop-caller');
  check(/\*{4}/.test(caller), `the agent sees the caller masked (${caller})`);
  const ivr = await agent.page.textContent('#pop-ivr');
  check(ivr.length > 0, 'the IVR path is shown');
  const bidder = await agent.page.textContent('#pop-bidders');
  check(bidder.includes('2511000000042'), `the caller's bidder record is shown (${bidder})`);
  check(!/1201011990/.test(bidder), `the bidder's ID number is masked (${bidder})`);
  check(await agent.page.inputValue('#t-phone') === caller, 'the ticket form is prefilled from the call');
  await shot(agent.page, 'desk-screen-pop');
  console.log(`POP_OK ${lag}`);
  // Once connected, the hold button acts on the call: hold, then take the caller back.
  await agent.page.waitForSelector('#agent-state[data-state="busy"]', { timeout: 10_000 });
  await agent.page.click('#btn-hold');
  await agent.page.waitForFunction(() => document.querySelector('#btn-hold').textContent === '取回');
  await shot(agent.page, 'desk-on-hold');
  await agent.page.click('#btn-hold');
  await agent.page.waitForFunction(() => document.querySelector('#btn-hold').textContent === '保持');
  console.log('HOLD_OK');

  // --- Supervisor: the wallboard shows the agent ------------------------------------------
  const sup = await session('supervisor');
  check(new URL(sup.page.url()).pathname === '/wallboard', 'the supervisor lands on the wallboard');
  await sup.page.waitForFunction((s) => Array.from(document.querySelectorAll('#agents tbody td')).some((td) => td.textContent === s), seat);
  await sup.page.waitForSelector('#chart-hours svg');
  await shot(sup.page, 'wallboard');

  // --- QA: play a recording, seek, review -------------------------------------------------
  check(await nextLine() === 'RECORDING_READY', 'expected RECORDING_READY');
  await agent.ctx.close();
  const qa = await session('qa_reviewer');
  check(new URL(qa.page.url()).pathname === '/qa', 'the QA reviewer lands on QA');
  await qa.page.click('#recordings tbody tr.clickable');
  await qa.page.waitForFunction(() => document.querySelector('#audio').readyState >= 3);
  const seeked = await qa.page.evaluate(() => new Promise((resolve) => {
    const a = document.querySelector('#audio');
    a.addEventListener('seeked', () => resolve(a.currentTime), { once: true });
    a.currentTime = Math.min(1.5, a.duration / 2);
  }));
  check(seeked > 0.5, `the player seeks (at ${seeked})`);
  await qa.page.waitForSelector('#wave svg path', { state: 'attached' });
  const inputs = await qa.page.$$('#criteria input');
  check(inputs.length > 0, 'the review form has criteria');
  for (const i of inputs) await i.fill('90');
  await qa.page.fill('#review-form textarea[name=comment]', '服务规范，解答准确。');
  await qa.page.click('#review-form button[type=submit]');
  await qa.page.waitForFunction(() => document.querySelector('#review-result').textContent.includes('得分'));
  await qa.page.fill('#note-text', '坐席核对了申请编码');
  await qa.page.click('#note-form button[type=submit]');
  await qa.page.waitForSelector('#notes li');
  await shot(qa.page, 'qa-review');
  await qa.ctx.close();

  // --- Business: a bidder file's dry run shows its errors --------------------------------
  const biz = await session('business');
  check(new URL(biz.page.url()).pathname === '/data', 'the business user lands on auction data');
  await biz.page.fill('#imp-period', '2026-12');
  const bad = '申请编码,类型,姓名/名称,证件号码,手机号,保证金状态,保证金缴纳日期,保证金金额,激活状态,竞价结果,成交价,缴款状态,退款状态,退款日期,退款失败原因\n' +
    '2512000000001,个人,王五,12010119900101123X,13800000001,已缴纳,2026-12-01,5000,是,未成交,,,,,\n' +
    '2512000000002,个人,赵六,not-an-id,1380000,已缴纳,2026-12-01,5000,是,未成交,,,,,\n';
  await biz.page.setInputFiles('#imp-file', { name: 'bidders-2026-12.csv', mimeType: 'text/csv', buffer: Buffer.from(bad, 'utf-8') });
  await biz.page.click('#btn-dry');
  await biz.page.waitForSelector('#report-problems tbody tr');
  const rows = await biz.page.$$eval('#report-problems tbody tr', (trs) => trs.map((t) => t.textContent));
  check(rows.some((r) => r.startsWith('3')), `the dry run names line 3: ${JSON.stringify(rows)}`);
  check(await biz.page.isDisabled('#btn-commit'), 'a file with errors cannot be committed');
  await shot(biz.page, 'data-dry-run');
  await biz.ctx.close();
  await sup.ctx.close();

  // --- Every role sees only its pages -----------------------------------------------------
  for (const role of Object.keys(users)) {
    const s = await session(role);
    const nav = await s.page.$$eval('.nav a', (as) => as.map((a) => new URL(a.href).pathname));
    const mine = pages.filter((p) => p.roles.includes(role)).map((p) => p.path);
    check(JSON.stringify(nav) === JSON.stringify(mine), `${role}: navigation ${JSON.stringify(nav)} should be ${JSON.stringify(mine)}`);
    for (const p of pages) {
      const resp = await s.page.goto(base + p.path);
      const allowed = p.roles.includes(role);
      check(resp.status() === (allowed ? 200 : 403), `${role} ${p.path}: status ${resp.status()}`);
      const csp = resp.headers()['content-security-policy'] || '';
      check(csp.includes("script-src 'self'"), `${p.path}: strict CSP header`);
      if (!allowed) {
        check((await s.page.textContent('main')).includes('无权访问'), `${role} ${p.path}: the refusal is explained`);
        continue;
      }
      const ready = { '/admin': '#users tbody tr', '/kb': '#articles tbody tr', '/reports': '#chart svg' }[p.path];
      if (ready) await s.page.waitForSelector(ready);
      if (role === 'admin' && p.path === '/admin') await shot(s.page, 'admin');
      if (role === 'business' && p.path === '/kb') await shot(s.page, 'knowledge');
      if (role === 'supervisor' && p.path === '/reports') await shot(s.page, 'reports');
    }
    await s.ctx.close();
  }
  check(problems.length === 0, 'browser problems:\n' + problems.join('\n'));
  console.log('DONE');
  await browser.close();
  process.exit(0);
} catch (e) {
  console.error('FAIL: ' + e.message + (problems.length ? '\n' + problems.join('\n') : ''));
  await browser.close().catch(() => {});
  process.exit(1);
}
