// Bureau pages: live progress of an allocation batch, and a waiting advice computation.
(function () {
  "use strict";

  function batchProgress(box) {
    var url = box.getAttribute("data-status-url");
    var failures = 0;

    function set(name, text) {
      var el = box.querySelector('[data-field="' + name + '"]');
      if (el) { el.textContent = text; }
    }

    function eta(status) {
      var el = box.querySelector('[data-field="eta"]');
      if (!el) { return ""; }
      if (status.finished) { return el.getAttribute("data-finished-text"); }
      if (status.eta_seconds === null) { return el.getAttribute("data-unknown-text"); }
      if (status.eta_seconds >= 90) {
        return el.getAttribute("data-minutes-text").replace("%(n)s", String(Math.round(status.eta_seconds / 60)));
      }
      return el.getAttribute("data-seconds-text").replace("%(n)s", String(status.eta_seconds));
    }

    function show(status) {
      var bar = box.querySelector('[data-field="bar"]');
      if (bar) { bar.max = status.total; bar.value = status.done + status.failed; }
      set("done", String(status.done));
      set("failed", String(status.failed));
      set("total", String(status.total));
      set("eta", eta(status));
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (status) {
          failures = 0;
          show(status);
          if (!status.finished) { window.setTimeout(poll, 2000); return; }
          // The page was drawn before the batch finished: draw it again for each school's final result.
          if (box.getAttribute("data-finished") === "0") { window.location.reload(); }
        })
        .catch(function () {
          failures += 1;
          if (failures < 10) { window.setTimeout(poll, 5000); }
        });
    }

    poll();
  }

  var box = document.getElementById("batch-progress");
  if (box) { batchProgress(box); }

  var pending = document.getElementById("advice-pending");
  if (pending) {
    var seconds = parseInt(pending.getAttribute("data-reload"), 10) || 5;
    window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
  }
}());
