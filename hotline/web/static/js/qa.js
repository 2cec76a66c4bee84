// 录音质检: the recording list with filters, a player with the waveform from peaks,
// annotations at positions, keyboard shortcuts, the review form and proofreading.
'use strict';
(() => {
  const { api, el, $, act, toast } = H;
  let current = null;
  let waveView = null;
  let criteria = [];

  function dayMs(s, end) {
    if (!s) return '';
    const d = new Date(s + 'T00:00:00');
    return d.getTime() + (end ? 86400000 : 0);
  }
  async function load() {
    const v = H.form($('#filters'));
    const q = { agent: v.agent, queue: v.queue, reviewed: v.reviewed, in_review_queue: v.in_review_queue, from: dayMs(v.from), to: dayMs(v.to, true), limit: 100 };
    const r = await act(() => api('GET', '/api/v1/recordings' + H.query(q)));
    if (!r) return;
    H.rows('#recordings', r.items, (x) => [H.time(x.started_at), x.caller, x.agent, x.queue, H.dur(x.duration_ms),
      x.score === null || x.score === undefined ? '—' : (x.score / 100).toFixed(1), x.state], open);
  }
  async function open(rec) {
    const d = await act(() => api('GET', '/api/v1/recordings/' + encodeURIComponent(rec.id)));
    if (!d) return;
    current = d.recording;
    $('#player-card').hidden = false;
    $('#rec-title').textContent = `录音 ${H.time(current.started_at)} · 坐席 ${current.agent} · ${H.dur(current.duration_ms)}`;
    const audio = $('#audio');
    audio.src = '/api/v1/recordings/' + encodeURIComponent(current.id) + '/audio';
    audio.load();
    const peaks = await api('GET', '/api/v1/recordings/' + encodeURIComponent(current.id) + '/peaks').catch(() => null);
    waveView = C.wave($('#wave'), peaks ? peaks.left : [], peaks ? peaks.right : [], (f) => {
      if (audio.duration) audio.currentTime = f * audio.duration;
    });
    renderNotes(d.annotations || []);
    renderCriteria(d.reviews && d.reviews.length ? d.reviews[d.reviews.length - 1] : null);
    const sums = d.summaries || [];
    const last = sums[sums.length - 1];
    $('#summary').textContent = last ? `${last.summary}（${last.kind === 'original' ? '坐席填写' : last.kind === 'confirmed' ? '已确认' : '已更正'}）` : '（坐席尚未填写通话小结）';
    $('#proof-text').value = '';
  }
  function renderNotes(notes) {
    const total = current.duration_ms || 1;
    $('#notes').replaceChildren(...notes.map((n) => el('li', {
      onclick: () => { $('#audio').currentTime = n.at_ms / 1000; },
    }, H.dur(n.at_ms) + ' ' + (n.tag ? '[' + n.tag + '] ' : '') + n.text + ' — ' + n.author)));
    if (waveView) waveView.markers(notes.map((n) => n.at_ms / total));
  }
  function renderCriteria(last) {
    const scores = last && last.scores ? (typeof last.scores === 'string' ? JSON.parse(last.scores) : last.scores) : {};
    $('#criteria').replaceChildren(...criteria.map((c) => el('label', {}, `${c.label}（权重 ${c.weight}）`,
      el('input', { type: 'number', min: 0, max: 100, required: true, name: 'score.' + c.key, value: scores[c.key] !== undefined ? scores[c.key] : '' }))));
    $('#review-result').textContent = last ? '上次评分：' + (last.score / 100).toFixed(1) : '';
  }
  async function addNote(text, tag) {
    const audio = $('#audio');
    const at_ms = Math.round((audio.currentTime || 0) * 1000);
    const r = await act(() => api('POST', '/api/v1/recordings/' + encodeURIComponent(current.id) + '/annotations', { at_ms, text, tag }), '标注已添加');
    if (r) {
      const d = await api('GET', '/api/v1/recordings/' + encodeURIComponent(current.id));
      renderNotes(d.annotations || []);
    }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    const c = await api('GET', '/api/v1/recordings/criteria').catch(() => ({ criteria: [] }));
    criteria = c.criteria || [];
    $('#filters').addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
    const audio = $('#audio');
    audio.addEventListener('timeupdate', () => { if (waveView && audio.duration) waveView.at(audio.currentTime / audio.duration); });
    $('#note-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('#note-text').value.trim();
      if (t) { addNote(t, $('#note-tag').value); $('#note-text').value = ''; }
    });
    $('#review-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const v = H.form(ev.target);
      const scores = {};
      for (const k of Object.keys(v)) if (k.startsWith('score.')) scores[k.slice(6)] = Number(v[k]);
      const r = await act(() => api('POST', '/api/v1/recordings/' + encodeURIComponent(current.id) + '/review', { scores, comment: v.comment || '' }), '评分已保存');
      if (r) $('#review-result').textContent = '得分：' + r.score_points.toFixed(1);
    });
    const proof = async (body) => {
      const r = await act(() => api('POST', '/api/v1/recordings/' + encodeURIComponent(current.id) + '/proofread', body), '校对已保存');
      if (r) open(current);
    };
    $('#proof-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      proof({ action: 'correct', summary: $('#proof-text').value.trim(), note: $('#proof-note').value.trim() });
    });
    $('#proof-confirm').addEventListener('click', () => proof({ action: 'confirm', note: $('#proof-note').value.trim() }));
    document.addEventListener('keydown', (ev) => {
      if (!current || ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName)) return;
      if (ev.key === ' ') { ev.preventDefault(); if (audio.paused) audio.play(); else audio.pause(); }
      else if (ev.key === 'ArrowLeft') audio.currentTime = Math.max(0, audio.currentTime - 5);
      else if (ev.key === 'ArrowRight') audio.currentTime = Math.min(audio.duration || 0, audio.currentTime + 5);
      else if (ev.key === 'm' || ev.key === 'M') { const t = prompt('标注内容'); if (t) addNote(t, ''); }
      else return;
      toast('位置 ' + H.dur(audio.currentTime * 1000));
    });
    load();
  });
})();
