// Every cv-access form on the page: details -> code -> download. No
// framework, no third party; talks only to this site's functions (the
// root's data-cv-access-api, e.g. /api). Hugo puts shared.js
// (cvAccessPage: the steps, the status line, the POST, the messages)
// before this file. Each form is a root element with
// data-cv-access-document="<slug>" whose id prefixes its elements' ids;
// a root is started once, however often this script is included.
(function () {
  "use strict";

  // Answers after which a request can do nothing more.
  var FINAL = ["otp_locked", "otp_used", "request_not_found", "resend_limit_reached", "document_withdrawn"];
  var FIELDS = ["name", "email", "phone", "company", "location", "consent"];

  function start(root) {
    if (root.getAttribute("data-cv-access-started")) return;
    var page = cvAccessPage(["request", "verify", "download"],
      { prefix: root.id + "-", api: root.getAttribute("data-cv-access-api") });
    if (!page) return;
    root.setAttribute("data-cv-access-started", "true");
    var documentSlug = root.getAttribute("data-cv-access-document");
    var $ = page.$, say = page.say, show = page.show, call = page.call, fieldError = page.fieldError,
      busy = page.busy;

    var state = { requestId: "", timers: [] };

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

    // Step 1: details.
    var requestForm = $("request-form");
    requestForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var v = {
        name: $("name").value.trim(), email: $("email").value.trim(), phone: $("phone").value.trim(),
        company: $("company").value.trim(), location: $("location").value.trim(), consent: $("consent").checked,
        website: $("website").value, document: documentSlug
      };
      var errors = {};
      if (!v.name) errors.name = "Enter your name.";
      errors.email = page.emailProblem(v.email);
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
        var fields = res.data.fields;
        if (fields && fields.document) {
          // No field to mark: this page offers a document the functions do not.
          page.fail("request-error", { status: res.status, data: { message: fields.document } });
          return;
        }
        if (fields) {
          showFieldErrors(fields);
          say("Some fields need attention.");
          return;
        }
        page.fail("request-error", res);
      });
    });

    // showFieldErrors marks each field; returns true when there are none.
    function showFieldErrors(errors) {
      var first = null;
      FIELDS.forEach(function (f) {
        fieldError(f, errors[f]);
        if (errors[f] && !first) first = f;
      });
      page.note("request-error", "");
      if (first) $(first).focus();
      return !first;
    }

    // Step 2: the code.
    var verifyForm = $("verify-form");
    var otp = $("otp");
    var resend = $("resend");
    page.codeForm(verifyForm, "Checking your code…", function (code) {
      // The document is a hint: the functions check it can be downloaded
      // while counting the attempt; the request decides which it is.
      return call("verify-access", { requestId: state.requestId, otp: code, document: documentSlug });
    }, function (res) {
      if (res.ok) {
        clearTimers();
        showDownload(res.data.redirectUrl, res.data.expiresIn);
        return;
      }
      var fields = res.data.fields || {};
      page.codeRefused(fields.otp || fields.requestId || res.data.message || "Something went wrong. Please try again.");
      if (FINAL.indexOf(res.data.error) >= 0 || res.data.attemptsLeft === 0) {
        verifyForm.querySelector("button[type=submit]").disabled = true;
        resend.disabled = true;
      }
    });

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
      // A web link only: an answer naming another scheme is not followed.
      var scheme = "";
      try { scheme = new URL(url, location.href).protocol; } catch (e) { /* not a URL */ }
      if (scheme !== "https:" && scheme !== "http:") {
        say("Something went wrong on our side. Please try again in a minute.");
        return;
      }
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

    Array.prototype.forEach.call(root.querySelectorAll(".cv-access-restart"), function (b) {
      b.addEventListener("click", function () {
        clearTimers();
        page.gen++;
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
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-cv-access-document]"), start);
})();
