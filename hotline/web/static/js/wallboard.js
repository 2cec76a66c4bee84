// 监控大屏: queues, agents and today's figures, refreshed on every ACD event (and every 10 s
// for the clocks).
'use strict';
(() => {
  const { api, $, el } = H;
  let snap = null;
  let offset = 0;

  async function loadAcd() {
    snap = await api('GET', '/api/v1/acd').catch(() => null);
    if (!snap) return;
    offset = snap.now ? Date.now() - snap.now : 0;
    renderAcd();
  }
  function renderAcd() {
    const queues = snap.queues || [];
    const waiting = queues.reduce((n, q) => n + q.waiting, 0);
    const longest = Math.max(0, ...queues.map((q) => q.longest_wait_ms));
    $('#t-waiting').textContent = waiting;
    $('#t-longest').textContent = H.dur(longest);
    H.rows('#queues', queues, (q) => [q.name, q.waiting, H.dur(q.longest_wait_ms), q.agents_ready, q.agents_logged_in,
      q.service_level_percent === null || q.service_level_percent === undefined ? '—' : q.service_level_percent.toFixed(1) + '%']);
    const since = snap.since || {};
    const now = Date.now() - offset;
    const agents = (snap.agents || []).slice().sort((a, b) => a.agent.localeCompare(b.agent));
    H.rows('#agents', agents, (a) => {
      const st = H.stateOf(a.state);
      return [a.agent, el('span', { class: 'state', 'data-state': st, text: H.STATE_ZH[st] || st }),
        since[a.agent] ? H.dur(now - since[a.agent]) : '', (a.queues || []).join('、')];
    });
    const counts = {};
    for (const a of agents) { const st = H.stateOf(a.state); counts[st] = (counts[st] || 0) + 1; }
    const keys = Object.keys(H.STATE_ZH);
    C.bars($('#chart-states'), keys.map((k) => H.STATE_ZH[k]), [{ name: '坐席数', color: '#0b5cad', values: keys.map((k) => counts[k] || 0) }]);
    const alerts = [];
    for (const q of queues) {
      if (q.waiting > 0 && q.agents_ready === 0) alerts.push(`队列“${q.name}”有 ${q.waiting} 位来电人等待，但没有空闲坐席`);
    }
    $('#alerts').replaceChildren(...alerts.map((t) => el('div', { text: t })));
  }
  async function loadToday() {
    const d = H.today();
    const total = await api('GET', '/api/v1/stats' + H.query({ from: d, to: d, period: 'day' })).catch(() => null);
    const row = total && total.items && total.items[0];
    $('#t-offered').textContent = row ? row.offered : 0;
    $('#t-answered').textContent = row ? row.answered : 0;
    $('#t-abandoned').textContent = row ? row.abandoned : 0;
    $('#t-sl').textContent = row ? H.pct(row.service_level) : '—';
    $('#t-aht').textContent = row && row.aht_secs !== null ? H.dur(row.aht_secs * 1000) : '—';
    $('#t-sat').textContent = row ? H.pct(row.satisfaction_rate) : '—';
    const hours = await api('GET', '/api/v1/stats' + H.query({ from: d, to: d, period: 'hour' })).catch(() => null);
    const items = (hours && hours.items) || [];
    C.bars($('#chart-hours'), items.map((r) => r.bucket.slice(-5)), [
      { name: '呼入', color: '#4aa3df', values: items.map((r) => r.offered) },
      { name: '接通', color: '#1f8a4c', values: items.map((r) => r.answered) },
    ]);
  }
  let pending = null;
  const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; loadAcd(); loadToday(); }, 300); };
  document.addEventListener('DOMContentLoaded', () => {
    loadAcd();
    loadToday();
    H.live({}, { hello: soon, acd: soon, call: soon, lagged: soon });
    setInterval(() => { if (snap) renderAcd(); }, 1000);
    setInterval(loadToday, 30000);
  });
})();
