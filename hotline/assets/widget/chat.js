/* hotline 在线咨询挂件 — embed with one tag:
 *   <script src="https://<hotline>/widget/chat.js" async></script>
 * The visitor is a random id kept in localStorage (no cookies). The API is the hotline
 * that served this script; that hotline must list this site in
 * integrations.web_chat.allowed_origins. Texts are set with textContent only (no HTML
 * from the server is ever interpreted). */
(function () {
  "use strict";
  if (window.__hotlineChat) { return; }
  window.__hotlineChat = true;

  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : "";
  var api = base + "/api/v1/webchat/messages";
  var KEY = "hotline_chat_visitor";
  var POLL_MS = 3000;

  function randomId() {
    var b = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(b);
    var s = "v_";
    for (var i = 0; i < b.length; i++) { s += ("0" + b[i].toString(16)).slice(-2); }
    return s;
  }
  function store(k, v) { try { if (v === undefined) { return localStorage.getItem(k); } localStorage.setItem(k, v); } catch (e) { return null; } return null; }
  var visitor = store(KEY);
  if (!visitor || !/^[A-Za-z0-9_-]{16,64}$/.test(visitor)) { visitor = randomId(); store(KEY, visitor); }
  var cursor = 0;
  var shown = {};

  var css = "#hlc-btn{position:fixed;right:20px;bottom:20px;z-index:2147483000;background:#c8161d;color:#fff;border:0;border-radius:24px;padding:12px 18px;font:15px/1.2 sans-serif;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.3)}" +
    "#hlc-box{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-width:calc(100vw - 40px);height:460px;max-height:calc(100vh - 100px);background:#fff;border:1px solid #ddd;border-radius:8px;display:none;flex-direction:column;font:14px/1.5 sans-serif;box-shadow:0 4px 16px rgba(0,0,0,.25)}" +
    "#hlc-head{background:#c8161d;color:#fff;padding:10px 12px;border-radius:8px 8px 0 0;display:flex;justify-content:space-between}" +
    "#hlc-head button{background:none;border:0;color:#fff;font-size:18px;cursor:pointer}" +
    "#hlc-list{flex:1;overflow-y:auto;padding:10px;background:#f7f7f7}" +
    ".hlc-m{margin:6px 0;padding:8px 10px;border-radius:6px;max-width:85%;white-space:pre-wrap;word-break:break-word}" +
    ".hlc-user{background:#d9ecff;margin-left:auto}.hlc-bot,.hlc-agent{background:#fff;border:1px solid #e5e5e5}.hlc-system{color:#888;font-size:12px;text-align:center;max-width:100%}" +
    "#hlc-form{display:flex;border-top:1px solid #ddd}#hlc-in{flex:1;border:0;padding:10px;font:14px sans-serif;resize:none;height:44px}" +
    "#hlc-send{border:0;background:#c8161d;color:#fff;padding:0 16px;cursor:pointer}#hlc-err{color:#c8161d;font-size:12px;padding:0 10px}";
  var st = document.createElement("style"); st.textContent = css; document.head.appendChild(st);

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) { e.setAttribute(k, attrs[k]); } }
    if (text) { e.textContent = text; }
    return e;
  }
  var btn = el("button", { id: "hlc-btn", type: "button" }, "在线咨询");
  var box = el("div", { id: "hlc-box", role: "dialog", "aria-label": "在线咨询" });
  var head = el("div", { id: "hlc-head" });
  head.appendChild(el("span", {}, "在线咨询 · 输入“人工”可转人工客服"));
  var close = el("button", { type: "button", "aria-label": "关闭" }, "×");
  head.appendChild(close);
  var list = el("div", { id: "hlc-list", "aria-live": "polite" });
  var err = el("div", { id: "hlc-err" });
  var form = el("form", { id: "hlc-form" });
  var input = el("textarea", { id: "hlc-in", maxlength: "500", placeholder: "请输入您的问题…" });
  var send = el("button", { id: "hlc-send", type: "submit" }, "发送");
  form.appendChild(input); form.appendChild(send);
  box.appendChild(head); box.appendChild(list); box.appendChild(err); box.appendChild(form);
  document.body.appendChild(btn); document.body.appendChild(box);

  function show(messages) {
    for (var i = 0; i < messages.length; i++) {
      var m = messages[i];
      if (shown[m.seq]) { continue; }
      shown[m.seq] = true;
      list.appendChild(el("div", { "class": "hlc-m hlc-" + m.sender }, m.body));
      if (m.seq > cursor) { cursor = m.seq; }
    }
    list.scrollTop = list.scrollHeight;
  }
  function fail(r) {
    return r.json().then(function (b) {
      err.textContent = (b && b.error && b.error.message) || "发送失败，请稍后再试";
    }, function () { err.textContent = "网络异常，请稍后再试"; });
  }
  function poll() {
    return fetch(api + "?visitor_id=" + encodeURIComponent(visitor) + "&since=" + cursor, { credentials: "omit" })
      .then(function (r) { if (!r.ok) { return fail(r); } err.textContent = ""; return r.json().then(function (b) { show(b.messages || []); }); })
      .catch(function () { err.textContent = "网络异常，请稍后再试"; });
  }
  var timer = null;
  function open() {
    box.style.display = "flex"; btn.style.display = "none";
    if (!list.firstChild) { list.appendChild(el("div", { "class": "hlc-m hlc-system" }, "您好，请问有什么可以帮您？")); }
    poll(); if (!timer) { timer = setInterval(poll, POLL_MS); }
    input.focus();
  }
  function hide() { box.style.display = "none"; btn.style.display = ""; if (timer) { clearInterval(timer); timer = null; } }
  btn.addEventListener("click", open);
  close.addEventListener("click", hide);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.replace(/^\s+|\s+$/g, "");
    if (!text) { return; }
    send.disabled = true;
    fetch(api, {
      method: "POST", credentials: "omit",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ visitor_id: visitor, text: text, since: cursor })
    }).then(function (r) {
      if (!r.ok) { return fail(r); }
      input.value = ""; err.textContent = "";
      return r.json().then(function (b) { show(b.messages || []); });
    }).catch(function () { err.textContent = "网络异常，请稍后再试"; })
      .then(function () { send.disabled = false; });
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit ? form.requestSubmit() : send.click(); }
  });
})();
