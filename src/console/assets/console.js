// approval-gate console: the only script. A request's page listens for
// server-sent events and swaps in the fragment the server rendered, so two
// approvers never act on stale state. Every page works without it.
"use strict";

(function () {
  const live = document.getElementById("live");
  if (!live || !live.dataset.stream || !window.EventSource) {
    return;
  }
  const source = new EventSource(live.dataset.stream);
  source.addEventListener("update", function (event) {
    // Keep what the person is typing across the swap.
    const typed = {};
    live.querySelectorAll("textarea").forEach(function (t) {
      typed[t.id] = t.value;
    });
    const focused = document.activeElement && document.activeElement.id;
    live.innerHTML = event.data;
    Object.keys(typed).forEach(function (id) {
      const t = document.getElementById(id);
      if (t) {
        t.value = typed[id];
      }
    });
    if (focused) {
      const again = document.getElementById(focused);
      if (again) {
        again.focus();
      }
    }
    live.dataset.updates = String(Number(live.dataset.updates || "0") + 1);
  });
  source.addEventListener("signed-out", function () {
    source.close();
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
  });
  source.addEventListener("gone", function (event) {
    source.close();
    live.insertAdjacentHTML("afterbegin", '<p class="warn" role="alert"></p>');
    live.firstElementChild.textContent = event.data;
  });
})();
