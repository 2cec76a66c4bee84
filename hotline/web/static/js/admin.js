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

// ---- begin: queues & strategies, service hours & holidays (issue 10) ----
// Each queue's settings (edits apply to the running ACD at once, versioned: a stale edit is
// refused with 409 and the list is reloaded), and the calendar of special service days.
(() => {
  const { api, el, $, act } = H;
  const STRATEGY = { longest_idle: '最长空闲优先', round_robin: '轮流分配', ring_all: '同时振铃' };
  const WEEKDAY = { mon: '一', tue: '二', wed: '三', thu: '四', fri: '五', sat: '六', sun: '日' };
  const secs = (ms) => (ms ? H.dur(ms) : '关闭');

  function showQueueForm(show) { $('#queue-form').style.display = show ? '' : 'none'; }

  async function queues() {
    const r = await act(() => api('GET', '/api/v1/acd/queue-settings'));
    if (!r) return;
    H.rows('#queue-settings', r.items, (q) => {
      const s = q.settings;
      const live = q.live ? `${q.live.waiting} / ${q.live.agents_ready}` : '—';
      return [q.name, STRATEGY[s.strategy] || s.strategy, secs(s.announce_every_ms), secs(s.max_wait_ms),
        s.callback_key || '无', s.moh, live, q.edited ? `v${q.version}（${q.updated_by}）` : '配置文件',
        el('button', { type: 'button', 'data-queue': q.name, onclick: () => editQueue(q) }, '编辑')];
    });
  }

  function editQueue(q) {
    const f = $('#queue-form');
    const s = q.settings;
    $('#queue-form-name').textContent = '队列 ' + q.name;
    f.queue.value = q.name;
    f.version.value = q.version;
    f.strategy.value = s.strategy;
    f.announce_s.value = Math.round(s.announce_every_ms / 1000);
    f.max_wait_s.value = Math.round(s.max_wait_ms / 1000);
    f.callback_key.value = s.callback_key;
    f.moh.value = s.moh;
    showQueueForm(true);
  }

  async function saveQueue(ev) {
    ev.preventDefault();
    const v = H.form(ev.target);
    const body = {
      version: Number(v.version), strategy: v.strategy,
      announce_every_ms: Number(v.announce_s || 0) * 1000, max_wait_ms: Number(v.max_wait_s || 0) * 1000,
      callback_key: v.callback_key, moh: v.moh,
    };
    try {
      await api('PUT', '/api/v1/acd/queues/' + encodeURIComponent(v.queue) + '/settings', body);
      H.toast('队列设置已保存并生效');
      showQueueForm(false);
    } catch (e) {
      H.toast(e.message, true);
      if (e.status !== 409) return;
      showQueueForm(false); // someone else changed it: show what is in force now
    }
    queues();
  }

  function arrangement(d) {
    return d.closed ? '全天停止服务' : `${d.open || ''}–${d.close || ''}`;
  }

  function resetDayForm() {
    const f = $('#day-form');
    f.reset();
    f.version.value = '';
    f.date.readOnly = false;
    $('#day-submit').textContent = '添加特殊日期';
    $('#day-cancel').hidden = true;
  }

  async function days() {
    const r = await act(() => api('GET', '/api/v1/service-days'));
    if (!r) return;
    const w = r.weekly;
    $('#hours-weekly').textContent = w
      ? `每周服务：星期${w.days.map((d) => WEEKDAY[d] || d).join('、')} ${w.open === w.close ? '全天 24 小时' : `${w.open}–${w.close}`}（UTC${w.utc_offset}，来自 IVR 流程文件）`
      : `流程文件未能加载：${r.flow_error}`;
    const mine = new Map(r.items.map((d) => [d.date, d]));
    const all = r.in_force.length ? r.in_force : r.items;
    H.rows('#service-days', all, (d) => {
      const db = mine.get(d.date);
      return [d.date, arrangement(d), d.note || '', db ? `后台设置 v${db.version}` : '流程文件',
        db ? [el('button', { type: 'button', onclick: () => editDay(db) }, '修改'), ' ',
          el('button', { type: 'button', onclick: () => deleteDay(db) }, '删除')] : ''];
    });
  }

  function editDay(d) {
    const f = $('#day-form');
    f.date.value = d.date;
    f.date.readOnly = true;
    f.closed.checked = d.closed;
    f.open.value = d.open || '';
    f.close.value = d.close || '';
    f.note.value = d.note || '';
    f.version.value = d.version;
    $('#day-submit').textContent = '保存修改';
    $('#day-cancel').hidden = false;
  }

  async function deleteDay(d) {
    if (!confirm(`删除 ${d.date} 的特殊日期设置？`)) return;
    const r = await act(() => api('DELETE', '/api/v1/service-days/' + d.date), '已删除');
    if (r) { resetDayForm(); days(); }
  }

  async function saveDay(ev) {
    ev.preventDefault();
    const f = ev.target;
    const v = H.form(f);
    const closed = f.closed.checked;
    const body = { closed, note: v.note, open: closed ? null : v.open, close: closed ? null : v.close };
    const editing = v.version !== '';
    const r = editing
      ? await act(() => api('PUT', '/api/v1/service-days/' + v.date, { ...body, version: Number(v.version) }), '特殊日期已修改并生效')
      : await act(() => api('POST', '/api/v1/service-days', { ...body, date: v.date }), '特殊日期已添加并生效');
    if (r) resetDayForm();
    days();
  }

  document.addEventListener('DOMContentLoaded', () => {
    showQueueForm(false);
    $('#queue-form').addEventListener('submit', saveQueue);
    $('#queue-cancel').addEventListener('click', () => showQueueForm(false));
    $('#day-form').addEventListener('submit', saveDay);
    $('#day-cancel').addEventListener('click', resetDayForm);
    queues(); days();
  });
})();
// ---- end: queues & strategies, service hours & holidays ----
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
