// What every cv-access form shares (and the example site's owner page).
// Hugo puts this file before the form's own script (form.js;
// _partials/cv-access/assets.html), as one script; it defines one global,
// cvAccessPage, and runs nothing until a script calls it.
//
// cvAccessPage(["request", "verify", ...], {prefix: "cv-access-cv-", api:
// "/api"}) returns the helpers for one form's steps (#<prefix>step-request,
// ...), or null where there is no first step. Every element is found by
// its id with the prefix, so several forms live on one page; calls go to
// <api>/<function> on this site (the default api is "/api").
var cvAccessPage = function (names, options) {
  "use strict";

  var opts = options || {};
  var prefix = opts.prefix || "";
  var api = (opts.api || "/api").replace(/\/+$/, "");
  // This site's own origin only: a visitor's details go nowhere else,
  // whatever the page says (a "//host" path would be another origin).
  if (new URL(api + "/", location.href).origin !== location.origin) return null;
  var $ = function (id) { return document.getElementById(prefix + id); };
  var steps = {};
  names.forEach(function (n) { steps[n] = $("step-" + n); });
  if (!steps[names[0]]) return null;

  var status = $("status");

  function say(text) {
    // Clear first so the same message is announced again.
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  // show reveals one step; focus moves to its heading unless told not to
  // (on page load the visitor's place must not jump).
  function show(name, quiet) {
    Object.keys(steps).forEach(function (k) { steps[k].hidden = k !== name; });
    if (!quiet) $("step-" + name + "-title").focus();
  }

  // call posts body as JSON to this site's <api>/<fn> and resolves to
  // { ok, status, data, retryAfter }; a failed connection resolves too.
  // raw keeps a good answer's body unread, in .response (the CSV).
  function call(fn, body, raw) {
    var gen = page.gen;
    return fetch(api + "/" + fn, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (r) {
      if (raw && r.ok) return { ok: true, status: r.status, response: r, data: {} };
      return r.json().catch(function () { return {}; }).then(function (data) {
        return { ok: r.ok, status: r.status, data: data, retryAfter: parseInt(r.headers.get("Retry-After"), 10) || 0 };
      });
    }, function () {
      return { ok: false, status: 0, data: { message: "The connection failed. Check your network and try again." } };
    }).then(function (res) {
      // Never settle an answer that arrived after "Start again".
      return gen === page.gen ? res : new Promise(function () {});
    });
  }

  function wait(seconds) {
    if (seconds < 120) return seconds + " seconds";
    if (seconds < 7200) return Math.ceil(seconds / 60) + " minutes";
    return Math.ceil(seconds / 3600) + " hours";
  }

  // message is what a refused call says, with the wait after a 429.
  function message(res) {
    var msg = (res.data && res.data.message) || "Something went wrong. Please try again.";
    if (res.status === 429 && res.retryAfter) msg += " (You can try again in " + wait(res.retryAfter) + ".)";
    return msg;
  }

  // fieldError sets (or, with no text, clears) a field's message.
  function fieldError(id, text) {
    var input = $(id), err = $(id + "-error");
    if (!input || !err) return;
    err.textContent = text || "";
    err.hidden = !text;
    if (text) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  // note sets (or clears) a message that belongs to no one field.
  function note(id, text) {
    $(id).textContent = text || "";
    $(id).hidden = !text;
  }

  // fail shows a refused call's message at id and announces it.
  function fail(id, res) {
    var msg = message(res);
    note(id, msg);
    say(msg);
  }

  // busy marks a form (its submit button) or a button as working.
  function busy(el, on) {
    var b = el.tagName === "FORM" ? el.querySelector("button[type=submit]") : el;
    b.disabled = on;
    el.setAttribute("aria-busy", on ? "true" : "false");
  }

  // emailProblem is what is wrong with a typed address, or "".
  function emailProblem(email) {
    return !email ? "Enter your email address." :
      !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email) ? "Enter an email address like name@example.com." : "";
  }

  // codeForm wires the form of the 6-digit code in the field otp: only
  // digits go in, a code of another length is said at the field, and
  // otherwise send(code) posts it, its answer going to answer(res) with the
  // form free again.
  function codeForm(form, checking, send, answer) {
    var otp = $("otp");
    otp.addEventListener("input", function () {
      var digits = otp.value.replace(/\D/g, "").slice(0, 6);
      if (digits !== otp.value) otp.value = digits;
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!/^\d{6}$/.test(otp.value)) {
        fieldError("otp", "Enter the 6-digit code.");
        otp.focus();
        return;
      }
      fieldError("otp", "");
      busy(form, true);
      say(checking);
      send(otp.value).then(function (res) {
        busy(form, false);
        answer(res);
      });
    });
  }

  // codeRefused says why a code was refused, at the field and aloud, and
  // selects it for typing again.
  function codeRefused(msg) {
    var otp = $("otp");
    fieldError("otp", msg);
    say(msg);
    otp.select();
    otp.focus();
  }

  // gen counts "Start again"s (and sign-outs): the page adds one, and an
  // answer to an older attempt is ignored (call).
  var page = {
    $: $, steps: steps, gen: 0, say: say, show: show, call: call, wait: wait, message: message,
    fieldError: fieldError, note: note, fail: fail, busy: busy, emailProblem: emailProblem,
    codeForm: codeForm, codeRefused: codeRefused
  };
  return page;
};
