// Draws one frame's metadata over the video: a text line, and boxes given in video pixels
// (`boxes: [[x, y, w, h, label], ...]`) scaled to where the picture is actually displayed.
type Metadata = Record<string, unknown>;

const STAMPS = new Set(["seq", "loop", "pts_ns", "wallclock_ns", "boxes"]);

export function drawOverlay(
  canvas: HTMLCanvasElement,
  video: HTMLVideoElement,
  videoWidth: number,
  videoHeight: number,
  md: Metadata | null,
  latencyMs: number | null,
) {
  const dpr = window.devicePixelRatio || 1;
  const cw = Math.round(canvas.clientWidth * dpr);
  const ch = Math.round(canvas.clientHeight * dpr);
  if (canvas.width !== cw) canvas.width = cw;
  if (canvas.height !== ch) canvas.height = ch;
  const ctx = canvas.getContext("2d")!;
  ctx.clearRect(0, 0, cw, ch);
  if (!md || !videoWidth || !videoHeight) return;

  // object-fit: contain — the picture is letterboxed inside the element.
  const scale = Math.min(cw / videoWidth, ch / videoHeight);
  const ox = (cw - videoWidth * scale) / 2;
  const oy = (ch - videoHeight * scale) / 2;

  const boxes = Array.isArray(md.boxes) ? md.boxes : [];
  ctx.lineWidth = Math.max(2, 2 * dpr);
  ctx.font = `${Math.round(12 * dpr)}px system-ui, sans-serif`;
  for (const b of boxes) {
    if (!Array.isArray(b) || b.length < 4) continue;
    const [x, y, w, h] = b.slice(0, 4).map(Number);
    if (![x, y, w, h].every(Number.isFinite)) continue;
    const label = b.length > 4 ? String(b[4]) : "";
    const bx = ox + x * scale;
    const by = oy + y * scale;
    ctx.strokeStyle = "#3f3";
    ctx.strokeRect(bx, by, w * scale, h * scale);
    if (label) {
      const tw = ctx.measureText(label).width + 6 * dpr;
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(bx, by - 16 * dpr, tw, 16 * dpr);
      ctx.fillStyle = "#3f3";
      ctx.fillText(label, bx + 3 * dpr, by - 4 * dpr);
    }
  }

  const parts = [`seq ${md.seq ?? "?"}`];
  if (md.loop !== undefined) parts.push(`loop ${md.loop}`);
  if (latencyMs !== null) parts.push(`${latencyMs.toFixed(0)} ms`);
  const extra = Object.entries(md).filter(([k]) => !STAMPS.has(k));
  if (extra.length) {
    const text = JSON.stringify(Object.fromEntries(extra));
    parts.push(text.length > 60 ? `${text.slice(0, 57)}…` : text);
  }
  const line = parts.join(" · ");
  ctx.font = `${Math.round(14 * dpr)}px ui-monospace, monospace`;
  const tw = ctx.measureText(line).width;
  // Below the top band, where test clips draw their frame index.
  const ty = oy + Math.max(0.12 * videoHeight * scale, 24 * dpr);
  ctx.fillStyle = "rgba(0,0,0,0.6)";
  ctx.fillRect(ox + 4 * dpr, ty, tw + 8 * dpr, 20 * dpr);
  ctx.fillStyle = "#fff";
  ctx.fillText(line, ox + 8 * dpr, ty + 15 * dpr);
}
