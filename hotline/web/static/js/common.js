// Shared by every console page: the API client (session cookie + CSRF header), small DOM
// helpers, formatting, toasts and the live event stream. Plain JS, no build step.
'use strict';
const H = (() => {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || '';

  async function api(method, path, body, opts = {}) {
    const headers = { 'X-CSRF-Token': csrf() };
    let payload = body;
    if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer)) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const resp = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
    if (resp.status === 401 && !opts.noRedirect) {
      location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
      throw new Error('登录已过期，请重新登录');
    }
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
    if (!resp.ok) {
      const msg = (data && data.error && data.error.message) || ('请求失败（' + resp.status + '）');
      const err = new Error(msg);
      err.status = resp.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'text') e.textContent = v;
      else if (k === 'html') e.innerHTML = v; // only for server-escaped highlight fragments
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function rows(tableSel, items, cells, onClick) {
    const tbody = $(tableSel + ' tbody');
    tbody.replaceChildren();
    if (!items.length) {
      const cols = $$(tableSel + ' thead th').length || 1;
      tbody.append(el('tr', {}, el('td', { colspan: cols, class: 'empty', text: '没有记录' })));
      return;
    }
    for (const it of items) {
      const tr = el('tr', onClick ? { class: 'clickable' } : {}, cells(it).map((c) => el('td', {}, c)));
      if (onClick) tr.addEventListener('click', () => {
        $$(tableSel + ' tbody tr').forEach((r) => r.classList.remove('selected'));
        tr.classList.add('selected');
        onClick(it, tr);
      });
      tbody.append(tr);
    }
  }

  const pad = (n) => String(n).padStart(2, '0');
  function time(ms) {
    if (ms === null || ms === undefined) return '';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  function dur(ms) {
    if (ms === null || ms === undefined) return '';
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + '秒';
    const m = Math.floor(s / 60);
    if (m < 60) return m + '分' + pad(s % 60) + '秒';
    return Math.floor(m / 60) + '小时' + pad(m % 60) + '分';
  }
  const pct = (x) => (x === null || x === undefined ? '—' : (x * 100).toFixed(1) + '%');
  function today() {
    const d = new Date();
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  function toast(msg, bad) {
    const box = $('#toast');
    if (!box) { if (bad) alert(msg); return; }
    const t = el('div', { class: bad ? 'bad' : '', text: msg });
    box.append(t);
    setTimeout(() => t.remove(), bad ? 6000 : 3000);
  }
  // Runs an action, showing its error as a toast instead of failing silently.
  async function act(fn, okMsg) {
    try {
      const r = await fn();
      if (okMsg) toast(okMsg);
      return r;
    } catch (e) {
      toast(e.message, true);
      return undefined;
    }
  }

  function form(f) {
    const o = {};
    for (const [k, v] of new FormData(f).entries()) o[k] = typeof v === 'string' ? v.trim() : v;
    return o;
  }
  function query(o) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(o)) if (v !== '' && v !== undefined && v !== null) p.set(k, v);
    const s = p.toString();
    return s ? '?' + s : '';
  }

  // The live stream: reconnects by itself (EventSource does); handlers by event name.
  function live(params, handlers) {
    const es = new EventSource('/api/v1/console/events' + query(params || {}));
    const dot = $('#live');
    es.addEventListener('hello', () => { if (dot) dot.classList.add('on'); (handlers.hello || (() => {}))(); });
    es.onerror = () => { if (dot) dot.classList.remove('on'); };
    for (const [name, fn] of Object.entries(handlers)) {
      if (name === 'hello') continue;
      es.addEventListener(name, (ev) => { try { fn(JSON.parse(ev.data)); } catch (e) { console.error(e); } });
    }
    return es;
  }

  const STATE_ZH = { offline: '未签入', ready: '空闲', not_ready: '置忙', ringing: '振铃', busy: '通话中', wrap_up: '话后整理' };
  const stateOf = (s) => (s && typeof s === 'object' ? s.state : s) || 'offline';

  document.addEventListener('DOMContentLoaded', () => {
    const out = $('#logout');
    if (out) out.addEventListener('click', async () => {
      await act(() => api('POST', '/api/v1/auth/logout'));
      location.href = '/login';
    });
  });

  return { api, el, $, $$, rows, time, dur, pct, today, toast, act, form, query, live, STATE_ZH, stateOf };
})();
