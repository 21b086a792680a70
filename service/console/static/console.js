/* The console's script: live updates and buttons without reloading. No inline script, no third party.
 *
 * - #live carries data-version (a small JSON endpoint) and data-fragment (the server-rendered HTML of the
 *   changing sections). Every 3 s the version is fetched; when it changed, the fragment replaces #live's
 *   content. Everything swapped in is HTML our server escaped.
 * - A form marked data-async is posted with fetch (Accept: application/json) and the answer shown in #flash;
 *   the page then refreshes its live part at once. Without this script the same forms post normally.
 * - MTTR clocks that still run (data-elapsed, data-target) tick every second.
 * - window.remediatorConsole.loadedAt stays the same while the page lives: tests check no reload happened.
 */
(function () {
  "use strict";
  var state = { loadedAt: Date.now(), swaps: 0, polls: 0, version: null };
  window.remediatorConsole = state;
  var POLL_MS = 3000;

  function live() { return document.getElementById("live"); }

  function flash(message, ok) {
    var box = document.getElementById("flash");
    if (!box) { return; }
    box.textContent = message;
    box.className = "flash " + (ok ? "ok" : "bad");
  }

  function signIn(response) {
    if (response.status === 401) { window.location.assign("/ui/login"); return true; }
    return false;
  }

  function swap() {
    var el = live();
    if (!el) { return Promise.resolve(); }
    return fetch(el.getAttribute("data-fragment"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (signIn(response) || !response.ok) { return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var open = {};
        el.querySelectorAll("details[id]").forEach(function (d) { open[d.id] = d.open; });
        el.innerHTML = html;
        el.querySelectorAll("details[id]").forEach(function (d) {
          if (Object.prototype.hasOwnProperty.call(open, d.id)) { d.open = open[d.id]; }
        });
        state.swaps += 1;
        startClocks();
      });
  }

  function poll() {
    var el = live();
    if (!el) { return; }
    if (document.hidden) { window.setTimeout(poll, POLL_MS); return; }  /* a background tab costs nothing */
    fetch(el.getAttribute("data-version"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (signIn(response) || !response.ok) { return null; }
        return response.json();
      })
      .then(function (body) {
        state.polls += 1;
        if (!body || !body.version) { return; }
        var changed = state.version !== null && body.version !== state.version;
        state.version = body.version;
        if (changed) { return swap(); }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }

  function submit(event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-async")) { return; }
    event.preventDefault();
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "Accept": "application/json" },
      credentials: "same-origin"
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === 0) { return response.json(); }
        return { ok: false, message: response.status === 403 ? "refused (403): sign in again" : "failed (" + response.status + ")" };
      })
      .then(function (body) { flash(body.message || "", body.ok); return swap(); })
      .catch(function () { flash("the service did not answer; try again", false); })
      .then(function () { buttons.forEach(function (b) { b.disabled = false; }); });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function format(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) { return d + "d " + h + "h"; }
    if (h) { return h + "h " + pad(m) + "m"; }
    return m ? m + "m " + pad(s % 60) + "s" : (s % 60) + "s";
  }

  var clocks = [];
  function startClocks() {
    var now = Date.now();
    clocks = [];
    document.querySelectorAll(".clock[data-elapsed]").forEach(function (el) {
      clocks.push({ el: el, base: parseFloat(el.getAttribute("data-elapsed")), target: parseFloat(el.getAttribute("data-target")), at: now });
    });
  }
  function tick() {
    var now = Date.now();
    clocks.forEach(function (c) {
      var elapsed = c.base + (now - c.at) / 1000;
      c.el.textContent = format(elapsed);
      if (elapsed > c.target) { c.el.classList.add("over"); }
    });
  }

  document.addEventListener("submit", submit);
  document.addEventListener("DOMContentLoaded", function () {
    startClocks();
    window.setInterval(tick, 1000);
    if (live()) { poll(); }
  });
})();
