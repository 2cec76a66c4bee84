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

// --- prompts: begin --------------------------------------------------------------------
// 提示音: every prompt with its text, length and source; listen in the page's <audio>;
// upload a replacement (checked by the server: format, length, silence — its zh-CN reason is
// shown beside the form); revert to the built-in recording. API: /api/v1/prompts.
(() => {
  const { api, el, $, $$, act, toast } = H;
  const SOURCE = { builtin: '内置', uploaded: '已上传' };
  const audioUrl = (p) => `/api/v1/prompts/${encodeURIComponent(p.name)}/audio` + H.query({ v: p.updated_at || '' });
  const secs = (ms) => (ms === null || ms === undefined ? '' : (ms / 1000).toFixed(1) + ' 秒');
  let prompts = [];

  function play(p) {
    const player = $('#prompt-player');
    player.src = audioUrl(p);
    player.load();
    player.play().catch(() => {}); // a browser may refuse to start by itself; the controls remain
    $('#prompt-playing').textContent = `试听：${p.name}（${SOURCE[p.source]}）`;
  }
  function render() {
    const f = $('#prompt-filter').value.trim();
    const shown = prompts.filter((p) => !f || p.name.includes(f) || p.text.includes(f));
    H.rows('#prompts', shown, (p) => [p.name, p.text, secs(p.duration_ms),
      el('span', { class: 'prompt-source', 'data-source': p.source, text: SOURCE[p.source] || p.source }),
      p.updated_at ? H.time(p.updated_at) : '',
      el('span', {},
        el('button', { type: 'button', class: 'prompt-play', onclick: (ev) => { ev.stopPropagation(); play(p); } }, '试听'),
        p.source === 'uploaded' ? el('button', { type: 'button', class: 'prompt-revert', onclick: (ev) => { ev.stopPropagation(); revert(p); } }, '恢复内置') : '')],
    (p) => { $('#prompt-name').value = p.name; });
    $$('#prompts tbody tr').forEach((tr, i) => { if (shown[i]) tr.dataset.name = shown[i].name; });
  }
  async function load() {
    const r = await act(() => api('GET', '/api/v1/prompts'));
    if (!r) return;
    prompts = r.items || [];
    const sel = $('#prompt-name');
    const keep = sel.value;
    sel.replaceChildren(...prompts.map((p) => el('option', { value: p.name, text: p.text ? `${p.name} ${p.text.slice(0, 12)}` : p.name })));
    if (keep) sel.value = keep;
    render();
  }
  async function revert(p) {
    if (!confirm(`删除上传的录音，恢复“${p.name}”的内置提示音？`)) return;
    if (await act(() => api('DELETE', '/api/v1/prompts/' + encodeURIComponent(p.name)), '已恢复内置提示音')) load();
  }
  document.addEventListener('DOMContentLoaded', () => {
    $('#prompt-filter').addEventListener('input', render);
    $('#prompt-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const file = $('#prompt-file').files[0];
      const name = $('#prompt-name').value;
      $('#prompt-error').textContent = '';
      if (!file || !name) return;
      try {
        const p = await api('PUT', '/api/v1/prompts/' + encodeURIComponent(name) + H.query({ file_name: file.name }), file);
        toast(`已上传：${p.name}，${secs(p.duration_ms)}，新来电立即使用`);
        ev.target.reset();
        $('#prompt-name').value = name;
        await load();
        play(p);
      } catch (e) {
        $('#prompt-error').textContent = e.message;
      }
    });
    load();
  });
})();
// --- prompts: end ----------------------------------------------------------------------
