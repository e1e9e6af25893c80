// Idle sign-out: the session ends SESSION_COOKIE_AGE seconds after the last request. One minute
// before, a dialog offers to stay signed in (a request that renews the session); at the end the
// page signs out. The last activity is shared between the tabs (localStorage): a tab left idle
// does not sign out a person working in another one. No inline script (Content-Security-Policy).
(function () {
  "use strict";

  var dialog = document.getElementById("idle-warning");
  if (!dialog) {
    return;
  }
  var seconds = parseInt(dialog.getAttribute("data-session-seconds"), 10);
  // A minute before the end; a session shorter than 70 seconds is warned 10 seconds after activity.
  var warnBefore = Math.max(1, Math.min(60, seconds - 10));
  var key = "cartrial.lastActivity";
  var timer = null;

  function lastActivity() {
    var shared = 0;
    try {
      shared = parseInt(window.localStorage.getItem(key) || "0", 10);
    } catch (e) {
      shared = 0;
    }
    return Math.max(shared, lastHere);
  }

  var lastHere = Date.now();

  function touched() {
    lastHere = Date.now();
    try {
      window.localStorage.setItem(key, String(lastHere));
    } catch (e) {
      // Storage refused (private mode): this tab counts alone.
    }
    if (dialog.open) {
      dialog.close();
    }
    schedule();
  }

  function signOut() {
    var form = document.getElementById("logout-form");
    if (form) {
      form.submit();
    } else {
      window.location.assign(dialog.getAttribute("data-login-url"));
    }
  }

  function tick() {
    var left = seconds * 1000 - (Date.now() - lastActivity());
    if (left <= 0) {
      signOut();
      return;
    }
    if (left <= warnBefore * 1000) {
      if (!dialog.open) {
        dialog.showModal();
      }
      timer = window.setTimeout(tick, Math.min(left, 1000));
      return;
    }
    if (dialog.open) {
      dialog.close();
    }
    timer = window.setTimeout(tick, left - warnBefore * 1000);
  }

  function schedule() {
    if (timer !== null) {
      window.clearTimeout(timer);
    }
    tick();
  }

  function stay() {
    var token = document.querySelector("#logout-form input[name=csrfmiddlewaretoken]");
    fetch(dialog.getAttribute("data-refresh-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "" },
    }).then(function (response) {
      if (response.ok) {
        touched();
      } else {
        signOut();
      }
    }, signOut);
  }

  dialog.querySelector("[data-idle-stay]").addEventListener("click", stay);
  dialog.querySelector("[data-idle-leave]").addEventListener("click", signOut);
  // Escape would close the dialog without renewing anything: it means "stay".
  dialog.addEventListener("cancel", function (event) {
    event.preventDefault();
    stay();
  });
  // htmx requests renew the session too.
  document.body.addEventListener("htmx:afterRequest", touched);
  window.addEventListener("storage", function (event) {
    if (event.key === key) {
      schedule();
    }
  });
  touched();
})();
