// The console's own script: its live charts (the Now page's stock left per policy, the Workers page's lag
// per consumer group). Each chart element names, in data-chart-from, the JSON block every live update
// carries ([{key, label, value}], swapped in by htmx); the chart appends one point per update. Every page
// works without it.
(function () {
  'use strict';
  // Ten minutes at one reading a second: a page left open for hours keeps the same memory.
  const MAX_POINTS = 600;
  const COLOURS = ['#0b63ce', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7ea4', '#57606a'];
  const charts = new Map();

  function reading(sourceId) {
    const node = document.getElementById(sourceId);
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (error) {
      return null;
    }
  }

  function start(target, points) {
    const previous = charts.get(target.id);
    if (previous) previous.plot.destroy();
    target.textContent = '';
    const state = { keys: points.map((point) => point.key).join(','), times: [], columns: points.map(() => []) };
    const series = [{}].concat(points.map((point, index) => ({
      label: point.label,
      stroke: COLOURS[index % COLOURS.length],
      width: 2,
    })));
    state.plot = new uPlot({ width: Math.max(target.clientWidth, 320), height: 260, series: series, scales: { x: { time: true } } },
      [state.times].concat(state.columns), target);
    charts.set(target.id, state);
    return state;
  }

  function update(target) {
    const points = reading(target.dataset.chartFrom);
    if (!points || typeof uPlot === 'undefined') return;
    let state = charts.get(target.id);
    if (!state || state.keys !== points.map((point) => point.key).join(',')) state = start(target, points);
    state.times.push(Date.now() / 1000);
    points.forEach((point, index) => state.columns[index].push(point.value));
    if (state.times.length > MAX_POINTS) {
      state.times.shift();
      state.columns.forEach((column) => column.shift());
    }
    state.plot.setData([state.times].concat(state.columns));
    target.dataset.points = String(state.times.length);
  }

  function updateAll() {
    document.querySelectorAll('.live-chart[data-chart-from]').forEach(update);
  }

  document.addEventListener('DOMContentLoaded', updateAll);
  document.addEventListener('htmx:afterSettle', updateAll);
})();
