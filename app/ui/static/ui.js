// Draws every [data-chart] element with uPlot (app/ui/static/vendor); data comes from the
// server-rendered page (app/ui/pages.py `chart`). No inline scripts: the page's CSP forbids them.
(function () {
  "use strict";
  var PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d"];

  function format(unit) {
    return function (self, value) {
      if (value == null) return "–";
      if (unit === "ratio") return (value * 100).toFixed(2) + "%";
      if (unit === "USD") return "$" + value.toFixed(4);
      if (unit === "ms") return value >= 1000 ? (value / 1000).toFixed(2) + " s" : value.toFixed(0) + " ms";
      return String(Math.round(value * 100) / 100);
    };
  }

  function draw(element) {
    if (element.dataset.drawn) return;
    var spec = JSON.parse(element.dataset.chart);
    if (!window.uPlot) return;
    var series = [{}];
    var data = [spec.x];
    spec.series.forEach(function (s, i) {
      series.push({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 2,
        spanGaps: true,
        points: { show: spec.x.length <= 90, size: 4 },
        value: format(spec.unit),
        fill: spec.series.length === 1 ? PALETTE[i % PALETTE.length] + "22" : undefined,
      });
      data.push(s.values);
    });
    if (spec.series.length === 0) {
      element.textContent = "No data in this window.";
      element.dataset.drawn = "empty";
      return;
    }
    var width = Math.max(260, element.clientWidth || 400);
    var options = {
      width: width,
      height: spec.height || 180,
      series: series,
      axes: [{}, { values: function (u, ticks) { return ticks.map(function (t) { return format(spec.unit)(u, t); }); }, size: 80 }],
      scales: { x: { time: spec.time !== false } },
      legend: { live: true },
    };
    element.dataset.drawn = "yes";
    element.uplot = new window.uPlot(options, data, element);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:load", function (event) { drawAll(event.target); });
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-chart][data-drawn=yes]").forEach(function (element) {
      if (element.uplot) element.uplot.setSize({ width: Math.max(260, element.clientWidth), height: element.uplot.height });
    });
  });

})();
