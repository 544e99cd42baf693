// The CV page: details -> code -> download. No framework, no third party;
// talks only to this site's /api/ functions.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var steps = { request: $("step-request"), verify: $("step-verify"), download: $("step-download") };
  if (!steps.request) return;

  // gen counts "Start again"s: an answer to an older attempt is ignored.
  var state = { requestId: "", timers: [], gen: 0 };
  // Answers after which this request can do nothing more.
  var FINAL = ["otp_locked", "otp_used", "request_not_found", "resend_limit_reached"];
  var status = $("status");
  var FIELDS = ["name", "email", "phone", "company", "location", "consent"];

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

  function clearTimers() {
    state.timers.forEach(window.clearInterval);
    state.timers = [];
  }

  // countdown calls tick(secondsLeft) every second until it reaches 0.
  function countdown(seconds, tick) {
    var end = Date.now() + seconds * 1000;
    var run = function () {
      var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      tick(left);
      if (left === 0) window.clearInterval(id);
    };
    var id = window.setInterval(run, 1000);
    state.timers.push(id);
    run();
  }

  function call(name, body) {
    var gen = state.gen;
    return fetch("/api/" + name, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        return { ok: r.ok, status: r.status, data: data, retryAfter: parseInt(r.headers.get("Retry-After"), 10) || 0 };
      });
    }, function () {
      return { ok: false, status: 0, data: { message: "The connection failed. Check your network and try again." } };
    }).then(function (res) {
      // Never settle an answer that arrived after "Start again".
      return gen === state.gen ? res : new Promise(function () {});
    });
  }

  function wait(seconds) {
    if (seconds < 120) return seconds + " seconds";
    if (seconds < 7200) return Math.ceil(seconds / 60) + " minutes";
    return Math.ceil(seconds / 3600) + " hours";
  }

  function fieldError(id, text) {
    var input = $(id), err = $(id + "-error");
    if (!input || !err) return;
    err.textContent = text || "";
    err.hidden = !text;
    if (text) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function formError(id, text) {
    var el = $(id);
    el.textContent = text || "";
    el.hidden = !text;
  }

  function busy(form, on) {
    var b = form.querySelector("button[type=submit]");
    b.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
  }

  // Step 1: details.
  var requestForm = $("request-form");
  requestForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var v = {
      name: $("name").value.trim(), email: $("email").value.trim(), phone: $("phone").value.trim(),
      company: $("company").value.trim(), location: $("location").value.trim(), consent: $("consent").checked,
      website: $("website").value
    };
    var errors = {};
    if (!v.name) errors.name = "Enter your name.";
    if (!v.email) errors.email = "Enter your email address.";
    else if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v.email)) errors.email = "Enter an email address like name@example.com.";
    if (!v.consent) errors.consent = "Please accept the privacy policy to continue.";
    if (!showFieldErrors(errors)) return;

    busy(requestForm, true);
    say("Sending your code…");
    call("request-access", v).then(function (res) {
      busy(requestForm, false);
      if (res.ok) {
        state.requestId = res.data.requestId;
        $("verify-sent").textContent = "We sent a 6-digit code to " + v.email +
          (v.phone ? " and by SMS to " + v.phone : "") + ". It works for " + Math.round(res.data.expiresIn / 60) + " minutes.";
        show("verify");
        say("Code sent. Enter the 6-digit code.");
        startResendCooldown(60);
        $("otp").focus();
        return;
      }
      if (res.data.fields) {
        showFieldErrors(res.data.fields);
        say("Some fields need attention.");
        return;
      }
      fail("request-error", res);
    });
  });

  // showFieldErrors marks each field; returns true when there are none.
  function showFieldErrors(errors) {
    var first = null;
    FIELDS.forEach(function (f) {
      fieldError(f, errors[f]);
      if (errors[f] && !first) first = f;
    });
    formError("request-error", "");
    if (first) $(first).focus();
    return !first;
  }

  function fail(errorId, res) {
    var msg = (res.data && res.data.message) || "Something went wrong. Please try again.";
    if (res.status === 429 && res.retryAfter) msg += " (You can try again in " + wait(res.retryAfter) + ".)";
    formError(errorId, msg);
    say(msg);
  }

  // Step 2: the code.
  var verifyForm = $("verify-form");
  var otp = $("otp");
  otp.addEventListener("input", function () {
    var digits = otp.value.replace(/\D/g, "").slice(0, 6);
    if (digits !== otp.value) otp.value = digits;
  });
  verifyForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!/^\d{6}$/.test(otp.value)) {
      fieldError("otp", "Enter the 6-digit code.");
      otp.focus();
      return;
    }
    fieldError("otp", "");
    busy(verifyForm, true);
    say("Checking your code…");
    call("verify-access", { requestId: state.requestId, otp: otp.value }).then(function (res) {
      busy(verifyForm, false);
      if (res.ok) {
        clearTimers();
        showDownload(res.data.redirectUrl, res.data.expiresIn);
        return;
      }
      var fields = res.data.fields || {};
      var msg = fields.otp || fields.requestId || res.data.message || "Something went wrong. Please try again.";
      fieldError("otp", msg);
      say(msg);
      otp.select();
      otp.focus();
      if (FINAL.indexOf(res.data.error) >= 0 || res.data.attemptsLeft === 0) {
        verifyForm.querySelector("button[type=submit]").disabled = true;
        resend.disabled = true;
      }
    });
  });

  var resend = $("resend");
  function startResendCooldown(seconds) {
    resend.disabled = true;
    countdown(seconds, function (left) {
      $("resend-wait").textContent = left > 0 ? "You can ask for a new code in " + left + " s." : "";
      if (left === 0) resend.disabled = false;
    });
  }
  resend.addEventListener("click", function () {
    resend.disabled = true;
    call("request-access", { requestId: state.requestId, resend: true }).then(function (res) {
      if (res.ok) {
        fieldError("otp", "");
        say("A new code is on its way. The previous code no longer works.");
        startResendCooldown(60);
        otp.value = "";
        otp.focus();
        return;
      }
      var msg = (res.data && res.data.message) || "Could not send a new code.";
      fieldError("otp", msg);
      say(msg);
      if (res.status === 429 && res.retryAfter) startResendCooldown(res.retryAfter);
      else if (FINAL.indexOf(res.data.error) < 0) resend.disabled = false;
    });
  });

  // Step 3: the link, shown once, dead after its lifetime.
  function showDownload(url, seconds) {
    var link = $("download-link");
    link.href = url;
    link.hidden = false;
    show("download");
    say("Verified. Your download link is ready.");
    countdown(seconds, function (left) {
      var m = Math.floor(left / 60), s = left % 60;
      $("download-expiry").textContent = left > 0
        ? "The link expires in " + m + ":" + (s < 10 ? "0" : "") + s + "."
        : "The link has expired. Start again to get a new one.";
      if (left === 0) {
        var hadFocus = document.activeElement === link;
        link.removeAttribute("href");
        link.hidden = true;
        if (hadFocus) $("download-expiry").focus();
      }
    });
    link.focus();
  }

  Array.prototype.forEach.call(document.querySelectorAll(".restart"), function (b) {
    b.addEventListener("click", function () {
      clearTimers();
      state.gen++;
      state.requestId = "";
      resend.disabled = true;
      busy(requestForm, false);
      busy(verifyForm, false);
      otp.value = "";
      fieldError("otp", "");
      verifyForm.querySelector("button[type=submit]").disabled = false;
      $("download-link").removeAttribute("href");
      show("request");
      say("Start again: your details are still filled in.");
    });
  });

  show("request", true);
})();
