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
  document.addEventListener('DOMContentLoaded', () => {
    $('#user-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = await act(() => api('POST', '/api/v1/users', H.form(ev.target)), '用户已创建');
      if (r) { ev.target.reset(); users(); }
    });
    users(); seats(); audit();
  });
})();
