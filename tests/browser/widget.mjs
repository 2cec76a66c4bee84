// The website chat widget in headless Chromium, for tests/tests/widget.rs: a page of
// "the auction website" on another origin (SITE_PORT) embeds the one <script> tag; a visitor
// opens the chat, asks a question the knowledge base answers, then asks for an agent.
// Prints ANSWERED and QUEUED; any failure exits 1 with the reason.
import http from 'node:http';
import { chromium } from 'playwright-core';

const hotline = process.env.HOTLINE_URL;
const port = Number(process.env.SITE_PORT);
const page = `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>竞价网站</title></head>
<body><h1>天津市小客车增量指标竞价</h1><script src="${hotline}/widget/chat.js" async></script></body></html>`;
const site = http.createServer((_, res) => { res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }); res.end(page); });
await new Promise((resolve) => site.listen(port, '127.0.0.1', resolve));

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const errors = [];
try {
  const ctx = await browser.newContext({ locale: 'zh-CN' });
  const p = await ctx.newPage();
  p.setDefaultTimeout(30_000);
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await p.goto(`http://127.0.0.1:${port}/`);
  await p.click('#hlc-btn');
  await p.fill('#hlc-in', process.env.QUESTION);
  await p.click('#hlc-send');
  await p.waitForSelector('#hlc-list .hlc-bot');
  const answer = await p.textContent('#hlc-list .hlc-bot');
  if (!answer || answer.length < 10) throw new Error(`no answer from the knowledge base: ${answer}`);
  console.log('ANSWERED ' + answer.slice(0, 40).replace(/\s+/g, ' '));
  await p.fill('#hlc-in', '转人工');
  await p.click('#hlc-send');
  await p.waitForFunction(() => Array.from(document.querySelectorAll('#hlc-list .hlc-system, #hlc-list .hlc-bot')).some((e) => /人工|坐席|客服/.test(e.textContent)) && document.querySelectorAll('#hlc-list .hlc-user').length >= 2);
  const cookies = await ctx.cookies(hotline);
  if (cookies.length) throw new Error(`the widget set cookies: ${JSON.stringify(cookies)}`);
  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
  console.log('QUEUED');
  await browser.close();
  site.close();
  process.exit(0);
} catch (e) {
  console.error('FAIL: ' + e.message);
  await browser.close().catch(() => {});
  site.close();
  process.exit(1);
}
