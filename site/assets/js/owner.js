// The owner's page: sign in with a code, then the requests held, the CSV,
// erasure and sign-out. No framework, no third party; talks only to this
// site's /api/owner. Visitor text is set with textContent, never as HTML.
// Hugo puts the cv-access module's shared.js (cvAccessPage: the steps, the
// status line, the POST, the messages) before this file.
(function () {
  "use strict";

  var page = cvAccessPage(["signin", "code", "list"]);
  if (!page) return;
  var $ = page.$, steps = page.steps, say = page.say, show = page.show, message = page.message,
    fieldError = page.fieldError, note = page.note, fail = page.fail, busy = page.busy;

  var state = { requestId: "", erasing: null };
  var FINAL = ["otp_locked", "otp_used", "otp_expired", "request_not_found"];

  // call posts one action to /api/owner; raw keeps the body unread (the CSV).
  function call(action, fields, raw) {
    var body = { action: action };
    Object.keys(fields || {}).forEach(function (k) { body[k] = fields[k]; });
    return page.call("owner", body, raw);
  }

  // signedOut forgets everything shown and returns to the sign-in step.
  function signedOut(text, quiet) {
    page.gen++;
    state.requestId = "";
    $("requests").textContent = "";
    hideConfirm();
    $("otp").value = "";
    fieldError("otp", "");
    show("signin", quiet);
    if (text) say(text);
  }

  // Step 1: the owner's address.
  var signinForm = $("signin-form");
  signinForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var email = $("email").value.trim();
    var err = page.emailProblem(email);
    fieldError("email", err);
    note("signin-error", "");
    if (err) { $("email").focus(); return; }
    busy(signinForm, true);
    say("Sending a code…");
    call("sign-in", { email: email }).then(function (res) {
      busy(signinForm, false);
      if (res.ok) {
        state.requestId = res.data.requestId;
        $("code-sent").textContent = "If " + email + " is the owner's address, a code is on its way. It works for " +
          Math.round(res.data.expiresIn / 60) + " minutes.";
        $("code-form").querySelector("button[type=submit]").disabled = false;
        show("code");
        say("If that is the owner's address, a code is on its way.");
        $("otp").focus();
        return;
      }
      if (res.data.fields && res.data.fields.email) {
        fieldError("email", res.data.fields.email);
        $("email").focus();
        say(res.data.fields.email);
        return;
      }
      fail("signin-error", res);
    });
  });

  // Step 2: the code.
  var codeForm = $("code-form");
  page.codeForm(codeForm, "Checking the code…", function (code) {
    return call("verify", { requestId: state.requestId, otp: code });
  }, function (res) {
    if (res.ok) {
      $("otp").value = "";
      load(false);
      return;
    }
    var fields = res.data.fields || {};
    var msg = fields.otp || fields.requestId || message(res);
    var final = FINAL.indexOf(res.data.error) >= 0 || res.data.attemptsLeft === 0;
    if (final && !/start again/i.test(msg)) msg += " Choose “Start again” for a new code.";
    page.codeRefused(msg);
    if (final) codeForm.querySelector("button[type=submit]").disabled = true;
  });
  $("restart").addEventListener("click", function () {
    signedOut("Start again: enter your address for a new code.");
  });

  // Step 3: the requests held. load resolves to whether they are shown.
  function load(quiet) {
    if (!quiet) say("Signed in. Loading the requests…");
    return call("list").then(function (res) {
      if (res.status === 401) { signedOut(quiet ? "" : message(res), quiet); return false; }
      if (!res.ok) {
        // Not signed out: the session may still hold; say why and stay.
        var where = steps.list.hidden ? "signin-error" : "list-error";
        if (steps.list.hidden) show("signin", quiet);
        fail(where, res);
        return false;
      }
      var reqs = res.data.requests || [];
      render(reqs, res.data.sessionExpiresIn, res.data.total);
      show("list", quiet);
      if (!quiet) say(summary(reqs));
      return true;
    });
  }

  function summary(reqs) {
    return reqs.length === 0 ? "No requests are held." :
      reqs.length === 1 ? "1 request is held." : reqs.length + " requests are held.";
  }

  function when(s) {
    if (!s) return null;
    var t = document.createElement("time");
    t.dateTime = s;
    t.textContent = s.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC");
    return t;
  }

  var STATUS = { PENDING: "Code sent, not used", VERIFIED: "Got a link", EXPIRED: "Code expired unused" };
  // The documents' titles by slug, from site/data/cv_access.json.
  var DOCUMENT = JSON.parse($("requests").getAttribute("data-documents") || "{}");

  function render(reqs, sessionSeconds, total) {
    hideConfirm();
    var list = $("requests");
    list.textContent = "";
    // With none, #list-empty says so. A list that stops short says so.
    var more = total > reqs.length ? "These are the newest " + reqs.length + " of the " + total +
      " held (the CSV too); “cv-owner list” lists them all. " : "";
    $("list-summary").textContent = (reqs.length ? summary(reqs) + " " : "") + more + (sessionSeconds > 0 ?
      "You stay signed in for " + page.wait(sessionSeconds) + " at most, or until you sign out." : "");
    $("list-empty").hidden = reqs.length > 0;
    $("csv").disabled = reqs.length === 0;
    reqs.forEach(function (r, i) {
      var li = document.createElement("li");
      var h = document.createElement("h3");
      h.textContent = r.name;
      var dl = document.createElement("dl");
      var row = function (label, value) {
        if (value === null || value === undefined || value === "") return;
        var dt = document.createElement("dt"), dd = document.createElement("dd");
        dt.textContent = label;
        if (typeof value === "string") dd.textContent = value;
        else value.forEach(function (v) { if (v) dd.append(v); });
        dl.append(dt, dd);
      };
      row("Email", r.email);
      row("Phone", r.phone);
      row("Company", r.company);
      row("Location", r.location);
      row("Status", STATUS[r.status] || r.status);
      row("Asked", [when(r.createdAt)]);
      row("Verified", r.verifiedAt ? [when(r.verifiedAt)] : null);
      row("Consent", ["policy " + r.consentPolicyVersion + ", ", when(r.consentAt)]);
      row("Document", Object.prototype.hasOwnProperty.call(DOCUMENT, r.document) ? DOCUMENT[r.document] : r.document);
      row("Deleted by", [when(r.deleteAt)]);
      var erase = document.createElement("button");
      erase.type = "button";
      erase.id = "erase-" + i;
      erase.className = "secondary";
      erase.setAttribute("aria-controls", "confirm");
      erase.setAttribute("aria-expanded", "false");
      erase.textContent = "Erase";
      var who = document.createElement("span");
      who.className = "cv-access-visually-hidden";
      who.textContent = " every request from " + r.email;
      erase.append(who);
      erase.addEventListener("click", function () { askErase(li, erase, r.email); });
      li.append(h, dl, erase);
      list.append(li);
    });
  }

  // Erasure asks first, in the page: the question takes the focus, and
  // Cancel gives it back to the button that asked.
  var confirmBox = $("confirm");
  function askErase(li, button, email) {
    hideConfirm();
    state.erasing = { email: email, button: button };
    $("confirm-question").textContent = "Erase every request made with " + email +
      ", in any spelling of that inbox? This cannot be undone.";
    li.append(confirmBox);
    confirmBox.hidden = false;
    button.setAttribute("aria-expanded", "true");
    $("confirm-question").focus();
  }

  function hideConfirm() {
    if (state.erasing) state.erasing.button.setAttribute("aria-expanded", "false");
    confirmBox.hidden = true;
    steps.list.append(confirmBox);
    state.erasing = null;
  }

  $("confirm-cancel").addEventListener("click", function () {
    var button = state.erasing && state.erasing.button;
    hideConfirm();
    say("Nothing was erased.");
    if (button) button.focus();
  });

  var eraseButton = $("confirm-erase");
  eraseButton.addEventListener("click", function () {
    if (!state.erasing) return;
    var email = state.erasing.email;
    busy(eraseButton, true);
    call("erase", { email: email }).then(function (res) {
      busy(eraseButton, false);
      if (res.status === 401) { signedOut(message(res)); return; }
      if (!res.ok) {
        fail("list-error", res);
        $("confirm-question").focus();
        return;
      }
      note("list-error", "");
      var n = res.data.erased;
      var done = "Erased " + n + (n === 1 ? " request" : " requests") + " made with " + email + ".";
      return load(true).then(function (shown) {
        if (!shown) return;
        $("list-summary").textContent = done + " " + $("list-summary").textContent;
        $("step-list-title").focus();
        say(done);
      });
    });
  });

  // The CSV: fetched with POST (the session cookie is for /api/owner
  // only), then saved from a Blob URL through a download link.
  var csvButton = $("csv");
  csvButton.addEventListener("click", function () {
    busy(csvButton, true);
    say("Preparing the CSV…");
    call("csv", {}, true).then(function (res) {
      if (!res.ok) {
        busy(csvButton, false);
        if (res.status === 401) { signedOut(message(res)); return; }
        fail("list-error", res);
        return;
      }
      return res.response.blob().then(function (blob) {
        busy(csvButton, false);
        var url = URL.createObjectURL(blob);
        var a = document.createElement("a");
        a.href = url;
        a.download = "cv-access-requests.csv";
        a.hidden = true;
        document.body.append(a);
        a.click();
        a.remove();
        window.setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
        say("The CSV is downloaded: cv-access-requests.csv.");
      });
    });
  });

  var signout = $("signout");
  signout.addEventListener("click", function () {
    busy(signout, true);
    call("sign-out").then(function (res) {
      busy(signout, false);
      if (!res.ok && res.status !== 401) {
        fail("list-error", res);
        return;
      }
      signedOut("Signed out.");
    });
  });

  load(true);
})();
