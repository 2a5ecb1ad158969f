// Roll-call page: a tap posts its form in the background and redraws only that pupil's row from the answer,
// so the phone does not reload the whole list after every tap. Without this script, in a browser without
// fetch, or when the background post fails, the form posts as usual and the page reloads.
(function () {
  "use strict";
  var list = document.querySelector("ol.rollcall[data-fetch]");
  if (!list || !window.fetch || !window.FormData || !Element.prototype.closest) { return; }

  function postAsUsual(form, button) {
    var status = document.createElement("input");
    status.type = "hidden";
    status.name = button.name;
    status.value = button.value;
    form.appendChild(status);
    form.submit();
  }

  function showRefusal(row, text) {
    var note = row.querySelector(".rollcall-refusal");
    if (!note) {
      note = document.createElement("p");
      note.className = "flash flash-error rollcall-refusal";
      note.setAttribute("role", "alert");
      row.appendChild(note);
    }
    note.textContent = text;
  }

  list.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    if (!button || !button.name) { return; }  // no submitter known: let the form post as usual
    event.preventDefault();
    var row = form.closest("li");
    var data = new FormData(form);
    data.append(button.name, button.value);
    var buttons = Array.prototype.slice.call(form.querySelectorAll("button"));
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                        headers: {"X-Requested-With": "fetch"}})
      .then(function (response) {
        return response.text().then(function (text) { return {status: response.status, text: text}; });
      })
      .then(function (answer) {
        if (answer.status === 200) {
          row.outerHTML = answer.text;
        } else if (answer.status === 204) {
          window.location.reload();
        } else if (answer.status >= 400 && answer.status < 500 && answer.status !== 403 && answer.text) {
          buttons.forEach(function (b) { b.disabled = false; });
          showRefusal(row, answer.text);
        } else {
          throw new Error("HTTP " + answer.status);
        }
      })
      .catch(function () { postAsUsual(form, button); });
  });
}());
