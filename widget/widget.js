// NPS in-app widget. One global (npsWidget) with a command queue; no dependencies, no cookies,
// no eval and no inline styles (it works under a strict Content-Security-Policy); it never throws
// into the host page. Served minified-lite and gzipped by the service at /widget.js.
(function (w, d) {
  "use strict";
  var me = d.currentScript || d.querySelector("script[data-key][src*='widget']");
  var cfg = (me && me.dataset) || {};
  var api = me ? new URL(me.src).origin + "/api/widget/" : "";
  var CSS =
    ":host{all:initial}*{box-sizing:border-box}[hidden]{display:none!important}" +
    ".w{--b:#fff;--t:#111827;--m:#6b7280;--e:#e5e7eb;--h:#f3f4f6;position:fixed;z-index:2147483000;" +
    "bottom:20px;right:20px;width:392px;max-width:calc(100vw - 32px);padding:20px;background:var(--b);" +
    "color:var(--t);border:1px solid var(--e);border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.2);" +
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;text-align:left;animation:in .25s ease-out}" +
    ".bottom-left{right:auto;left:20px}.bottom{left:0;right:0;margin:0 auto}" +
    ".dk{--b:#1f2937;--t:#f9fafb;--m:#9ca3af;--e:#374151;--h:#2b3646}" +
    "@media (prefers-color-scheme:dark){.au{--b:#1f2937;--t:#f9fafb;--m:#9ca3af;--e:#374151;--h:#2b3646}}" +
    "@keyframes in{from{opacity:0;transform:translateY(12px)}}" +
    "@media (prefers-reduced-motion:reduce){.w{animation:none}}" +
    ".q,.t{margin:0 32px 14px 0;font-size:15px;font-weight:600}" +
    ".x{position:absolute;top:10px;right:10px;width:30px;height:30px;border:0;border-radius:8px;" +
    "background:none;color:var(--m);font:20px/1 system-ui,sans-serif;cursor:pointer}" +
    ".x:hover{background:var(--h);color:var(--t)}" +
    ".s{display:grid;grid-template-columns:repeat(11,1fr);gap:4px}" +
    ".s button{min-width:0;height:36px;padding:0;border:1px solid var(--e);border-radius:8px;" +
    "background:var(--h);color:var(--t);font:600 14px system-ui,sans-serif;cursor:pointer;transition:background-color .1s,border-color .1s}" +
    ".s button:hover{border-color:var(--c)}" +
    ".s [aria-pressed=true]{background:var(--c);border-color:var(--c);color:var(--f)}" +
    ".l{display:flex;justify-content:space-between;margin-top:6px;color:var(--m);font-size:12px}" +
    "form{margin:16px 0 0}label{display:block;margin-bottom:6px;font-weight:600}" +
    "textarea{display:block;width:100%;min-height:84px;padding:8px 10px;border:1px solid var(--e);" +
    "border-radius:8px;background:var(--b);color:var(--t);font:inherit;resize:vertical}" +
    ".go{margin-top:10px;padding:8px 18px;border:0;border-radius:8px;background:var(--c);color:var(--f);" +
    "font:600 14px system-ui,sans-serif;cursor:pointer}.go:disabled{opacity:.6}a.go{display:inline-block;margin-right:8px;text-decoration:none}" +
    "button:focus-visible,textarea:focus{outline:2px solid var(--c);outline-offset:2px}" +
    ".t{margin-bottom:0}.y{margin:8px 0 0;color:var(--m);white-space:pre-wrap;overflow-wrap:anywhere;" +
    "max-height:120px;overflow:auto}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}" +
    "@media (max-width:480px){.w{left:0;right:0;bottom:0;width:100%;max-width:none;margin:0;" +
    "border-radius:16px 16px 0 0;padding:18px 14px calc(18px + env(safe-area-inset-bottom))}" +
    ".s{gap:3px}.s button{height:42px}}";
  var user = null;
  var box = null;
  var warned = {};
  var chain = Promise.resolve();

  function warn(msg) {
    msg = "[npsWidget] " + (msg && msg.message ? msg.message : msg);
    if (!warned[msg] && w.console) {
      warned[msg] = 1;
      console.warn(msg);
    }
  }

  function post(path, body) {
    body.key = cfg.key;
    return fetch(api + path, {
      method: "POST",
      // A string body is sent as text/plain: a "simple" CORS request, so keepalive needs no preflight.
      body: JSON.stringify(body),
      keepalive: true,
      credentials: "omit",
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.message || "HTTP " + r.status);
        return j;
      });
    });
  }

  function el(tag, attrs, text, parent) {
    var e = d.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  // Event handlers run outside the command chain: guard them so nothing escapes to the page.
  function on(target, type, fn) {
    target.addEventListener(type, function (e) {
      try { fn(e); } catch (err) { warn(err); }
    });
  }

  function close() {
    if (box) box.remove();
    box = null;
  }

  function render(data) {
    close();
    var t = data.text;
    var c = /^#[0-9a-f]{6}$/i.test(data.color) ? data.color : "#4f46e5";
    var n = parseInt(c.slice(1), 16);
    var fg = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255) > 165 ? "#111827" : "#fff";
    var theme = { light: " lt", dark: " dk" }[cfg.theme] || " au";
    var pos = /^bottom(-left|-right)?$/.test(cfg.position) ? cfg.position : data.position || "bottom-right";
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS + ".w{--c:" + c + ";--f:" + fg + "}");
    box = el("nps-widget", {}, null, d.body || d.documentElement);
    var root = box.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [sheet];
    var card = el("div", { class: "w " + pos + theme, role: "dialog", "aria-label": t.title, lang: t.locale }, null, root);
    var live = el("div", { class: "sr", "aria-live": "polite" }, null, card);
    var x = el("button", { class: "x", type: "button", "aria-label": t.close, title: t.close }, "\u00d7", card);
    var q = el("p", { class: "q", id: "q" }, t.question, card);
    var scores = el("div", { class: "s", role: "group", "aria-labelledby": "q" }, null, card);
    var ends = el("div", { class: "l", "aria-hidden": "true" }, null, card);
    el("span", {}, t.low, ends);
    el("span", {}, t.high, ends);
    var form = el("form", { hidden: "" }, null, card);
    var label = el("label", { for: "c" }, null, form);
    var area = el("textarea", { id: "c", name: "comment", maxlength: "5000", rows: "3" }, null, form);
    var go = el("button", { class: "go", type: "submit" }, t.send, form);
    var picked = null;
    var done = false;
    for (var i = 0; i <= 10; i++) {
      var b = el("button", { type: "button", "data-score": i, "aria-pressed": "false" }, String(i), scores);
      if (i === 0) b.setAttribute("aria-label", "0, " + t.low);
      if (i === 10) b.setAttribute("aria-label", "10, " + t.high);
    }
    function say(text) {
      live.textContent = "";
      setTimeout(function () { live.textContent = text; }, 50);
    }
    function dismiss() {
      if (picked == null && !done) post("dismiss", { token: data.token }).catch(warn);
      done = true;
      close();
    }
    on(scores, "click", function (e) {
      var b = e.target.closest("button");
      if (!b) return;
      picked = +b.dataset.score;
      for (var s of scores.children) s.setAttribute("aria-pressed", String(s === b));
      label.textContent = t.followups[picked > 8 ? "promoter" : picked > 6 ? "passive" : "detractor"];
      form.hidden = false;
      say(t.picked.replace("{score}", picked));
      // Recorded at once: the score counts even if the person leaves before writing a comment.
      post("answer", { token: data.token, score: picked }).catch(warn);
      area.focus();
    });
    on(scores, "keydown", function (e) {
      var step = { ArrowLeft: -1, ArrowRight: 1 }[e.key];
      var next = step && e.target[step < 0 ? "previousElementSibling" : "nextElementSibling"];
      if (next) {
        e.preventDefault();
        next.focus();
      }
    });
    on(form, "submit", function (e) {
      e.preventDefault();
      go.disabled = true;
      var comment = area.value;
      post("answer", { token: data.token, score: picked, comment: comment })
        .then(function (res) {
          done = true;
          q.remove();
          scores.remove();
          ends.remove();
          form.remove();
          el("p", { class: "t" }, t.thanks, card);
          if (comment.trim()) {
            var y = el("p", { class: "y" }, null, card);
            el("span", { class: "sr" }, t.yours + " ", y);
            y.appendChild(d.createTextNode(comment));
          }
          say(t.thanks);
          x.focus();
          // A promoter the server offers the review: links only after they press the button (consent).
          var r = res.review;
          if (r) {
            var rp = el("p", { class: "y" }, r.prompt, card);
            var ok = el("button", { class: "go", type: "button" }, r.consent, card);
            ok.focus();
            on(ok, "click", function () {
              ok.disabled = true;
              fetch(r.url, { method: "POST", credentials: "omit", headers: { Accept: "application/json" } })
                .then(function (q) { return q.json(); })
                .then(function (j) {
                  ok.remove();
                  rp.textContent = j.intro;
                  var f;
                  for (var l of j.links) {
                    var a = el("a", { class: "go", href: l.url, target: "_blank", rel: "noopener" }, l.label, card);
                    f = f || a;
                  }
                  if (f) f.focus();
                }).catch(warn);
            });
          }
          var mine = box;
          setTimeout(function () {
            if (box === mine && (!root.activeElement || root.activeElement === x)) close();
          }, 8000);
        }, function (err) {
          go.disabled = false;
          warn(err);
        });
    });
    on(x, "click", dismiss);
    on(card, "keydown", function (e) {
      if (e.key === "Escape") dismiss();
    });
    say(t.title + ": " + t.question);
  }

  // The server's signed "not now" (its verdict) for this user and traits, kept for the tab's session:
  // page views ask again only once it expires, the user or traits change, or show is forced.
  function kept(v) {
    try {
      var s = w.sessionStorage, k = "npsWidget:" + cfg.key;
      if (v === void 0) return JSON.parse(s.getItem(k)) || {};
      v ? s.setItem(k, JSON.stringify(v)) : s.removeItem(k);
    } catch (e) {}
    return {};
  }

  function load(force) {
    if (!user || !user.id) return warn("call identify with an id first");
    var h = JSON.stringify(user), v = kept();
    for (var i = 0, n = 0; i < h.length; i++) n = (n * 31 + h.charCodeAt(i)) | 0;
    if (v.h !== n) v = {};
    if (!force && v.t > Date.now()) return;
    return post("identify", { user: user, force: !!force, verdict: v.v, lang: cfg.locale || navigator.language }).then(function (data) {
      kept(data.verdict ? { v: data.verdict, h: n, t: Date.now() + data.verdict_ttl * 1000 } : 0);
      if (data.show) render(data);
    });
  }

  var commands = {
    identify: function (u) {
      if (box && user && u && u.id === user.id) return;
      user = u;
      close();
      return load(false);
    },
    show: function (o) {
      return load(o && o.force);
    },
    hide: close,
    reset: function () {
      user = null;
      close();
    },
  };

  function run(args) {
    chain = chain.then(function () {
      if (!cfg.key) throw new Error("the script tag needs data-key");
      if (!w.fetch || !("adoptedStyleSheets" in d)) throw new Error("this browser is not supported");
      var fn = commands[args[0]];
      if (!fn) throw new Error("unknown command " + args[0]);
      return fn(args[1]);
    }).catch(warn);
  }

  try {
    var queued = (w.npsWidget && w.npsWidget.q) || [];
    w.npsWidget = function () {
      try { run(arguments); } catch (e) { warn(e); }
    };
    for (var j = 0; j < queued.length; j++) run(queued[j]);
  } catch (e) {
    warn(e);
  }
})(window, document);
