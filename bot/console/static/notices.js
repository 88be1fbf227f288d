// お知らせ作成画面: show only the timing fields of the chosen kind (the form works without this script).
(function () {
  "use strict";
  var form = document.querySelector("form.notice-form");
  if (!form) { return; }
  function update() {
    var chosen = form.querySelector("input[name=kind]:checked");
    var kind = chosen ? chosen.value : "once";
    form.querySelectorAll(".kind-part").forEach(function (part) {
      part.hidden = part.dataset.kind !== kind;
    });
    var repeat = form.querySelector("input[name=repeat]:checked");
    form.querySelectorAll(".repeat-part").forEach(function (part) {
      part.hidden = !repeat || part.dataset.repeat !== repeat.value;
    });
    var at = form.querySelector("input[name=when][value=at]");
    var sendAt = form.querySelector("input[name=send_at]");
    if (at && sendAt) { sendAt.disabled = !at.checked; }
  }
  form.addEventListener("change", update);
  update();
})();
