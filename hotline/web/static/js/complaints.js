// 投诉处理 (complaint officers only): cases, linked recordings, finding, reply, closing.
'use strict';
(() => {
  const { api, el, $, act } = H;
  let current = null;
  async function load() {
    const r = await act(() => api('GET', '/api/v1/complaints'));
    if (!r) return;
    H.rows('#complaints', r.items, (c) => [c.ticket.id.slice(-8), c.ticket.title, c.ticket.named_agent || '', c.ticket.status, H.time(c.ticket.created_at), H.time(c.ticket.due_at)], open);
  }
  async function open(c) {
    const d = await act(() => api('GET', '/api/v1/complaints/' + encodeURIComponent(c.ticket.id)));
    if (!d) return;
    current = d;
    $('#complaint-card').hidden = false;
    $('#c-title').textContent = d.ticket.title;
    $('#c-body').textContent = d.ticket.body;
    const recs = await api('GET', '/api/v1/recordings' + H.query({ complaint_id: d.ticket.id })).catch(() => ({ items: [] }));
    $('#c-recordings').replaceChildren(...(recs.items || []).map((r) => el('li', {}, el('a', { href: '/qa#' + r.id, text: H.time(r.started_at) + ' 坐席 ' + r.agent + ' ' + H.dur(r.duration_ms) }))));
  }
  const post = (what, body, ok) => act(() => api('POST', '/api/v1/complaints/' + encodeURIComponent(current.ticket.id) + '/' + what, body), ok);
  document.addEventListener('DOMContentLoaded', () => {
    $('#finding-form').addEventListener('submit', async (ev) => { ev.preventDefault(); if (await post('finding', H.form(ev.target), '结论已保存')) load(); });
    $('#callback-form').addEventListener('submit', async (ev) => { ev.preventDefault(); if (await post('citizen-callback', H.form(ev.target), '已记录')) ev.target.reset(); });
    $('#close-form').addEventListener('submit', async (ev) => { ev.preventDefault(); if (await post('close', {}, '已办结')) load(); });
    load();
  });
})();
