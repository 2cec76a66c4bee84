// 系统告警 (docs/alerts.md): the active health alerts as a banner (wallboard) and the active
// and recent ones as a table (health and admin pages), with 确认; re-read on every `alert`
// event of the console's stream. Loaded by the pages that have #sys-alerts or #alert-list.
'use strict';
(() => {
  const { api, $, el, act } = H;
  const SEV = { critical: '严重', warning: '警告' };
  async function ack(a) {
    const r = await act(() => api('POST', '/api/v1/alerts/' + encodeURIComponent(a.id) + '/ack', {}), '告警已确认');
    if (r) load();
  }
  const ackButton = (a) => el('button', { type: 'button', class: 'link', 'data-ack': a.id, onclick: () => ack(a) }, '确认');
  function status(a) {
    if (!a.active) return '已恢复 ' + H.time(a.cleared_at);
    return a.acked_by ? `处理中（${a.acked_by} 已确认）` : '告警中';
  }
  async function load() {
    const r = await api('GET', '/api/v1/alerts').catch(() => null);
    if (!r) return;
    const banner = $('#sys-alerts');
    if (banner) {
      banner.replaceChildren(...r.active.map((a) => el('div', { class: 'alert-item', 'data-rule': a.rule, 'data-severity': a.severity },
        `【${SEV[a.severity] || a.severity}】${a.title}：${a.message}（${H.time(a.raised_at)} 起）`,
        a.acked_by ? ` · ${a.acked_by} 已确认` : ackButton(a))));
    }
    if ($('#alert-list')) {
      H.rows('#alert-list', r.active.concat(r.recent), (a) => [H.time(a.raised_at),
        el('span', { class: 'sev', 'data-severity': a.severity, text: SEV[a.severity] || a.severity }),
        a.title, a.subject, a.message, status(a), a.active && !a.acked_by ? ackButton(a) : '']);
    }
    const off = $('#alerts-off');
    if (off) off.hidden = r.enabled;
  }
  document.addEventListener('DOMContentLoaded', () => {
    if (!$('#sys-alerts') && !$('#alert-list')) return;
    load();
    H.live({}, { hello: load, alert: load, lagged: load });
  });
})();
