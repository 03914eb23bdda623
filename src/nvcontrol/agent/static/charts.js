// Small line charts on <canvas>, drawn by hand so that the dashboard needs no library.
"use strict";

function drawLine(canvas, values, color, lo, hi) {
  const w = canvas.clientWidth || 200, h = canvas.clientHeight || 70;
  if (canvas.width !== w * 2) { canvas.width = w * 2; canvas.height = h * 2; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(2, 0, 0, 2, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const nums = values.filter((v) => typeof v === "number");
  if (nums.length === 0) return;
  let min = lo !== undefined ? lo : Math.min(...nums);
  let max = hi !== undefined ? Math.max(hi, ...nums) : Math.max(...nums);
  if (max - min < 1e-9) { max = min + 1; }
  ctx.strokeStyle = "#30363d";
  ctx.beginPath(); ctx.moveTo(0, h - 0.5); ctx.lineTo(w, h - 0.5); ctx.stroke();
  ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
  const step = values.length > 1 ? w / (values.length - 1) : w;
  let started = false;
  values.forEach((v, i) => {
    if (typeof v !== "number") { started = false; return; }
    const x = i * step, y = h - 2 - ((v - min) / (max - min)) * (h - 4);
    if (!started) { ctx.moveTo(x, y); started = true; } else { ctx.lineTo(x, y); }
  });
  ctx.stroke();
}

window.drawLine = drawLine;
