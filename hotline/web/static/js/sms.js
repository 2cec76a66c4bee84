// 短信批次: templates (draft → approved by a supervisor/admin), a batch from bidder data or
// from an uploaded list (mobile + variables) with its preview (recipients, opt-outs excluded, invalid numbers, segments), confirmation, and
// the progress of every batch. The outbox and its sender are described in docs/sms.md.
'use strict';
(() => {
  const { api, el, $, act, toast } = H;
  const TSTATUS = { draft: '草稿', approved: '已审批' };
  const STATUS = { draft: '待确认', approved: '已审批', confirmed: '已确认', sending: '发送中', done: '已完成', cancelled: '已取消' };
  const role = document.body.dataset.role;
  const canApprove = role === 'admin' || role === 'supervisor';
  const canEdit = role === 'admin' || role === 'business';
  let templates = [];

  async function loadTemplates() {
    templates = (await api('GET', '/api/v1/sms/templates').catch(() => [])) || [];
    H.rows('#templates', templates, (t) => [t.name, t.kind, TSTATUS[t.status] || t.status, t.version,
      canApprove && t.status !== 'approved'
        ? el('button', { type: 'button', onclick: async (ev) => { ev.stopPropagation(); if (await act(() => api('POST', `/api/v1/sms/templates/${encodeURIComponent(t.id)}/approve`, { version: t.version }), '模板已审批')) loadTemplates(); } }, '审批')
        : ''], (t) => fill(t));
    for (const sel of ['#batch-template', '#upload-template']) {
      $(sel).replaceChildren(...templates.filter((t) => t.status === 'approved').map((t) => el('option', { value: t.id, text: t.name })));
    }
  }
  function fill(t) {
    const f = $('#template-form');
    f.id.value = t ? t.id : '';
    f.name.value = t ? t.name : '';
    f.kind.value = t ? t.kind : 'deposit_notice';
    f.body.value = t ? t.body : '';
    $('#template-info').textContent = t ? `第 ${t.version} 版 · ${TSTATUS[t.status] || t.status}` : '新模板';
  }
  async function loadBatches() {
    const list = (await api('GET', '/api/v1/sms/batches').catch(() => [])) || [];
    H.rows('#batches', list, (b) => {
      const c = b.counts || {};
      const by = Object.entries(c.by_status || {}).map(([k, v]) => `${k} ${v}`).join('，');
      return [b.name, STATUS[b.status] || b.status, c.recipients, c.excluded_opt_out, c.invalid_mobile, c.segments, by,
        el('span', {},
          b.status === 'draft' ? el('button', { type: 'button', onclick: () => confirmBatch(b) }, '确认发送') : '',
          !b.finished && b.status !== 'cancelled' ? el('button', { type: 'button', onclick: () => cancel(b) }, '取消') : '')];
    });
  }
  // The preview of a new draft batch (from bidder data or an uploaded list), with its confirm.
  function preview(b) {
    const c = b.counts || {};
    const a = b.audience || {};
    const from = a.kind === 'upload' ? `名单 ${a.file_name || ''}（${a.rows} 行）：` : '';
    $('#preview').replaceChildren(el('p', { id: 'batch-preview' },
      `${from}收件人 ${c.recipients} 人，退订排除 ${c.excluded_opt_out}，号码无效 ${c.invalid_mobile}，重复 ${c.duplicates}，共 ${c.segments} 条短信。`),
    b.sample ? el('p', { class: 'pre', id: 'batch-sample', text: `示例（${b.sample.mobile}）：${b.sample.body}` }) : '',
    el('button', { type: 'button', class: 'primary', id: 'preview-confirm', onclick: async (ev) => { ev.target.disabled = true; if (await confirmBatch(b)) $('#preview').replaceChildren(); else ev.target.disabled = false; } }, '确认发送'));
    toast('批次已生成，请核对预览后确认发送');
    loadBatches();
  }
  async function confirmBatch(b) {
    const r = await act(() => api('POST', `/api/v1/sms/batches/${encodeURIComponent(b.id)}/confirm`, {}), '批次已确认，开始发送');
    if (r) loadBatches();
    return r;
  }
  async function cancel(b) {
    if (await act(() => api('POST', `/api/v1/sms/batches/${encodeURIComponent(b.id)}/cancel`, {}), '批次已取消')) loadBatches();
  }
  document.addEventListener('DOMContentLoaded', () => {
    if (!canEdit) { $('#template-form').hidden = true; $('#batch-form').hidden = true; $('#upload-form').hidden = true; }
    $('#new-template').addEventListener('click', () => fill(null));
    $('#template-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const v = H.form(ev.target);
      const body = { kind: v.kind, name: v.name, body: v.body };
      const r = v.id
        ? await act(() => api('PUT', '/api/v1/sms/templates/' + encodeURIComponent(v.id), body), '模板已保存（需重新审批）')
        : await act(() => api('POST', '/api/v1/sms/templates', body), '模板已创建，待审批');
      if (r) { fill(r); loadTemplates(); }
    });
    $('#batch-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const v = H.form(ev.target);
      const b = await act(() => api('POST', '/api/v1/sms/batches', { template_id: v.template_id, name: v.name, audience: { period: v.period, filter: v.filter } }));
      if (!b) return;
      $('#upload-report').replaceChildren();
      preview(b);
    });
    // --- upload: begin ---------------------------------------------------------------------
    // 上传名单: the file goes as the body of POST /api/v1/sms/batches/upload; a list with bad
    // rows is refused whole (400 bad_rows) and every problem is listed with its line; a clean
    // list becomes a draft batch whose preview is shown with a confirm button.
    $('#upload-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const file = $('#upload-file').files[0];
      if (!file) { toast('请选择名单文件', true); return; }
      const v = H.form(ev.target);
      const vars = {};
      for (const line of (v.variables || '').split(/[\n;；]/)) {
        const i = line.indexOf('=');
        if (i > 0) vars[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
      const q = { template_id: v.template_id, name: v.name, file_name: file.name, encoding: v.encoding,
        format: /\.xlsx$/i.test(file.name) ? 'xlsx' : '', variables: Object.keys(vars).length ? JSON.stringify(vars) : '' };
      $('#preview').replaceChildren();
      try {
        const b = await api('POST', '/api/v1/sms/batches/upload' + H.query(q), file);
        $('#upload-report').replaceChildren();
        preview(b);
      } catch (e) {
        const bad = (e.data && e.data.problems) || [];
        $('#upload-report').replaceChildren(el('p', { id: 'upload-error', class: 'error', text: e.message }),
          bad.length ? el('table', { class: 'list', id: 'upload-problems' },
            el('thead', {}, el('tr', {}, el('th', { text: '行' }), el('th', { text: '列' }), el('th', { text: '内容' }), el('th', { text: '原因' }))),
            el('tbody', {}, bad.map((p) => el('tr', {}, el('td', { text: p.line }), el('td', { text: p.column }), el('td', { text: p.value }), el('td', { text: p.reason }))))) : '');
      }
    });
    // --- upload: end -----------------------------------------------------------------------
    loadTemplates();
    loadBatches();
    setInterval(loadBatches, 5000);
  });
})();
