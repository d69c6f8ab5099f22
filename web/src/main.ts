// framecast viewer: lists the server's streams, plays one over WebRTC (gstwebrtc-api, WHEP
// with ?whep=1, or through a Janus edge with ?via=janus), reads the SEI metadata of each encoded frame in a dedicated worker and draws,
// for the frame being presented (matched by RTP timestamp), its metadata over the video.
import GstWebRTCAPI from "gstwebrtc-api";
import { attachRtpScriptTransform } from "nal-extractor";
import type { WorkerReport } from "./sei-worker";
import { type Box, drawOverlay, metadataBoxes } from "./overlay";
import { type Codec, framecastMetadata } from "./sei";
import { type Edge, pickEdge, playJanus } from "./janus";

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
  boxes: Box[]; // the boxes the overlay drew for the callback's frame (video pixels)
  drawnBoxes: Box[] | null; // boxes of the metadata stored under drawnRtp
  width: number;
  height: number;
  rgb: string;
};

const params = new URLSearchParams(location.search);
const useWhep = params.get("whep") === "1";
// ?via=janus: through the mount's Janus edge (from /api/streams); &edge=N picks the Nth
const useJanus = params.get("via") === "janus";
const edgeIndex = params.get("edge") === null ? null : Number(params.get("edge"));
const wanted = params.get("stream");
const sampleEvery = Number(params.get("sample") ?? 0);
const maxSamples = Number(params.get("samples") ?? 40);
// Browsers block autoplay with sound: start muted (the unmute button) unless ?muted=0.
const startMuted = params.get("muted") !== "0";
// Seconds without a presented frame before the page says so (?noframes=N).
const NO_FRAMES_S = Number(params.get("noframes") ?? 8);
const MAX_PRESENTED = 5000;
const JANUS_RETRY_MS = 3000; // a failed Janus playback tries again after this
const MAX_KEPT_METADATA = 600; // ~20 s at 30 fps: far more than any jitter buffer holds

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const video = $<HTMLVideoElement>("video");
const overlay = $<HTMLCanvasElement>("overlay");
const listEl = $<HTMLUListElement>("streams");
const statusEl = $("status");
const messageEl = $("message");
const frameLineEl = $("frameline");
const unmuteEl = $<HTMLButtonElement>("unmute");
const audioEl = $("audio");
video.muted = startMuted;

const hooks = {
  presented: [] as Presented[],
  received: 0, // encoded frames seen by the worker
  receivedWithMetadata: 0,
  lateMatches: 0,
  formats: { json: 0, msgpack: 0 }, // wire format of the SEI payloads received
  parseErrors: [] as string[],
  errors: [] as string[],
  message: null as string | null, // the failure sentence shown on the page (null: none)
  samples: [] as Sample[],
  current: null as string | null,
  state: "idle" as string,
  signalling: "connecting" as string,
  stats: { fps: 0, latencyMs: null as number | null, coverage: null as number | null },
  pc: null as RTCPeerConnection | null, // the current peer connection (tests read getStats)
  audio: { tracks: 0, muted: startMuted }, // audio tracks received for the current stream
  // Inbound audio of the current stream from getStats (tests: energy > 0 means real sound).
  audioStats: async () => {
    let out: Record<string, number> | null = null;
    (await hooks.pc?.getStats())?.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        out = { packets: s.packetsReceived ?? 0, samples: s.totalSamplesReceived ?? 0,
                energy: s.totalAudioEnergy ?? 0, level: s.audioLevel ?? 0,
                concealed: s.concealedSamples ?? 0 };
      }
    });
    return out;
  },
  setMuted: (muted: boolean) => setMuted(muted),
  // What the viewer does to a peer connection whose stream has audio (tests measure a plain
  // WHEP peer with it applied, to time flashes and beeps from the first frame).
  alignAudio: (pc: RTCPeerConnection) => alignAudio(pc),
  streams: [] as StreamInfo[],
  via: "signalling" as string,
  edge: null as string | null, // the Janus edge playing (?via=janus)
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

// ---------------------------------------------------------------- sound
let media: MediaStream | null = null; // the current stream's tracks, video and audio together

function setMuted(muted: boolean) {
  video.muted = muted;
  hooks.audio.muted = muted;
  unmuteEl.textContent = muted ? "🔇 unmute" : "🔊 mute";
}
unmuteEl.onclick = () => {
  setMuted(!video.muted);
  if (video.paused) video.play().catch(() => undefined);
};
setMuted(startMuted);

function showAudio() {
  const n = media ? media.getAudioTracks().length : 0;
  hooks.audio.tracks = n;
  unmuteEl.hidden = n === 0;
  const info = hooks.streams.find((s) => s.name === hooks.current);
  const w = ((info?.webrtc ?? {}) as Record<string, unknown>);
  audioEl.textContent = n ? `Opus${w.audio === "transcoded" ? " (from " +
    String(info?.audio ?? "?").toUpperCase() + ")" : ""}` : hooks.current ? "none" : "–";
}

// Lip sync from the first frame. Chromium's audio path starts longer than its video path
// (NetEq begins at an 80 ms jitter target, plus its render buffer): a fresh stream's audio
// came out 55-95 ms behind its picture, and Chromium's own A/V sync ignores any gap it judges
// under 30 ms, so it stopped 40-50 ms short. With the video held to the audio's start delay
// the first flash-and-beep is presented -21...+40 ms apart and, after 20 loops, -14...+10 ms
// (bench/RESULTS.md). Only for streams with audio: a silent stream keeps its low latency.
const AUDIO_VIDEO_TARGET_MS = 90;

function alignAudio(pc: RTCPeerConnection | null) {
  for (const r of pc?.getReceivers() ?? []) {
    // jitterBufferTarget: a minimum the browser's own sync still adds to (Chromium >= 114)
    if (r.track.kind === "video") {
      (r as RTCRtpReceiver & { jitterBufferTarget: number | null }).jitterBufferTarget =
        AUDIO_VIDEO_TARGET_MS;
    }
  }
}

// Every track of the session goes into one MediaStream on the <video> (audio and video may
// come as separate streams).
function addTrack(track: MediaStreamTrack) {
  if (!media) media = new MediaStream();
  if (!media.getTracks().includes(track)) media.addTrack(track);
  if (track.kind === "audio") {
    alignAudio(hooks.pc);
    showAudio();
  }
  showStream(media);
}

function setStatus(text: string) {
  statusEl.textContent = text;
}

// One plain sentence on the page about what went wrong (kept in hooks.message for tests).
function showMessage(text: string | null, ...names: string[]) {
  if (text === null) noFramesSaid = false;
  hooks.message = text;
  messageEl.replaceChildren();
  messageEl.hidden = text === null;
  if (text === null) return;
  messageEl.append(text);
  if (names.length) {
    messageEl.append(" ");
    names.forEach((n, i) => {
      const a = document.createElement("a");
      a.href = `?stream=${encodeURIComponent(n)}${useWhep ? "&whep=1" : ""}${useJanus ? "&via=janus" : ""}`;
      a.textContent = n;
      a.onclick = (ev) => {
        ev.preventDefault();
        history.replaceState(null, "", a.href);
        play(n);
      };
      messageEl.append(a, i < names.length - 1 ? ", " : ".");
    });
  }
}

function fail(msg: string, sentence?: string) {
  hooks.errors.push(msg);
  setStatus(msg);
  showMessage(sentence ?? msg);
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
      sample.drawnBoxes = metadataBoxes(msg.metadata);
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
    const drawn = drawOverlay(overlay, video, onScreen.width, onScreen.height, msg.metadata, null);
    frameLineEl.textContent = drawn.line;
    if (sample && sample.rtp === onScreen.rec.rtp) sample.boxes = drawn.boxes;
  }
  if (byRtp.size > MAX_KEPT_METADATA) {
    const oldest = byRtp.keys().next().value;
    if (oldest !== undefined) byRtp.delete(oldest);
  }
};
worker.onerror = (ev) =>
  fail(`SEI worker error: ${ev.message}`, `Reading the frames' metadata failed: ${ev.message}.`);

function attachTransform(receiver: RTCRtpReceiver) {
  if (params.get("transform") === "0") return; // diagnostics: plain playback
  attachRtpScriptTransform(receiver, worker, { options: [{}, []] });
}

// ---------------------------------------------------------------- presentation loop
let lastShown = "";
let onScreen: { rec: Presented; width: number; height: number } | null = null;
let fpsWindow: Array<[number, number]> = []; // [t, presentedFrames]
let sampleCanvas: OffscreenCanvas | null = null;
let lastFrameAt = 0; // performance.now() of the last presented frame (or of play())
let noFramesSaid = false; // the message shown is "no frames" (the next frame takes it away)

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
  lastFrameAt = now;
  if (noFramesSaid) { // frames again
    noFramesSaid = false;
    showMessage(null);
  }
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

  const drawn = drawOverlay(overlay, video, frame.width, frame.height, md, latencyMs);
  if (frameLineEl.textContent !== drawn.line) frameLineEl.textContent = drawn.line;
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
    samplePixels(rtp, seq, frame.width, frame.height, drawn.boxes);
  }
}

// Test hook: the picture of the frame being presented (drawn now, inside its rVFC callback),
// as base64 RGB, so a test can read the frame index drawn in its pixels.
function samplePixels(rtp: number, seq: number | null, width: number, height: number,
                      boxes: Box[]) {
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
  const drawnBoxes = drawnMd ? metadataBoxes(drawnMd) : null;
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
  hooks.samples.push({
    rtp, seq, drawnRtp, drawnSeq, boxes, drawnBoxes, width, height, rgb: btoa(bin),
  });
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
  if (!useWhep && !useJanus) for (const p of hooks.producers) names.add(producerName(p));
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
    const title = document.createElement("span");
    title.className = "name";
    title.textContent = name;
    b.append(title);
    for (const line of info ? describeStream(info) : []) {
      const d = document.createElement("span");
      d.className = `detail ${line.kind}`;
      d.textContent = line.text;
      b.append(d);
    }
    b.dataset.stream = name;
    if (info) b.title = JSON.stringify(info, null, 1);
    if (name === hooks.current) b.className = "active";
    b.onclick = () => play(name);
    li.append(b);
    listEl.append(li);
  }
  const playable = useJanus
    ? names.filter((n) => janusEdge(n) !== null)
    : useWhep ? names : hooks.producers.map(producerName);
  if (wanted && hooks.current === null && !autoplayed && playable.includes(wanted)) {
    autoplayed = true;
    play(wanted);
  }
  // A stream that does not exist: say so, and name the ones that do (once the server's list
  // is in; the signalling list alone may still be arriving).
  const missing = hooks.current ?? (autoplayed ? null : wanted);
  if (missing && streamsLoaded && !names.includes(missing) &&
      (hooks.current === null || hooks.state === "waiting" || hooks.state === "connecting")) {
    hooks.state = "not-found";
    setStatus(`no stream ${missing}`);
    showMessage(
      names.length
        ? `There is no stream "${missing}" on this server. Streams here:`
        : `There is no stream "${missing}" on this server, and it serves no streams.`,
      ...names,
    );
  }
  // A stream picked before its producer was announced starts as soon as it is.
  if (hooks.state === "waiting" && hooks.current && playable.includes(hooks.current)) {
    if (useJanus) play(hooks.current);
    else if (!useWhep) playSignalling(hooks.current);
  }
}

let autoplayed = false;
let streamsLoaded = false; // /api/streams answered at least once

type Detail = { kind: string; text: string };

const CODECS: Record<string, string> = { h264: "H.264", h265: "H.265" };

// What a user wants to know about a stream before playing it, from /api/streams.
function describeStream(info: StreamInfo): Detail[] {
  const out: Detail[] = [];
  const codec = typeof info.codec === "string" ? (CODECS[info.codec] ?? info.codec) : null;
  if (codec) {
    const bits = [codec];
    if (typeof info.profile === "string") bits.push(info.profile);
    if (info.b_frames === true) bits.push("B-frames");
    out.push({ kind: "codec", text: bits.join(" · ") });
  }
  const w = (info.webrtc ?? {}) as Record<string, unknown>;
  const transcoded = info.transcoded_for_webrtc ?? w.transcoded;
  if (transcoded === true) {
    const why = typeof w.transcode_reason === "string" ? `: ${w.transcode_reason}` : "";
    const to = typeof w.profile === "string" ? ` to ${w.profile}` : "";
    out.push({ kind: "transcoded", text: `WebRTC: transcoded${to}${why}` });
  } else if (transcoded === false) {
    out.push({ kind: "passthrough", text: "WebRTC: passthrough (not re-encoded)" });
  }
  if ("audio" in info) {
    const a = typeof info.audio === "string" ? info.audio.toUpperCase() : null;
    const how = w.audio === "passthrough" ? "WebRTC: passthrough"
      : w.audio === "transcoded" ? "WebRTC: Opus, transcoded"
      : `RTSP only${typeof w.audio_reason === "string" ? `: ${w.audio_reason}` : ""}`;
    out.push({ kind: "audio", text: a ? `audio ${a} (${how})` : "no audio" });
  }
  const viewers = typeof info.viewers === "number" ? info.viewers : null;
  if (viewers !== null) {
    out.push({ kind: "viewers", text: `${viewers} WebRTC viewer${viewers === 1 ? "" : "s"}` });
  }
  if (typeof info.error === "string" && info.error) {
    out.push({ kind: "error", text: `error: ${info.error}` });
  }
  const edges = Array.isArray(info.edges) ? (info.edges as Edge[]) : [];
  if (edges.length) {
    const up = edges.filter((e) => e.up).length;
    out.push({ kind: "edges", text: `Janus edges: ${up} of ${edges.length} up` });
  }
  return out;
}

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
    streamsLoaded = true;
    renderList();
  } catch {
    /* the list from signalling still works */
  }
}

api.registerConnectionListener({
  connected: (id: string) => {
    hooks.signalling = `connected as ${id}`;
    if (hooks.state === "idle") setStatus("connected");
    if (signallingLost) {
      signallingLost = false;
      if (hooks.message?.startsWith("Lost the connection")) showMessage(null);
    }
  },
  disconnected: () => {
    hooks.signalling = "disconnected";
    setStatus("signalling disconnected");
    if (useWhep || useJanus) return; // WHEP and Janus play without it
    signallingLost = true;
    fail("signalling disconnected",
      "Lost the connection to the server (the signalling socket closed); retrying…");
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
let signallingLost = false;

// No presented frame for NO_FRAMES_S while a stream should be playing: say so.
setInterval(() => {
  if (!hooks.current || hooks.message !== null) return;
  const idle = (performance.now() - lastFrameAt) / 1000;
  if (hooks.state === "waiting" && idle >= NO_FRAMES_S) {
    fail(`no producer for ${hooks.current}`,
      `The server lists "${hooks.current}" but offers no WebRTC stream for it (still waiting).`);
    return;
  }
  if (!(hooks.state === "connecting" || hooks.state === "playing")) return;
  if (idle >= NO_FRAMES_S) {
    noFramesSaid = true;
    fail(`no frames for ${idle.toFixed(0)} s`,
      `No video frames from "${hooks.current}" for ${idle.toFixed(0)} s.`);
  }
}, 1000);

// The browser could not decode or play what it got.
video.addEventListener("error", () => {
  const e = video.error;
  if (!hooks.current || !e) return;
  hooks.state = "failed"; // the element has given up on this stream
  fail(`video error ${e.code}: ${e.message}`,
    `The browser could not decode the video of "${hooks.current}" (${e.message || `error ${e.code}`}).`);
});

// ---------------------------------------------------------------- playing
type Session = { close(): void };
let session: Session | null = null;

// gstwebrtc-api's close() sends endSession only once the server has named the session
// (sessionStarted). Closed before that (switching streams faster than they start), the
// server's viewer lived on until its 15 s ICE timeout, and the late sessionStarted could bind a
// newer session to the same producer to it instead (a CI run: 2 viewers left instead of 1).
// Such a session is closed once it has its id; played again meanwhile, it is taken back.
type Consumer = Session & { sessionId?: string | null };
const CLOSE_WAIT_MS = 10000;
const closing = new Set<Consumer>();

function closeSession(s: Session) {
  const c = s as Consumer;
  if (!("sessionId" in c) || c.sessionId) {
    s.close();
    return;
  }
  closing.add(c);
  const t0 = performance.now();
  const poll = setInterval(() => {
    if (!closing.has(c)) {
      clearInterval(poll); // taken back by play()
    } else if (c.sessionId || performance.now() - t0 > CLOSE_WAIT_MS) {
      clearInterval(poll);
      closing.delete(c);
      c.close();
    }
  }, 50);
}

function stop() {
  const s = session;
  session = null; // first: its "closed" event (fired from close()) is then not a failure
  if (s) closeSession(s);
  video.srcObject = null;
  media = null;
  hooks.audio.tracks = 0;
  unmuteEl.hidden = true;
  audioEl.textContent = "–";
  hooks.pc = null;
  hooks.current = null;
  hooks.state = "idle";
  byRtp.clear();
  onScreen = null;
  frameLineEl.textContent = "";
}

function play(name: string) {
  stop();
  hooks.current = name;
  hooks.state = "connecting";
  lastFrameAt = performance.now();
  showMessage(null);
  $("current").textContent = name;
  renderList();
  if (hooks.state === "not-found") return;
  setStatus(`connecting to ${name}…`);
  if (useJanus) {
    playThroughJanus(name);
  } else if (useWhep) {
    const pc = playWhep(name);
    pc.done.catch((e) => {
      // a viewer replaced meanwhile (fast switching) is no failure, and a stream found not
      // to exist has said so already
      if (hooks.pc !== pc.pc || hooks.state === "not-found") return;
      fail(`WHEP ${name}: ${e}`, `Could not start "${name}": ${e}.`);
    });
  } else {
    playSignalling(name);
  }
}

function showStream(stream: MediaStream) {
  if (video.srcObject !== stream) video.srcObject = stream;
  const name = hooks.current;
  video.play().catch((e: unknown) => {
    // AbortError: a newer stream replaced this one before it started (fast switching): fine.
    if (e instanceof DOMException && e.name === "AbortError") return;
    if (hooks.current === name) fail(`play(): ${e}`, `The browser would not play "${name}": ${e}.`);
  });
  hooks.state = "playing";
  setStatus(`playing ${hooks.current}`);
  showAudio();
  setTimeout(refreshStreams, 1000); // the list's viewer counts now include this page
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
  const current = () => session === s;
  const usePeerConnection = () => {
    const pc = s.rtcPeerConnection as RTCPeerConnection | null;
    hooks.pc = pc;
    for (const r of pc?.getReceivers() ?? []) {
      if (r.track.kind === "video") attachTransform(r);
      addTrack(r.track);
    }
  };
  if (closing.delete(s as Consumer)) {
    // the same producer's session, still starting from an earlier play(): gstwebrtc-api hands
    // it back, with the listeners below already on it (they act again now it is current)
    if (s.rtcPeerConnection) usePeerConnection();
    return;
  }
  s.addEventListener("rtcPeerConnectionChanged", () => {
    const pc = s.rtcPeerConnection as RTCPeerConnection | null;
    // a session being closed (closeSession) may still get its offer: not for this screen
    if (current()) hooks.pc = pc;
    pc?.addEventListener("track", (ev) => {
      if (!current()) return;
      if (ev.track.kind === "video") attachTransform(ev.receiver);
      addTrack(ev.track);
    });
    if (pc) watchIce(pc, name, current);
  });
  s.addEventListener("streamsChanged", () => {
    if (current()) for (const st of s.streams) st.getTracks().forEach(addTrack);
  });
  s.addEventListener("error", (ev) => {
    if (session !== s) return;
    const m = (ev as ErrorEvent).message;
    fail(`session error: ${m}`, `The session for "${name}" failed: ${m}.`);
  });
  s.addEventListener("closed", () => {
    if (session === s) {
      hooks.state = "closed";
      setStatus(`${name}: session closed`);
      if (hooks.message === null) {
        fail(`${name}: session closed`, `The server ended the session for "${name}".`);
      }
    }
  });
  s.connect();
}

// One draw per page: the same edge on every refresh while it stays up.
const edgeDraw = Math.random();

function janusEdge(name: string): Edge | null {
  const info = hooks.streams.find((s) => s.name === name);
  return pickEdge(Array.isArray(info?.edges) ? (info.edges as Edge[]) : [], edgeIndex, edgeDraw);
}

// Through a Janus edge: the same frames (SEI intact), the same transform, the same overlay.
function playThroughJanus(name: string) {
  const edge = janusEdge(name);
  if (!edge) {
    hooks.state = "waiting"; // played as soon as /api/streams lists an edge that is up
    setStatus(`waiting for a Janus edge for ${name}…`);
    setTimeout(refreshStreams, 1000);
    return;
  }
  let mine: Session | null = null;
  const current = () => session !== null && session === mine;
  const pending = { close: () => { mine = null; } };
  session = pending;
  mine = pending;
  playJanus(edge, {
    pc: (pc) => {
      if (!current()) return;
      hooks.pc = pc;
      watchIce(pc, name, current);
    },
    track: (receiver) => {
      if (!current()) return;
      hooks.edge = edge.url;
      attachTransform(receiver);
      addTrack(receiver.track);
    },
    audio: (track) => {
      if (current()) addTrack(track);
    },
    error: (m) => {
      if (!current()) return;
      fail(`janus ${name}: ${m}`, `Could not play "${name}" through Janus: ${m}; retrying…`);
      // an edge that went away (or restarted): play again on one that is up, as listed then
      const failed = session;
      setTimeout(async () => {
        if (session !== failed || hooks.current !== name) return; // moved on meanwhile
        await refreshStreams();
        if (session === failed && hooks.current === name) play(name);
      }, JANUS_RETRY_MS);
    },
  }).then((s) => {
    if (session === pending) {
      session = s;
      mine = s;
    } else {
      s.close(); // replaced meanwhile
    }
  }).catch((e) => fail(`janus ${name}: ${e}`, `Could not play "${name}" through Janus: ${e}.`));
}

// WHEP (RFC 9725): one POST with the complete offer, 201 + answer; DELETE the resource to end.
function playWhep(name: string): { pc: RTCPeerConnection; done: Promise<void> } {
  const pc = new RTCPeerConnection({ iceServers: [] });
  hooks.pc = pc;
  return { pc, done: negotiateWhep(name, pc) };
}

async function negotiateWhep(name: string, pc: RTCPeerConnection) {
  watchIce(pc, name, () => hooks.pc === pc);
  let resource: string | null = null;
  let closed = false;
  const mine = {
    close: () => {
      closed = true;
      pc.close();
      // keepalive: the DELETE still goes out when this runs as the page goes away
      if (resource) fetch(resource, { method: "DELETE", keepalive: true }).catch(() => undefined);
    },
  };
  session = mine;
  // As the offerer we own the receiver from the start: attach the SEI transform before any
  // media can arrive (attached later, in the track event, Chromium never ran it here).
  attachTransform(pc.addTransceiver("video", { direction: "recvonly" }).receiver);
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addEventListener("track", (ev) => addTrack(ev.track));
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
  if (closed) {
    // replaced while the POST was in flight: free the viewer the server just made
    if (resource) fetch(resource, { method: "DELETE" }).catch(() => undefined);
    return;
  }
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
}

// ICE failing is the usual way a WebRTC connection dies: say it in a sentence.
function watchIce(pc: RTCPeerConnection, name: string, current: () => boolean) {
  pc.addEventListener("iceconnectionstatechange", () => {
    if (pc.iceConnectionState === "failed" && current()) {
      hooks.state = "failed";
      fail(`ICE failed for ${name}`,
        `The WebRTC connection to "${name}" failed (ICE found no working network path).`);
    }
  });
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
hooks.via = useJanus ? "janus" : useWhep ? "whep" : "signalling";
// A page closed or navigated away ends its viewer now, not when the server notices its RTCP
// stopped (~30 s for WHEP).
addEventListener("pagehide", () => stop());
