// Live progress of an allocation run: polls the run's status endpoint once a second and fills the page.
(function () {
  "use strict";
  var box = document.getElementById("run-progress");
  if (!box) { return; }
  var statusUrl = box.getAttribute("data-status-url");
  var detailUrl = box.getAttribute("data-detail-url");
  var failures = 0;

  function set(name, text) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = text; }
  }

  function show(status) {
    var bar = box.querySelector('[data-field="progress"]');
    if (bar) { bar.value = status.progress; }
    set("percent", String(Math.round(status.progress * 100)));
    set("state_label", status.state_label);
    set("stage_label", status.stage_label);
    set("best_coverage", status.best_coverage === null ? "–" : String(status.best_coverage));
    set("demand", status.demand === null ? "–" : String(status.demand));
  }

  function poll() {
    fetch(statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (status) {
        failures = 0;
        show(status);
        if (status.finished) {
          window.location.assign(detailUrl);
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        failures += 1;
        window.setTimeout(poll, Math.min(10000, 1000 * (failures + 1)));
      });
  }

  window.setTimeout(poll, 1000);
}());
