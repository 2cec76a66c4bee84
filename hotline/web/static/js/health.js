// 系统状态: readiness (database, recording directory), SIP trunk and seats; refreshed every 10 s.
'use strict';
(() => {
  const { api, $, el } = H;
  async function load() {
    const ready = await fetch('/readyz', { credentials: 'same-origin' }).then(async (r) => ({ ok: r.ok, body: await r.json().catch(() => ({})) })).catch(() => ({ ok: false, body: {} }));
    const checks = ready.body.checks || {};
    const rows = Object.entries(checks).map(([k, v]) => ({ name: k, ok: v === 'ok' || v === true || (v && v.ok), detail: typeof v === 'string' ? v : JSON.stringify(v) }));
    rows.unshift({ name: '整体', ok: ready.ok, detail: ready.ok ? '正常' : '异常' });
    H.rows('#checks', rows, (r) => [r.name, el('span', { class: 'state', 'data-state': r.ok ? 'ready' : 'busy', text: r.ok ? '正常' : '异常' }), r.detail]);
    const sip = await api('GET', '/api/v1/sip/status').catch((e) => ({ error: e.message }));
    $('#sip').textContent = JSON.stringify(sip, null, 2);
  }
  document.addEventListener('DOMContentLoaded', () => { load(); setInterval(load, 10000); });
})();
