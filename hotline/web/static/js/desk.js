// 坐席工作台: agent state, the screen-pop, the call's controls, knowledge search, the ticket
// form prefilled from the call, and callback tasks with click-to-call.
'use strict';
(() => {
  const { api, el, $, act, toast } = H;
  let seat = localStorage.getItem('hotline.seat') || '';
  let currentCall = null;
  let recordingPaused = false;
  let held = false;
  const setHeld = (on) => {
    held = on;
    $('#btn-hold').textContent = on ? '取回' : '保持';
    $('#btn-hold').classList.toggle('warn', on);
  };
  let wrapUntil = null;

  const seatOrWarn = () => {
    seat = $('#seat').value.trim();
    if (!seat) { toast('请先填写分机号', true); return null; }
    localStorage.setItem('hotline.seat', seat);
    return seat;
  };
  const agentPath = (s, what) => '/api/v1/acd/agents/' + encodeURIComponent(s) + '/' + what;

  async function refreshState() {
    const snap = await api('GET', '/api/v1/acd').catch(() => null);
    const me = snap && (snap.agents || []).find((a) => a.agent === seat);
    // Transfer targets: every queue, and every colleague who is ready now.
    const sel = $('#transfer-to');
    const queues = ((snap && snap.queues) || []).map((q) => 'q:' + q.name);
    const colleagues = ((snap && snap.agents) || [])
      .filter((a) => a.agent !== seat && H.stateOf(a.state) === 'ready').map((a) => 'a:' + a.agent);
    const want = queues.concat(colleagues);
    const have = Array.from(sel.options).map((o) => o.value);
    if (want.join() !== have.join()) {
      const keep = sel.value;
      sel.replaceChildren(
        el('optgroup', { label: '队列' }, queues.map((v) => el('option', { value: v, text: v.slice(2) }))),
        el('optgroup', { label: '空闲坐席' }, colleagues.map((v) => el('option', { value: v, text: '坐席 ' + v.slice(2) }))),
      );
      if (want.includes(keep)) sel.value = keep;
    }
    const st = me ? H.stateOf(me.state) : 'offline';
    const badge = $('#agent-state');
    badge.dataset.state = st;
    let text = H.STATE_ZH[st] || st;
    if (me && st === 'not_ready' && me.state.reason) text += '：' + me.state.reason;
    badge.textContent = text;
    wrapUntil = me && st === 'wrap_up' ? me.state.until : null;
    const offset = snap && snap.now ? Date.now() - snap.now : 0;
    if (wrapUntil) wrapUntil += offset;
    tick();
    if (me && (st === 'busy' || st === 'ringing') && me.state.call_id) currentCall = me.state.call_id;
    $('#call-actions').hidden = !currentCall;
  }
  function tick() {
    $('#wrap-up').textContent = wrapUntil ? '话后整理剩余 ' + H.dur(Math.max(0, wrapUntil - Date.now())) : '';
  }
  setInterval(tick, 1000);

  function showPop(p) {
    currentCall = p.call_id;
    recordingPaused = false;
    setHeld(false);
    $('#btn-rec').textContent = '暂停录音';
    const box = $('#pop');
    box.classList.remove('empty');
    box.classList.add('ringing');
    const c = p.contact || {};
    const history = (p.history || []).map((i) => el('li', {}, H.time(i.at) + ' ' + i.summary));
    const ZH = { received: '保证金已缴', not_received: '保证金未缴', paid: '已缴纳', won: '成交', lost: '未成交', absent: '未参加',
      pending: '待处理', done: '已退款', failed: '退款失败', refunded: '已退款', not_applicable: '' };
    const label = (v) => { const k = v && typeof v === 'object' ? v.state : v; return k in ZH ? ZH[k] : k; };
    const bidders = (p.bidders || []).map((b) => el('li', {},
      [b.period + '期', b.application_code, b.name, b.id_number, label(b.deposit_status), label(b.result), label(b.refund_status)]
        .filter(Boolean).join(' · ')));
    box.replaceChildren(
      el('dl', {},
        el('dt', { text: '来电号码' }), el('dd', { id: 'pop-caller', text: p.caller || '未知' }),
        el('dt', { text: '队列' }), el('dd', { text: p.queue || '' }),
        el('dt', { text: 'IVR 路径' }), el('dd', { id: 'pop-ivr', text: p.ivr_path || '（直接转人工）' }),
        el('dt', { text: '等待时长' }), el('dd', { text: H.dur(p.wait_ms) }),
        el('dt', { text: '来电人' }), el('dd', { text: c.name || (c.id ? '老用户' : '首次来电') }),
      ),
      el('h3', { text: '最近接触记录' }), history.length ? el('ul', {}, history) : el('p', { class: 'muted', text: '无' }),
      el('h3', { text: '竞买人记录' }), bidders.length ? el('ul', { id: 'pop-bidders' }, bidders) : el('p', { class: 'muted', text: '该号码无竞买记录' }),
    );
    box.dataset.shownAt = String(Date.now());
    box.dataset.rangAt = String(p.rang_at || '');
    // Prefill the ticket form from the call.
    $('#t-phone').value = p.caller || '';
    $('#t-call').value = p.call_id || '';
    $('#t-contact').value = c.id || '';
    if (bidders.length && p.bidders[0].application_code) $('#t-code').value = p.bidders[0].application_code;
    $('#call-actions').hidden = false;
  }

  async function loadCallbacks() {
    const data = await api('GET', '/api/v1/callbacks/due').catch(() => ({ items: [] }));
    const items = data.items || data || [];
    H.rows('#callbacks', items, (t) => [
      t.phone, t.note || t.source, H.time(t.next_attempt_at),
      el('button', { type: 'button', onclick: (ev) => { ev.stopPropagation(); callBack(t); } }, '回拨'),
    ]);
  }
  async function callBack(t) {
    if (!seatOrWarn()) return;
    await act(() => api('POST', '/api/v1/callbacks/' + encodeURIComponent(t.id) + '/call', { seat }), '正在呼叫，请接起分机');
    loadCallbacks();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('#seat').value = seat;
    $('#btn-login').addEventListener('click', async () => {
      if (!seatOrWarn()) return;
      const queues = $('#queues').value.split(/[,，\s]+/).filter(Boolean);
      await act(() => api('POST', agentPath(seat, 'login'), { queues }), '已签入');
      connect();
      refreshState();
    });
    $('#btn-ready').addEventListener('click', async () => {
      if (!seatOrWarn()) return;
      await act(() => api('POST', agentPath(seat, 'ready'), {}));
      refreshState();
    });
    $('#btn-not-ready').addEventListener('click', async () => {
      if (!seatOrWarn()) return;
      await act(() => api('POST', agentPath(seat, 'not-ready'), { reason: $('#nr-reason').value }));
      refreshState();
    });
    $('#btn-logout').addEventListener('click', async () => {
      if (!seatOrWarn()) return;
      await act(() => api('POST', agentPath(seat, 'logout'), {}), '已签出');
      refreshState();
    });
    $('#btn-hangup').addEventListener('click', async () => {
      if (!currentCall) return;
      await act(() => api('POST', '/api/v1/calls/' + encodeURIComponent(currentCall) + '/hangup', {}), '已挂断');
    });
    $('#btn-transfer').addEventListener('click', async () => {
      const to = $('#transfer-to').value;
      if (!currentCall || !to) return;
      const body = to.startsWith('a:') ? { agent: to.slice(2) } : { queue: to.slice(2) };
      const done = body.agent ? '已转给坐席 ' + body.agent : '已转入队列：' + body.queue;
      const r = await act(() => api('POST', '/api/v1/calls/' + encodeURIComponent(currentCall) + '/transfer', body), done);
      if (r) { currentCall = null; setHeld(false); $('#call-actions').hidden = true; refreshState(); }
    });
    $('#btn-hold').addEventListener('click', async () => {
      if (!currentCall) return;
      const want = !held;
      const r = await act(() => api('POST', '/api/v1/calls/' + encodeURIComponent(currentCall) + '/hold', { on: want }),
        want ? '来电人已保持（听等待音乐）' : '已取回通话');
      if (r) setHeld(want);
    });
    $('#btn-rec').addEventListener('click', async () => {
      if (!currentCall) return;
      const want = !recordingPaused;
      const r = await act(() => api('POST', '/api/v1/calls/' + encodeURIComponent(currentCall) + '/recording', { paused: want }));
      if (r !== undefined) {
        recordingPaused = want;
        $('#btn-rec').textContent = want ? '恢复录音' : '暂停录音';
        toast(want ? '录音已暂停' : '录音已恢复');
      }
    });
    $('#kb-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const q = $('#kb-q').value.trim();
      if (!q) return;
      const r = await act(() => api('GET', '/api/v1/kb/search' + H.query({ text: q, limit: 5 })));
      if (!r) return;
      const list = $('#kb-results');
      list.replaceChildren(...r.hits.map((h) => el('li', {}, el('strong', { html: h.title_html }), el('div', { class: 'muted', html: h.snippet_html }))));
      if (!r.hits.length) list.append(el('li', { class: 'muted', text: '没有找到相关文章' }));
    });
    $('#ticket-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const v = H.form(ev.target);
      for (const k of ['call_id', 'contact_id', 'application_code']) if (!v[k]) delete v[k];
      const r = await act(() => api('POST', '/api/v1/tickets', v), '工单已保存');
      if (r) { ev.target.reset(); }
    });
    if (seat) connect();
    refreshState();
    loadCallbacks();
  });

  let es = null;
  function connect() {
    if (es) es.close();
    es = H.live({ seat }, {
      hello: refreshState,
      pop: (p) => { showPop(p); refreshState(); },
      acd: refreshState,
      lagged: refreshState,
      call: (c) => {
        if (c.call_id === currentCall && c.kind === 'ended') {
          currentCall = null;
          $('#pop').classList.remove('ringing');
          $('#call-actions').hidden = true;
        }
        if (c.call_id === currentCall && c.kind === 'bridged') $('#pop').classList.remove('ringing');
      },
    });
  }
})();

// Online chats (WeChat and the website widget): the queue and one's own conversations, a
// thread with the user's earlier history, replies and closing. Refreshed every 5 s.
(() => {
  const { api, el, $, $$, act } = H;
  const CH = { wechat: '微信', web: '网站' };
  const WHO = { user: '用户', bot: '自动回复', agent: '坐席', system: '系统' };
  let open = null;
  const view = () => ($$('input[name=chat-view]').find((r) => r.checked) || {}).value || 'queue';
  async function list() {
    const items = await api('GET', '/api/v1/chats' + H.query({ view: view() })).catch(() => null);
    if (!items) return;
    H.rows('#chats', items, (c) => [CH[c.channel] || c.channel, c.user_id.slice(-8), H.time(c.taken_at || c.queued_at),
      c.state === 'queued' ? el('button', { type: 'button', onclick: (ev) => { ev.stopPropagation(); take(c); } }, '接入') : ''], (c) => show(c.id));
  }
  async function take(c) {
    const r = await act(() => api('POST', '/api/v1/chats/' + encodeURIComponent(c.id) + '/take', {}), '已接入会话');
    if (r !== undefined) { $$('input[name=chat-view]').forEach((x) => { x.checked = x.value === 'mine'; }); list(); show(c.id); }
  }
  async function show(id) {
    const t = await act(() => api('GET', '/api/v1/chats/' + encodeURIComponent(id)));
    if (!t) return;
    open = t.conversation;
    $('#chat-thread').hidden = false;
    $('#chat-title').textContent = `${CH[open.channel] || open.channel}用户 ${open.user_id.slice(-8)}` +
      (t.reply_deadline ? ` · 可回复至 ${H.time(t.reply_deadline)}` : '');
    const line = (m) => el('li', {}, `${H.time(m.at)} ${WHO[m.sender] || m.sender}${m.agent ? '(' + m.agent + ')' : ''}：${m.body}`);
    $('#chat-history').replaceChildren(...(t.history || []).map(line));
    $('#chat-messages').replaceChildren(...(t.messages || []).map(line));
  }
  document.addEventListener('DOMContentLoaded', () => {
    $$('input[name=chat-view]').forEach((r) => r.addEventListener('change', list));
    $('#chat-reply').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!open) return;
      const text = $('#chat-text').value.trim();
      const r = await act(() => api('POST', '/api/v1/chats/' + encodeURIComponent(open.id) + '/messages', { text }));
      if (r !== undefined) { $('#chat-text').value = ''; show(open.id); }
    });
    $('#chat-close').addEventListener('click', async () => {
      if (!open) return;
      const r = await act(() => api('POST', '/api/v1/chats/' + encodeURIComponent(open.id) + '/close', {}), '会话已结束，已邀请用户评价');
      if (r !== undefined) { $('#chat-thread').hidden = true; open = null; list(); }
    });
    list();
    setInterval(() => { list(); if (open) show(open.id); }, 5000);
  });
})();
