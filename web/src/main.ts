// framecast viewer: lists the server's streams, plays one over WebRTC (gstwebrtc-api, or WHEP
// with ?whep=1), reads the SEI metadata of each encoded frame in a dedicated worker and draws,
// for the frame being presented (matched by RTP timestamp), its metadata over the video.
import GstWebRTCAPI from "gstwebrtc-api";
import { attachRtpScriptTransform } from "nal-extractor";
import type { WorkerReport } from "./sei-worker";
import { drawOverlay } from "./overlay";
import { type Codec, framecastMetadata } from "./sei";

type Metadata = Record<string, unknown>;
type Producer = { id: string; meta: Record<string, unknown> };
type StreamInfo = Record<string, unknown> & { name: string };

/** One presented frame, as seen by requestVideoFrameCallback (test and bench hooks). */
export type Presented = {
  rtp: number;
  mediaTime: number;
  presentedFrames: number;
  t: number; // performance.now() of the callback
  matched: boolean; // metadata was there when the frame was presented
  late?: boolean; // it arrived while the frame was still on screen (drawn then)
  seq: number | null;
  latencyMs: number | null;
};

type Sample = {
  rtp: number;
  seq: number | null;
  late?: boolean; // seq filled in when the frame's metadata came after its presentation
  drawnRtp: number | null; // RTP timestamp of the picture actually captured (VideoFrame)
  drawnSeq: number | null; // seq of the metadata stored under drawnRtp
  width: number;
  height: number;
  rgb: string;
};

const params = new URLSearchParams(location.search);
const useWhep = params.get("whep") === "1";
const wanted = params.get("stream");
const sampleEvery = Number(params.get("sample") ?? 0);
const maxSamples = Number(params.get("samples") ?? 40);
const MAX_PRESENTED = 5000;
const MAX_KEPT_METADATA = 600; // ~20 s at 30 fps: far more than any jitter buffer holds

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const video = $<HTMLVideoElement>("video");
const overlay = $<HTMLCanvasElement>("overlay");
const listEl = $<HTMLUListElement>("streams");
const statusEl = $("status");

const hooks = {
  presented: [] as Presented[],
  received: 0, // encoded frames seen by the worker
  receivedWithMetadata: 0,
  lateMatches: 0,
  formats: { json: 0, msgpack: 0 }, // wire format of the SEI payloads received
  parseErrors: [] as string[],
  errors: [] as string[],
  samples: [] as Sample[],
  current: null as string | null,
  state: "idle" as string,
  signalling: "connecting" as string,
  stats: { fps: 0, latencyMs: null as number | null, coverage: null as number | null },
  pc: null as RTCPeerConnection | null, // the current peer connection (tests read getStats)
  streams: [] as StreamInfo[],
  producers: [] as Producer[],
  play: (name: string) => play(name),
  // The worker's parser, for tests: metadata of one Annex B access unit (null if none).
  decodeAU: (bytes: number[], codec?: Codec) => framecastMetadata(Uint8Array.from(bytes), codec),
  stop: () => stop(),
  clear: () => {
    hooks.presented.length = 0;
    hooks.samples.length = 0;
  },
};
declare global {
  interface Window {
    framecast: typeof hooks;
  }
}
window.framecast = hooks;

function setStatus(text: string) {
  statusEl.textContent = text;
}

function fail(msg: string) {
  hooks.errors.push(msg);
  setStatus(msg);
  console.error(msg);
}

// ---------------------------------------------------------------- metadata by RTP timestamp
const byRtp = new Map<number, Metadata>();

const worker = new Worker(new URL("./sei-worker.ts", import.meta.url), { type: "module" });
worker.onmessage = (ev: MessageEvent<WorkerReport | { type: "closed"; error: string }>) => {
  const msg = ev.data;
  if (msg.type !== "frame") return;
  hooks.received++;
  if (msg.error) hooks.parseErrors.push(msg.error);
  if (!msg.metadata) return;
  hooks.receivedWithMetadata++;
  if (msg.format) hooks.formats[msg.format]++;
  byRtp.set(msg.rtpTimestamp >>> 0, msg.metadata);
  for (const sample of hooks.samples.slice(-4)) {
    // a captured picture newer than its callback's frame: its metadata may come just after
    if (sample.drawnSeq === null && sample.drawnRtp === msg.rtpTimestamp >>> 0) {
      sample.drawnSeq = typeof msg.metadata.seq === "number" ? msg.metadata.seq : null;
    }
  }
  // A busy main thread can present a frame before the worker's message about it is handled:
  // draw it now, still for that frame (only if it is still the one on screen).
  if (onScreen && !onScreen.rec.matched && onScreen.rec.rtp === msg.rtpTimestamp >>> 0) {
    hooks.lateMatches++;
    onScreen.rec.late = true;
    const sample = hooks.samples[hooks.samples.length - 1];
    if (sample && sample.rtp === onScreen.rec.rtp && sample.seq === null) {
      sample.seq = typeof msg.metadata.seq === "number" ? msg.metadata.seq : null;
      sample.late = true;
    }
    drawOverlay(overlay, video, onScreen.width, onScreen.height, msg.metadata, null);
  }
  if (byRtp.size > MAX_KEPT_METADATA) {
    const oldest = byRtp.keys().next().value;
    if (oldest !== undefined) byRtp.delete(oldest);
  }
};
worker.onerror = (ev) => fail(`SEI worker error: ${ev.message}`);

function attachTransform(receiver: RTCRtpReceiver) {
  if (params.get("transform") === "0") return; // diagnostics: plain playback
  attachRtpScriptTransform(receiver, worker, { options: [{}, []] });
}

// ---------------------------------------------------------------- presentation loop
let lastShown = "";
let onScreen: { rec: Presented; width: number; height: number } | null = null;
let fpsWindow: Array<[number, number]> = []; // [t, presentedFrames]
let sampleCanvas: OffscreenCanvas | null = null;

function wallclockMs(md: Metadata): number | null {
  const ns = md.wallclock_ns;
  return typeof ns === "number" ? ns / 1e6 : null;
}

function onFrame(now: number, frame: VideoFrameCallbackMetadata) {
  video.requestVideoFrameCallback(onFrame);
  const rtp = frame.rtpTimestamp;
  if (rtp === undefined) return; // not a WebRTC frame
  const md = byRtp.get(rtp >>> 0) ?? null;
  // Glass: the moment this frame is expected on screen, on the Date.now() clock the server's
  // wallclock_ns shares here.
  const displayEpochMs = Date.now() + (frame.expectedDisplayTime - performance.now());
  const wall = md ? wallclockMs(md) : null;
  const latencyMs = wall === null ? null : displayEpochMs - wall;
  const seq = md && typeof md.seq === "number" ? md.seq : null;
  const rec: Presented = {
    rtp, mediaTime: frame.mediaTime, presentedFrames: frame.presentedFrames, t: now,
    matched: md !== null, seq, latencyMs,
  };
  hooks.presented.push(rec);
  onScreen = { rec, width: frame.width, height: frame.height };
  if (hooks.presented.length > MAX_PRESENTED) hooks.presented.splice(0, 1000);

  // frames/s and coverage over the last second
  fpsWindow.push([now, frame.presentedFrames]);
  while (fpsWindow.length > 1 && now - fpsWindow[0][0] > 1000) fpsWindow.shift();
  if (fpsWindow.length > 1) {
    const [t0, n0] = fpsWindow[0];
    hooks.stats.fps = ((frame.presentedFrames - n0) * 1000) / Math.max(1, now - t0);
  }
  const recent = hooks.presented.slice(-60);
  hooks.stats.coverage = recent.filter((p) => p.matched).length / recent.length;
  if (latencyMs !== null) hooks.stats.latencyMs = latencyMs;

  drawOverlay(overlay, video, frame.width, frame.height, md, latencyMs);
  const shown = md ? JSON.stringify(md, null, 2) : "null";
  if (shown !== lastShown) {
    $("metadata").textContent = shown;
    lastShown = shown;
  }
  $("latency").textContent = latencyMs === null ? "–" : `${latencyMs.toFixed(0)} ms`;
  $("fps").textContent = hooks.stats.fps.toFixed(1);
  $("coverage").textContent = `${(hooks.stats.coverage * 100).toFixed(0)} %`;

  if (sampleEvery > 0 && hooks.presented.length % sampleEvery === 0 &&
      hooks.samples.length < maxSamples) {
    samplePixels(rtp, seq, frame.width, frame.height);
  }
}

// Test hook: the picture of the frame being presented (drawn now, inside its rVFC callback),
// as base64 RGB, so a test can read the frame index drawn in its pixels.
function samplePixels(rtp: number, seq: number | null, width: number, height: number) {
  if (!sampleCanvas || sampleCanvas.width !== width || sampleCanvas.height !== height) {
    sampleCanvas = new OffscreenCanvas(width, height);
  }
  const ctx = sampleCanvas.getContext("2d", { willReadFrequently: true })!;
  // The picture is taken as a VideoFrame, whose own metadata names its RTP timestamp: under
  // load the element may already show a newer frame than the one this callback is about.
  let drawnRtp: number | null = null;
  try {
    const vf = new VideoFrame(video);
    const m = (vf as unknown as { metadata?: () => { rtpTimestamp?: number } }).metadata?.();
    drawnRtp = m?.rtpTimestamp === undefined ? null : m.rtpTimestamp >>> 0;
    ctx.drawImage(vf, 0, 0, width, height);
    vf.close();
  } catch {
    ctx.drawImage(video, 0, 0, width, height);
  }
  const drawnMd = drawnRtp === null ? null : byRtp.get(drawnRtp >>> 0);
  const drawnSeq = drawnMd && typeof drawnMd.seq === "number" ? drawnMd.seq : null;
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  let bin = "";
  for (let i = 0; i < rgb.length; i += 0x8000) {
    bin += String.fromCharCode(...rgb.subarray(i, i + 0x8000));
  }
  hooks.samples.push({ rtp, seq, drawnRtp, drawnSeq, width, height, rgb: btoa(bin) });
}

video.requestVideoFrameCallback(onFrame);

// ---------------------------------------------------------------- stream list
const signallingUrl =
  params.get("signalling") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

const api = new GstWebRTCAPI({
  meta: { name: `framecast-viewer-${Math.random().toString(36).slice(2, 8)}` },
  signalingServerUrl: signallingUrl,
  reconnectionTimeout: 2000,
  webrtcConfig: { iceServers: [] },
});

function producerName(p: Producer): string {
  const n = p.meta?.name;
  return typeof n === "string" ? n : p.id;
}

function streamNames(): string[] {
  const names = new Set<string>(hooks.streams.map((s) => s.name));
  if (!useWhep) for (const p of hooks.producers) names.add(producerName(p));
  return [...names].sort();
}

function renderList() {
  listEl.replaceChildren();
  const names = streamNames();
  if (!names.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "no streams yet";
    listEl.append(li);
  }
  for (const name of names) {
    const info = hooks.streams.find((s) => s.name === name);
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.textContent = name;
    b.dataset.stream = name;
    if (info) b.title = JSON.stringify(info);
    if (name === hooks.current) b.className = "active";
    b.onclick = () => play(name);
    li.append(b);
    listEl.append(li);
  }
  const playable = useWhep ? names : hooks.producers.map(producerName);
  if (wanted && hooks.current === null && !autoplayed && playable.includes(wanted)) {
    autoplayed = true;
    play(wanted);
  }
  // A stream picked before its producer was announced starts as soon as it is.
  if (!useWhep && hooks.state === "waiting" && hooks.current && playable.includes(hooks.current)) {
    playSignalling(hooks.current);
  }
}

let autoplayed = false;

// /api/streams: a list, or {streams: [...]}; each entry named by "name" or "mount".
async function refreshStreams() {
  try {
    const res = await fetch("./api/streams");
    if (!res.ok) return;
    const body = await res.json();
    const items: unknown[] = Array.isArray(body) ? body : Array.isArray(body?.streams) ? body.streams : [];
    hooks.streams = items
      .filter((x): x is Record<string, unknown> => !!x && typeof x === "object")
      .map((x) => ({ ...x, name: String(x.name ?? x.mount ?? "") }))
      .filter((x) => x.name);
    renderList();
  } catch {
    /* the list from signalling still works */
  }
}

api.registerConnectionListener({
  connected: (id: string) => {
    hooks.signalling = `connected as ${id}`;
    if (hooks.state === "idle") setStatus("connected");
  },
  disconnected: () => {
    hooks.signalling = "disconnected";
    setStatus("signalling disconnected");
  },
});
api.registerPeerListener({
  producerAdded: (p: Producer) => {
    hooks.producers = hooks.producers.filter((x) => x.id !== p.id).concat([p]);
    renderList();
  },
  producerRemoved: (p: Producer) => {
    hooks.producers = hooks.producers.filter((x) => x.id !== p.id);
    renderList();
  },
});
refreshStreams();
setInterval(refreshStreams, 5000);

// ---------------------------------------------------------------- playing
type Session = { close(): void };
let session: Session | null = null;

function stop() {
  session?.close();
  session = null;
  video.srcObject = null;
  hooks.pc = null;
  hooks.current = null;
  hooks.state = "idle";
  byRtp.clear();
  onScreen = null;
}

function play(name: string) {
  stop();
  hooks.current = name;
  hooks.state = "connecting";
  $("current").textContent = name;
  renderList();
  setStatus(`connecting to ${name}…`);
  if (useWhep) {
    playWhep(name).catch((e) => fail(`WHEP ${name}: ${e}`));
  } else {
    playSignalling(name);
  }
}

function showStream(stream: MediaStream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  video.play().catch((e) => fail(`play(): ${e}`));
  hooks.state = "playing";
  setStatus(`playing ${hooks.current}`);
}

function playSignalling(name: string) {
  const producer = hooks.producers.find((p) => producerName(p) === name);
  if (!producer) {
    hooks.state = "waiting";
    setStatus(`waiting for a WebRTC producer for ${name}…`);
    return;
  }
  hooks.state = "connecting";
  const s = api.createConsumerSession(producer.id);
  if (!s) {
    fail("cannot create a consumer session (signalling not connected?)");
    return;
  }
  session = s;
  s.addEventListener("rtcPeerConnectionChanged", () => {
    const pc = s.rtcPeerConnection as RTCPeerConnection | null;
    hooks.pc = pc;
    pc?.addEventListener("track", (ev) => {
      if (ev.track.kind === "video") attachTransform(ev.receiver);
    });
  });
  s.addEventListener("streamsChanged", () => {
    if (s.streams.length) showStream(s.streams[0]);
  });
  s.addEventListener("error", (ev) => fail(`session error: ${(ev as ErrorEvent).message}`));
  s.addEventListener("closed", () => {
    if (session === s) {
      hooks.state = "closed";
      setStatus(`${name}: session closed`);
    }
  });
  s.connect();
}

// WHEP (RFC 9725): one POST with the complete offer, 201 + answer; DELETE the resource to end.
async function playWhep(name: string) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  hooks.pc = pc;
  let resource: string | null = null;
  session = {
    close: () => {
      pc.close();
      if (resource) fetch(resource, { method: "DELETE" }).catch(() => undefined);
    },
  };
  // As the offerer we own the receiver from the start: attach the SEI transform before any
  // media can arrive (attached later, in the track event, Chromium never ran it here).
  attachTransform(pc.addTransceiver("video", { direction: "recvonly" }).receiver);
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addEventListener("track", (ev) => {
    if (ev.track.kind === "video") {
      showStream(ev.streams[0] ?? new MediaStream([ev.track]));
    }
  });
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringDone(pc);
  const res = await fetch(`./whep/${encodeURIComponent(name)}`, {
    method: "POST",
    headers: { "Content-Type": "application/sdp" },
    body: pc.localDescription!.sdp,
  });
  if (res.status !== 201) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
  const loc = res.headers.get("Location");
  resource = loc ? new URL(loc, location.href).href : null;
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
}

function iceGatheringDone(pc: RTCPeerConnection, timeoutMs = 2000): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

if (useWhep && wanted) play(wanted);
