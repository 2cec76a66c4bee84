'use strict';
document.addEventListener('DOMContentLoaded', () => {
  const f = H.$('#password-form');
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = H.form(f);
    const ok = await H.act(() => H.api('POST', '/api/v1/me/password', { current_password: v.current, new_password: v.new }), '密码已修改');
    if (ok !== undefined) f.reset();
  });
});
