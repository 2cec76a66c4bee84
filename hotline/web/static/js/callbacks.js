// 回访任务: due callbacks, click-to-call from the agent's seat, cancel.
'use strict';
(() => {
  const { api, el, $, act } = H;
  const SRC = { queue_request: '排队中预约', after_hours: '非工作时间', manual: '手工创建', complaint: '投诉回复', ticket: '工单' };
  async function load() {
    const path = $('#due-only').checked ? '/api/v1/callbacks/due' : '/api/v1/callbacks';
    const r = await act(() => api('GET', path));
    if (!r) return;
    H.rows('#callbacks', r.items || r, (t) => [t.phone, SRC[t.source] || t.source, t.queue || '', H.time(t.next_attempt_at), t.attempts, t.status,
      el('span', {},
        el('button', { type: 'button', onclick: () => call(t) }, '回拨'), ' ',
        el('button', { type: 'button', onclick: () => cancel(t) }, '取消'))]);
  }
  async function call(t) {
    const seat = localStorage.getItem('hotline.seat') || prompt('您的分机号');
    if (!seat) return;
    localStorage.setItem('hotline.seat', seat);
    await act(() => api('POST', '/api/v1/callbacks/' + encodeURIComponent(t.id) + '/call', { seat }), '正在呼叫，请接起分机');
    load();
  }
  async function cancel(t) {
    await act(() => api('POST', '/api/v1/callbacks/' + encodeURIComponent(t.id) + '/cancel', {}), '已取消');
    load();
  }
  document.addEventListener('DOMContentLoaded', () => { $('#due-only').addEventListener('change', load); load(); });
})();
