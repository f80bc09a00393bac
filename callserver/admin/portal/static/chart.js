// A small line chart on a <canvas>: one line per series over the last samples, a dashed line
// at each series' limit, the y axis from 0 with a few grid lines. Drawn anew at each sample.

export const COLORS = ["#1f5fbf", "#b3261e", "#1e7b34", "#a15c00", "#6a3fb5", "#00838f", "#ad1457", "#5d4037"];

// A grid step of 1, 2 or 5 times a power of ten: four steps hold ``value``.
function gridStep(value) {
  const rough = Math.max(1, value / 4);
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  for (const m of [1, 2, 5, 10]) {
    if (m * power >= rough) return m * power;
  }
  return 10 * power;
}

// series: [{label, values: [numbers, oldest first], limit: number|null}]; capacity: how many
// samples the x axis holds.
export function drawChart(canvas, series, capacity) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const left = 40, right = 10, top = 10, bottom = 20;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  let highest = 0;
  for (const s of series) highest = Math.max(highest, ...s.values, s.limit || 0);
  const step = gridStep(highest * 1.1);
  const maxY = 4 * step;
  const y = (v) => top + plotH - (v / maxY) * plotH;
  const x = (i) => left + (capacity <= 1 ? 0 : (i / (capacity - 1)) * plotW);
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#5b6474";
  g.strokeStyle = "#e1e4e9";
  g.lineWidth = 1;
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const value = step * i;
    g.beginPath();
    g.moveTo(left, y(value));
    g.lineTo(left + plotW, y(value));
    g.stroke();
    g.fillText(String(value), left - 6, y(value));
  }
  g.textAlign = "left";
  g.fillText("now", left + plotW - 22, top + plotH + 12);
  series.forEach((s, index) => {
    const color = COLORS[index % COLORS.length];
    const offset = capacity - s.values.length;
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.setLineDash([]);
    g.beginPath();
    s.values.forEach((v, i) => (i === 0 ? g.moveTo(x(offset + i), y(v)) : g.lineTo(x(offset + i), y(v))));
    g.stroke();
    if (s.limit !== null && s.limit !== undefined) {
      g.lineWidth = 1;
      g.setLineDash([5, 4]);
      g.beginPath();
      g.moveTo(left, y(s.limit));
      g.lineTo(left + plotW, y(s.limit));
      g.stroke();
    }
  });
  g.setLineDash([]);
}
