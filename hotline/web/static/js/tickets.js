// 工单: list with filters, a ticket's history, comments and status changes.
'use strict';
(() => {
  const { api, el, $, act } = H;
  const KIND = { inquiry: '咨询', complaint: '投诉', suggestion: '建议', refund_request: '退回成交价款申请', work_order_12345: '12345工单', callback: '回访', deposit_authorization: '授权缴纳保证金' };
  const STATUS = { new: '新建', assigned: '已分派', in_progress: '处理中', awaiting_callback: '待回访', resolved: '已解决', closed: '已关闭' };
  let current = null;
  async function load() {
    const r = await act(() => api('GET', '/api/v1/tickets' + H.query(H.form($('#filters')))));
    if (!r) return;
    H.rows('#tickets', r.items, (t) => [t.id.slice(-8), KIND[t.kind] || t.kind, t.title, t.caller_phone,
      STATUS[t.status] || t.status, t.assignee || '', el('span', { class: t.overdue ? 'error' : '', text: H.time(t.due_at) })], open);
  }
  async function open(t) {
    const [d, hist] = await Promise.all([
      api('GET', '/api/v1/tickets/' + encodeURIComponent(t.id)),
      api('GET', '/api/v1/tickets/' + encodeURIComponent(t.id) + '/history').catch(() => ({ items: [] })),
    ]).catch((e) => { H.toast(e.message, true); return [null, null]; });
    if (!d) return;
    current = d.ticket || d;
    $('#ticket-card').hidden = false;
    $('#tk-title').textContent = `${current.title}（${STATUS[current.status] || current.status}）`;
    $('#tk-body').textContent = current.body || '';
    const items = (hist && (hist.items || hist)) || [];
    $('#tk-history').replaceChildren(...items.map((h) => el('li', {}, H.time(h.at) + ' ' + (h.actor || '') + ' ' + (h.action || h.kind || '') + ' ' + (h.note || h.body || ''))));
  }
  document.addEventListener('DOMContentLoaded', () => {
    $('#filters').addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
    $('#comment-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = await act(() => api('POST', '/api/v1/tickets/' + encodeURIComponent(current.id) + '/comments', H.form(ev.target)), '备注已添加');
      if (r) { ev.target.reset(); open(current); }
    });
    $('#transition-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const v = H.form(ev.target);
      const r = await act(() => api('POST', '/api/v1/tickets/' + encodeURIComponent(current.id) + '/transition', { to: v.to, note: v.note, version: current.version }), '状态已更新');
      if (r) { load(); open(current); }
    });
    load();
  });
})();
