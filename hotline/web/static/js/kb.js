// 知识库编辑: search all articles (drafts too), edit Markdown with a live preview, save a
// draft (optimistic lock on the version), publish, see versions.
'use strict';
(() => {
  const { api, el, $, act } = H;
  const STATUS = { draft: '草稿', published: '已发布', archived: '已归档' };
  let current = null;

  // Markdown preview: the text is escaped first, then a few block and inline rules apply, so
  // nothing the editor types becomes live HTML.
  function md(src) {
    const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const inline = (s) => esc(s).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>').replace(/`(.+?)`/g, '<code>$1</code>');
    const out = [];
    let list = null;
    for (const line of src.split('\n')) {
      const h = line.match(/^(#{1,3})\s+(.*)$/);
      const li = line.match(/^\s*(?:[-*]|\d+\.)\s+(.*)$/);
      if (li) { if (!list) { list = []; } list.push('<li>' + inline(li[1]) + '</li>'); continue; }
      if (list) { out.push('<ul>' + list.join('') + '</ul>'); list = null; }
      if (h) out.push(`<h${h[1].length}>${inline(h[2])}</h${h[1].length}>`);
      else if (line.trim()) out.push('<p>' + inline(line) + '</p>');
    }
    if (list) out.push('<ul>' + list.join('') + '</ul>');
    return out.join('');
  }
  const preview = () => { $('#preview').innerHTML = md($('#md').value); };

  async function load(q) {
    let items;
    if (q) {
      const r = await act(() => api('GET', '/api/v1/kb/search' + H.query({ text: q, limit: 50 })));
      items = r ? r.hits.map((h) => ({ id: h.id, title: h.title, category: h.category, status: h.status })) : [];
    } else {
      const r = await act(() => api('GET', '/api/v1/kb/articles' + H.query({ limit: 100 })));
      items = r ? r.items : [];
    }
    H.rows('#articles', items, (a) => [a.title, a.category, STATUS[a.status] || a.status, a.version || ''], (a) => open(a.id));
  }
  async function open(id) {
    const a = await act(() => api('GET', '/api/v1/kb/articles/' + encodeURIComponent(id)));
    if (!a) return;
    current = a;
    fill(a);
    const v = await api('GET', '/api/v1/kb/articles/' + encodeURIComponent(id) + '/versions').catch(() => []);
    const list = v.items || v || [];
    $('#versions').replaceChildren(...list.map((x) => el('li', {}, `第 ${x.version} 版 · ${x.action || ''} · ${x.author || ''} · ${H.time(x.created_at)}`)));
  }
  function fill(a) {
    $('#editor').hidden = false;
    const f = $('#article-form');
    f.id.value = a ? a.id : '';
    f.title.value = a ? a.title : '';
    f.slug.value = a ? a.slug : '';
    f.category.value = a ? a.category : '';
    f.keywords.value = a ? (a.keywords || []).join('，') : '';
    f.body.value = a ? a.body : '';
    $('#version-info').textContent = a ? `第 ${a.version} 版 · ${STATUS[a.status] || a.status}` : '新文章';
    $('#publish').disabled = !a;
    preview();
  }
  function input(f) {
    return {
      slug: f.slug.value.trim(), title: f.title.value.trim(), body: f.body.value, category: f.category.value.trim(),
      keywords: f.keywords.value.split(/[,，]/).map((s) => s.trim()).filter(Boolean),
      tags: current ? current.tags || [] : [], status: 'draft',
      valid_from: current ? current.valid_from : null, valid_to: current ? current.valid_to : null,
    };
  }
  document.addEventListener('DOMContentLoaded', () => {
    $('#md').addEventListener('input', preview);
    $('#kb-search').addEventListener('submit', (ev) => { ev.preventDefault(); load(ev.target.q.value.trim()); });
    $('#new-article').addEventListener('click', () => { current = null; fill(null); $('#versions').replaceChildren(); });
    $('#article-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const a = current
        ? await act(() => api('PUT', '/api/v1/kb/articles/' + encodeURIComponent(current.id), { article: input(f), expected_version: current.version }), '草稿已保存')
        : await act(() => api('POST', '/api/v1/kb/articles', input(f)), '文章已创建');
      if (a) { open(a.id); load(); }
    });
    $('#publish').addEventListener('click', async () => {
      if (!current) return;
      const a = await act(() => api('POST', '/api/v1/kb/articles/' + encodeURIComponent(current.id) + '/publish', {}), '已发布');
      if (a) { open(a.id); load(); }
    });
    load();
  });
})();
