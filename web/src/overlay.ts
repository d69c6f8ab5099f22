// Draws one frame's metadata over the video: boxes given in video pixels
// (`boxes: [[x, y, w, h, label], ...]`) scaled to where the picture is actually displayed.
// The text line (seq · loop · latency · other fields) is returned, not drawn: the page shows it
// under the picture, where it hides no box.
type Metadata = Record<string, unknown>;

// hops: the relays' own stamps (the top-level wallclock_ns is the origin's, so latency is true)
const STAMPS = new Set(["seq", "loop", "pts_ns", "wallclock_ns", "boxes", "hops"]);

/** A box as drawn, in video pixels. */
export type Box = [number, number, number, number, string];

export type Drawn = { line: string; boxes: Box[] };

/** The boxes of a frame's metadata that can be drawn (four finite numbers, optional label). */
export function metadataBoxes(md: Metadata | null | undefined): Box[] {
  const out: Box[] = [];
  for (const b of Array.isArray(md?.boxes) ? md.boxes : []) {
    if (!Array.isArray(b) || b.length < 4) continue;
    const [x, y, w, h] = b.slice(0, 4).map(Number);
    if (![x, y, w, h].every(Number.isFinite)) continue;
    out.push([x, y, w, h, b.length > 4 ? String(b[4]) : ""]);
  }
  return out;
}

/** The text line for a frame: `seq 12 · loop 0 · 85 ms · {other fields}`. */
export function metadataLine(md: Metadata, latencyMs: number | null): string {
  const parts = [`seq ${md.seq ?? "?"}`];
  if (md.loop !== undefined) parts.push(`loop ${md.loop}`);
  if (latencyMs !== null) parts.push(`${latencyMs.toFixed(0)} ms`);
  const extra = Object.entries(md).filter(([k]) => !STAMPS.has(k));
  if (extra.length) {
    const text = JSON.stringify(Object.fromEntries(extra));
    parts.push(text.length > 60 ? `${text.slice(0, 57)}…` : text);
  }
  return parts.join(" · ");
}

export function drawOverlay(
  canvas: HTMLCanvasElement,
  video: HTMLVideoElement,
  videoWidth: number,
  videoHeight: number,
  md: Metadata | null,
  latencyMs: number | null,
): Drawn {
  const dpr = window.devicePixelRatio || 1;
  const cw = Math.round(canvas.clientWidth * dpr);
  const ch = Math.round(canvas.clientHeight * dpr);
  if (canvas.width !== cw) canvas.width = cw;
  if (canvas.height !== ch) canvas.height = ch;
  const ctx = canvas.getContext("2d")!;
  ctx.clearRect(0, 0, cw, ch);
  if (!md || !videoWidth || !videoHeight) return { line: "", boxes: [] };

  // object-fit: contain — the picture is letterboxed inside the element.
  const scale = Math.min(cw / videoWidth, ch / videoHeight);
  const ox = (cw - videoWidth * scale) / 2;
  const oy = (ch - videoHeight * scale) / 2;
  const right = ox + videoWidth * scale;
  const bottom = oy + videoHeight * scale;

  const boxes = metadataBoxes(md);
  ctx.lineWidth = Math.max(2, 2 * dpr);
  ctx.font = `${Math.round(12 * dpr)}px system-ui, sans-serif`;
  const lh = 16 * dpr; // label height
  for (const [x, y, w, h, label] of boxes) {
    const bx = ox + x * scale;
    const by = oy + y * scale;
    ctx.strokeStyle = "#3f3";
    ctx.strokeRect(bx, by, w * scale, h * scale);
    if (!label) continue;
    const tw = ctx.measureText(label).width + 6 * dpr;
    // Above the box; inside its top edge when there is no room above; within the picture.
    let ly = by - lh >= oy ? by - lh : by;
    ly = Math.min(Math.max(ly, oy), bottom - lh);
    const lx = Math.min(Math.max(bx, ox), right - tw);
    ctx.fillStyle = "rgba(0,0,0,0.6)";
    ctx.fillRect(lx, ly, tw, lh);
    ctx.fillStyle = "#3f3";
    ctx.fillText(label, lx + 3 * dpr, ly + lh - 4 * dpr);
  }
  return { line: metadataLine(md, latencyMs), boxes };
}
