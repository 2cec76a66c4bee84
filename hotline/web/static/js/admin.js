// 系统管理: users and roles, seats, the audit log.
'use strict';
(() => {
  const { api, el, $, act } = H;
  const ROLE = { admin: '系统管理员', supervisor: '项目主管', agent: '话务坐席', complaint_officer: '投诉专员', qa_reviewer: '质检员', business: '业务人员' };
  async function users() {
    const r = await act(() => api('GET', '/api/v1/users'));
    if (!r) return;
    H.rows('#users', r.items || r, (u) => [u.username, u.display_name, ROLE[u.role] || u.role, u.disabled ? '已停用' : '正常',
      el('button', { type: 'button', onclick: async () => { await act(() => api('POST', '/api/v1/users/' + encodeURIComponent(u.username) + (u.disabled ? '/enable' : '/disable'), {}), '已更新'); users(); } }, u.disabled ? '启用' : '停用')]);
  }
  async function seats() {
    const r = await api('GET', '/api/v1/seats').catch(() => ({ items: [] }));
    H.rows('#seats', r.items || r || [], (s) => [s.number, s.display_name || s.name || '', s.registered || s.contact ? '已注册' : '未注册']);
  }
  async function audit() {
    const r = await api('GET', '/api/v1/audit' + H.query({ limit: 50 })).catch(() => ({ items: [] }));
    H.rows('#audit', r.items || r || [], (a) => [H.time(a.at), a.actor, a.action, a.target, a.remote_addr]);
  }
  async function flow() {
    const f = await act(() => api('GET', '/api/v1/ivr/flow'));
    if (!f) return;
    $('#flow-info').textContent = `${f.path} · ` + (f.check.ok ? `流程“${f.check.name}”，${f.check.nodes} 个节点，${f.check.prompts} 段提示音：校验通过` : `校验失败：${f.check.error}`);
    $('#flow-source').textContent = f.source;
  }
  // Trunk peers' state as the gateway exports it (OPTIONS keepalives): the metric
  // hotline_sip_trunk_peer_up{peer="…"} 1 or 0.
  async function peers() {
    const text = await fetch('/metrics', { credentials: 'same-origin' }).then((r) => r.text()).catch(() => '');
    const list = [];
    for (const m of text.matchAll(/^hotline_sip_trunk_peer_up\{peer="([^"]*)"\} (\d+)/gm)) list.push({ name: m[1], up: m[2] === '1' });
    H.rows('#peers', list, (p) => [p.name, el('span', { class: 'state', 'data-state': p.up ? 'ready' : 'busy', text: p.up ? '正常' : '中断' })]);
  }
  document.addEventListener('DOMContentLoaded', () => {
    $('#flow-check').addEventListener('click', flow);
    $('#flow-reload').addEventListener('click', async () => {
      const r = await act(() => api('POST', '/api/v1/ivr/reload', {}), '流程已重新加载');
      if (r) flow();
    });
    flow(); peers();
    $('#user-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = await act(() => api('POST', '/api/v1/users', H.form(ev.target)), '用户已创建');
      if (r) { ev.target.reset(); users(); }
    });
    users(); seats(); audit();
  });
})();
