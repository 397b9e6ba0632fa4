// The console's own script: the Now page's chart of the coupons each open policy has left, fed by the
// numbers every live update carries (#stock-data, swapped in by htmx). Every page works without it.
(function () {
  'use strict';
  // Ten minutes at one reading a second: a page left open for hours keeps the same memory.
  const MAX_POINTS = 600;
  const COLOURS = ['#0b63ce', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7ea4', '#57606a'];
  let chart = null;
  let shown = '';
  let times = [];
  let lefts = [];

  function readings() {
    const node = document.getElementById('stock-data');
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (error) {
      return null;
    }
  }

  function start(target, policies) {
    if (chart) chart.destroy();
    target.textContent = '';
    times = [];
    lefts = policies.map(() => []);
    const series = [{}].concat(policies.map((policy, index) => ({
      label: policy.name,
      stroke: COLOURS[index % COLOURS.length],
      width: 2,
    })));
    chart = new uPlot({ width: Math.max(target.clientWidth, 320), height: 260, series: series, scales: { x: { time: true } } },
      [times].concat(lefts), target);
  }

  function update() {
    const policies = readings();
    const target = document.getElementById('stock-chart');
    if (!policies || !target || typeof uPlot === 'undefined') return;
    const ids = policies.map((policy) => policy.id).join(',');
    if (!chart || ids !== shown) {
      shown = ids;
      start(target, policies);
    }
    times.push(Date.now() / 1000);
    policies.forEach((policy, index) => lefts[index].push(policy.total - policy.issued));
    if (times.length > MAX_POINTS) {
      times.shift();
      lefts.forEach((column) => column.shift());
    }
    chart.setData([times].concat(lefts));
    target.dataset.points = String(times.length);
  }

  document.addEventListener('DOMContentLoaded', update);
  document.addEventListener('htmx:afterSettle', update);
})();
