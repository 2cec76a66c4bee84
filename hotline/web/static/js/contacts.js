// 来电人档案: find a caller, read their timeline.
'use strict';
(() => {
  const { api, el, $, act } = H;
  const KIND = { call: '来电', wechat: '微信', web: '网页', sms: '短信', ticket: '工单', complaint: '投诉', callback: '回访', survey: '满意度' };
  async function open(c) {
    const t = await act(() => api('GET', '/api/v1/contacts/' + encodeURIComponent(c.id) + '/timeline'));
    if (!t) return;
    $('#timeline-card').hidden = false;
    $('#timeline').replaceChildren(...t.items.map((i) => el('li', {}, H.time(i.at) + ' [' + (KIND[i.kind] || i.kind) + '] ' + i.summary)));
    if (!t.items.length) $('#timeline').append(el('li', { class: 'muted', text: '暂无记录' }));
  }
  document.addEventListener('DOMContentLoaded', () => {
    $('#search').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = await act(() => api('GET', '/api/v1/contacts' + H.query(H.form(ev.target))));
      if (r) H.rows('#contacts', r.items, (c) => [c.phone || c.wechat_openid || '', c.name || '', (c.application_codes || []).join('、'), H.time(c.created_at)], open);
    });
  });
})();
