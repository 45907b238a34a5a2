// Progressive enhancement only: every page works without this script.
(function () {
  "use strict";
  // Selects marked data-autosubmit submit their form when changed.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { if (el.form) { el.form.submit(); } });
  });
  // Move focus to the first error summary so screen readers announce it.
  var summary = document.querySelector(".notice.error[role=alert]");
  if (summary) { summary.setAttribute("tabindex", "-1"); summary.focus(); }
  // Select the self-report link on focus for easy copying.
  var link = document.getElementById("self-link");
  if (link) { link.addEventListener("focus", function () { link.select(); }); }
})();
