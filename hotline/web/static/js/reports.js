// 统计报表: the statistics by day/hour/month and by agent/queue, a chart, CSV/XLSX downloads
// and the monthly report.
'use strict';
(() => {
  const { api, $, act } = H;
  function links(v) {
    const q = H.query(v);
    $('#dl-csv').href = '/api/v1/stats/csv' + q;
    $('#dl-xlsx').href = '/api/v1/stats/xlsx' + q;
    $('#dl-month').href = '/api/v1/reports/monthly/' + v.from.slice(0, 7);
  }
  async function load() {
    const v = H.form($('#params'));
    links(v);
    const r = await act(() => api('GET', '/api/v1/stats' + H.query(v)));
    if (!r) return;
    const items = r.items || [];
    H.rows('#stats', items, (s) => [s.bucket, s.key, s.offered, s.answered, s.abandoned, H.pct(s.answer_rate), H.pct(s.service_level),
      s.asa_secs === null ? '—' : s.asa_secs.toFixed(1) + '秒', s.aht_secs === null ? '—' : H.dur(s.aht_secs * 1000), H.pct(s.satisfaction_rate)]);
    C.bars($('#chart'), items.map((s) => (v.dimension === 'total' ? s.bucket : s.key)), [
      { name: '呼入', color: '#4aa3df', values: items.map((s) => s.offered) },
      { name: '接通', color: '#1f8a4c', values: items.map((s) => s.answered) },
      { name: '放弃', color: '#c0392b', values: items.map((s) => s.abandoned) },
    ]);
  }
  document.addEventListener('DOMContentLoaded', () => {
    const f = $('#params');
    const d = new Date();
    f.to.value = H.today();
    f.from.value = H.today().slice(0, 8) + '01';
    void d;
    f.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
    load();
  });
})();
