// @ts-check
// Line charts with uPlot (served from node_modules by the dashboard). The chart instance stays on
// its element (el.uplot) and its data in data-points, so what is drawn can be read back.
import uPlot from '/vendor/uplot/uPlot.esm.js';

const COLORS = ['#2f5bd3', '#d9822b', '#1f8a4c', '#c23a3a'];

/**
 * A chart in a new element. series: [{ label }], one per y column; x: 'time' (epoch seconds) or a
 * label for a numeric x axis (e.g. 'epoch'). update(data) takes uPlot's columns [[x...], [y1...], ...].
 */
export function lineChart({ title, series, x = 'time', y = '', width = 560, height = 240, id }) {
  const el = document.createElement('div');
  el.className = 'chart';
  if (id) el.id = id;
  const opts = {
    title,
    width,
    height,
    scales: { x: { time: x === 'time' } },
    axes: [{ label: x === 'time' ? '' : x }, { label: y, size: 60 }],
    series: [
      { label: x === 'time' ? 'time' : x },
      ...series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: x !== 'time' } })),
    ],
  };
  let chart = null;
  const update = (data) => {
    el.dataset.points = JSON.stringify(data);
    if (!chart) {
      chart = new uPlot(opts, data, el);
      /** @type {HTMLDivElement & { uplot?: uPlot }} */ (el).uplot = chart;
    } else chart.setData(data);
  };
  return { el, update };
}
