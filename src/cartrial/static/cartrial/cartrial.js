// The pages' only script besides htmx and plotly.js: the Content-Security-Policy runs no inline
// script or event handler, so behaviour is declared in attributes and wired here.
(function () {
  "use strict";

  // <select data-autosubmit> submits its form when changed (language, center filters).
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
      field.form.submit();
    }
  });

  // <div class="plotly-figure" data-figure="ID"> + <script type="application/json" id="ID">
  // {"figure": {"data", "layout"}, "config"}: drawn with the local plotly.js.
  function drawFigures(root) {
    if (typeof window.Plotly === "undefined" || !root.querySelectorAll) {
      return;
    }
    root.querySelectorAll(".plotly-figure[data-figure]:not([data-drawn])").forEach(function (box) {
      var source = document.getElementById(box.getAttribute("data-figure"));
      if (!source) {
        return;
      }
      var spec = JSON.parse(source.textContent);
      box.setAttribute("data-drawn", "");
      window.Plotly.newPlot(box, spec.figure.data, spec.figure.layout || {}, spec.config || {});
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawFigures(document);
  });
  // htmx fires htmx:load on each piece of content it swaps in (the kinetics panel).
  document.addEventListener("htmx:load", function (event) {
    drawFigures(event.target);
  });
  // plotly.js may arrive after the panel (deferred): draw whatever waited for it.
  window.addEventListener("load", function () {
    drawFigures(document);
  });
})();
