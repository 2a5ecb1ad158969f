// Parents' request form: offer only the activities available before the chosen pickup time,
// and never the same activity twice. The server checks the same rules; this only saves a round trip.
(function () {
  "use strict";
  var form = document.querySelector("form.request-form[data-offers]");
  if (!form) { return; }
  var offers = {};
  try { offers = JSON.parse(form.getAttribute("data-offers")) || {}; } catch (e) { return; }
  var pickup = form.querySelector("select[name=pickup_time]");
  var prefs = Array.prototype.slice.call(form.querySelectorAll("select[name^=pref]"));

  function refresh() {
    var allowed = pickup && offers[pickup.value] ? offers[pickup.value] : null;
    prefs.forEach(function (select) {
      var takenElsewhere = prefs.filter(function (other) { return other !== select && other.value; })
        .map(function (other) { return other.value; });
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.value) { return; }
        var off = (allowed !== null && allowed.indexOf(option.value) < 0) ||
          takenElsewhere.indexOf(option.value) >= 0;
        option.disabled = off;
        if (off && option.selected && allowed !== null && allowed.indexOf(option.value) < 0) {
          select.value = "";
        }
      });
    });
  }

  if (pickup) { pickup.addEventListener("change", refresh); }
  prefs.forEach(function (select) { select.addEventListener("change", refresh); });
  refresh();
}());
