// 竞价数据: upload a bidder or bank file, see the dry-run report (every bad row with its line,
// column and reason) before anything is written, then confirm; the auction calendar.
'use strict';
(() => {
  const { api, el, $, act, toast } = H;
  const PATH = { bidders: '/api/v1/integrations/bidders/import', deposits: '/api/v1/integrations/deposits/import', 'refund-failures': '/api/v1/integrations/refund-failures/import' };
  let checked = null;

  async function send(dryRun) {
    const f = $('#import-form');
    const file = $('#imp-file').files[0];
    if (!file) { toast('请选择文件', true); return null; }
    const v = H.form(f);
    const q = { period: v.period, dry_run: dryRun ? 'true' : '', encoding: v.encoding, file_name: file.name,
      format: /\.xlsx$/i.test(file.name) ? 'xlsx' : '' };
    return act(() => api('POST', PATH[v.kind] + H.query(q), file));
  }
  function report(r) {
    const bad = r.problems || [];
    const box = $('#report');
    const summary = el('p', { id: 'report-summary' },
      `${r.dry_run ? '试导入' : '导入'}：共 ${r.rows} 行，新增 ${r.inserted}，更新 ${r.updated}，未变 ${r.unchanged}，错误 ${bad.length} 处。`,
      r.committed ? '已写入。' : (bad.length ? '文件有错误，未写入任何数据，请修改后重新上传。' : '检查通过，可以确认导入。'));
    const table = bad.length ? el('table', { class: 'list', id: 'report-problems' },
      el('thead', {}, el('tr', {}, el('th', { text: '行' }), el('th', { text: '列' }), el('th', { text: '内容' }), el('th', { text: '原因' }))),
      el('tbody', {}, bad.map((p) => el('tr', {}, el('td', { text: p.line }), el('td', { text: p.column }), el('td', { text: p.value }), el('td', { text: p.reason }))))) : null;
    box.replaceChildren(summary, table || '');
  }
  async function calendar() {
    const r = await api('GET', '/api/v1/integrations/calendar').catch(() => ({ items: [] }));
    H.rows('#calendar', r.items || r || [], (c) => [c.period, H.time(c.registration_deadline || c.deposit_deadline), H.time(c.bidding_day || c.auction_at), H.time(c.results_at)]);
  }
  document.addEventListener('DOMContentLoaded', () => {
    $('#imp-file').addEventListener('change', () => { checked = null; $('#btn-commit').disabled = true; });
    $('#import-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = await send(true);
      if (!r) return;
      report(r);
      checked = r;
      $('#btn-commit').disabled = (r.problems || []).length > 0;
    });
    $('#btn-commit').addEventListener('click', async () => {
      if (!checked) return;
      const r = await send(false);
      if (r) { report(r); $('#btn-commit').disabled = true; if (r.committed) toast('导入完成'); }
    });
    calendar();
  });
})();
