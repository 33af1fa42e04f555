// Small behaviours of the staff pages, here rather than inline: the Content-Security-Policy
// allows scripts from this origin only (no inline handlers).
//   <select data-autosubmit>        submits its form when changed
//   <form data-submit-once>         disables its submit button while the form is sent
//   <input data-check-all="NAME">   checks / unchecks every input[name=NAME]
"use strict";
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.submit();
});
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches || !form.matches("form[data-submit-once]")) return;
  var button = form.querySelector("button[type=submit]") || form.querySelector("button");
  if (button) button.disabled = true;
});
document.addEventListener("click", function (event) {
  var box = event.target;
  if (!box.matches || !box.matches("input[data-check-all]")) return;
  var name = box.getAttribute("data-check-all");
  document.querySelectorAll("input[name='" + name + "']").forEach(function (c) {
    c.checked = box.checked;
  });
});
