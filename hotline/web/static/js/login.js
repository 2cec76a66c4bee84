'use strict';
document.addEventListener('DOMContentLoaded', () => {
  const f = document.getElementById('login');
  const err = document.getElementById('error');
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const body = { username: f.username.value.trim(), password: f.password.value };
    const resp = await fetch('/api/v1/auth/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin',
    });
    if (!resp.ok) {
      let msg = '登录失败';
      try { msg = (await resp.json()).error.message || msg; } catch (_) { /* keep default */ }
      err.textContent = msg;
      return;
    }
    const next = new URLSearchParams(location.search).get('next') || '/';
    // Only paths of this site (no open redirect).
    location.href = next.startsWith('/') && !next.startsWith('//') ? next : '/';
  });
});
