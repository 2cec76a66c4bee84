// A small SVG chart maker (grouped bars), served with the console: no chart library, no CDN.
'use strict';
const C = (() => {
  const NS = 'http://www.w3.org/2000/svg';
  const svgEl = (tag, attrs) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };
  // series: [{ name, color, values: [..] }] aligned with labels.
  function bars(container, labels, series) {
    const W = 600, Hh = 180, left = 34, bottom = 22, top = 16;
    const svg = svgEl('svg', { viewBox: `0 0 ${W} ${Hh}`, role: 'img' });
    // At least 4 so that the four grid steps are whole numbers.
    const max = Math.max(4, ...series.flatMap((s) => s.values));
    const plotH = Hh - bottom - top;
    const groupW = (W - left) / Math.max(1, labels.length);
    const barW = Math.max(2, (groupW * 0.8) / Math.max(1, series.length));
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      svg.append(svgEl('line', { x1: left, x2: W, y1: y, y2: y, stroke: '#e3e8ee' }));
      const t = svgEl('text', { x: left - 4, y: y + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#6b7785' });
      t.textContent = String(Math.round((max * i) / 4));
      svg.append(t);
    }
    labels.forEach((label, i) => {
      series.forEach((s, j) => {
        const v = s.values[i] || 0;
        const h = (plotH * v) / max;
        const r = svgEl('rect', { x: left + i * groupW + groupW * 0.1 + j * barW, y: top + plotH - h, width: barW - 1, height: h, fill: s.color });
        const tip = svgEl('title', {});
        tip.textContent = `${label} ${s.name}: ${v}`;
        r.append(tip);
        svg.append(r);
      });
      const every = Math.ceil(labels.length / 12);
      if (i % every === 0) {
        const t = svgEl('text', { x: left + i * groupW + groupW / 2, y: Hh - 6, 'text-anchor': 'middle', 'font-size': 10, fill: '#6b7785' });
        t.textContent = label;
        svg.append(t);
      }
    });
    series.forEach((s, j) => {
      svg.append(svgEl('rect', { x: left + 8 + j * 90, y: 2, width: 10, height: 10, fill: s.color }));
      const t = svgEl('text', { x: left + 22 + j * 90, y: 11, 'font-size': 11, fill: '#1d2630' });
      t.textContent = s.name;
      svg.append(t);
    });
    container.replaceChildren(svg);
  }
  // A waveform from min/max-free peaks (0..32767), caller above the line, agent below.
  function wave(container, left, right, onSeek) {
    const n = Math.max(left.length, right.length, 1);
    const W = 1000, Hh = 80, mid = Hh / 2;
    const svg = svgEl('svg', { viewBox: `0 0 ${W} ${Hh}`, preserveAspectRatio: 'none' });
    const path = (arr, sign) => {
      let d = `M0 ${mid}`;
      arr.forEach((p, i) => { d += ` L${(i / n) * W} ${mid - sign * (p / 32767) * (mid - 2)}`; });
      return d + ` L${W} ${mid} Z`;
    };
    svg.append(svgEl('path', { d: path(left, 1), fill: '#4aa3df' }));
    svg.append(svgEl('path', { d: path(right, -1), fill: '#7bd389' }));
    const cursor = svgEl('line', { x1: 0, x2: 0, y1: 0, y2: Hh, stroke: '#fff', 'stroke-width': 2 });
    svg.append(cursor);
    const marks = svgEl('g', {});
    svg.append(marks);
    svg.addEventListener('click', (ev) => {
      const r = svg.getBoundingClientRect();
      onSeek((ev.clientX - r.left) / r.width);
    });
    container.replaceChildren(svg);
    return {
      at(frac) { const x = Math.min(1, Math.max(0, frac)) * W; cursor.setAttribute('x1', x); cursor.setAttribute('x2', x); },
      markers(fracs) {
        marks.replaceChildren(...fracs.map((f) => svgEl('line', { x1: f * W, x2: f * W, y1: 0, y2: Hh, stroke: '#f5b041', 'stroke-width': 2 })));
      },
    };
  }
  return { bars, wave };
})();
