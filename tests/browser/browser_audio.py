"""Audio in Chromium: WHEP peers that play (and so measure) audio, and lip sync.

Lip sync as Chromium presents it: a WHEP peer plays a flash-and-beep clip
(``make_clip(..., flash_every=N)``); the page times each flash (rVFC ``expectedDisplayTime`` of
the first white frame) and each beep (an AudioWorklet finds the onset sample; its context time
goes to ``performance.now()`` through ``getOutputTimestamp``, i.e. when it is heard), and
:func:`offsets` pairs them. Used by tests/browser/test_browser_audio.py and bench/webrtc_bench.py.
"""

from __future__ import annotations

from typing import Any

from browser_helpers import WHEP_POST_JS

# WHEP offers from one page: ``n`` peer connections, each with video + audio recvonly; resolves
# once every one has decoded audio with energy (or after the timeout).
WHEP_AUDIO_JS = """
async ([mount, n]) => {""" + WHEP_POST_JS + """
  const one = async () => {
    const pc = new RTCPeerConnection({iceServers: []});
    pc.addTransceiver("video", {direction: "recvonly"});
    pc.addTransceiver("audio", {direction: "recvonly"});
    const tracks = [];
    pc.addEventListener("track", e => tracks.push(e.track));
    const {res, answer} = await whepPost(pc, mount);
    if (res.status !== 201) return {status: res.status, answer};
    await pc.setRemoteDescription({type: "answer", sdp: answer});
    // Chromium plays (and measures: totalAudioEnergy) remote audio only from an unmuted
    // media element (the browser runs with --autoplay-policy=no-user-gesture-required)
    const el = document.createElement("video");
    el.autoplay = true; el.muted = false;
    el.srcObject = new MediaStream(tracks);
    document.body.append(el);
    window.__pcs = (window.__pcs || []).concat([{pc, el, location: res.headers.get("Location")}]);
    return {status: res.status, answer, pc};
  };
  const got = await Promise.all(Array.from({length: n}, one));
  const audio = async pc => {
    let a = null;
    (await pc.getStats()).forEach(s => {
      if (s.type === "inbound-rtp" && s.kind === "audio") a = s; });
    return a ? {packets: a.packetsReceived, energy: a.totalAudioEnergy || 0} : null;
  };
  const t0 = performance.now();
  let stats = [];
  while (performance.now() - t0 < 30000) {
    stats = await Promise.all(got.map(g => g.pc ? audio(g.pc) : null));
    if (stats.every(s => s && s.energy > 0.02)) break;
    if (performance.now() - t0 > 5000 && stats.every(s => !s)) break;  // a mount without audio
    await new Promise(r => setTimeout(r, 500));
  }
  return got.map((g, i) => ({status: g.status, answer: g.answer, audio: stats[i]}));
}
"""

# Ends every peer WHEP_AUDIO_JS opened on the page (DELETE, close).
CLOSE_PEERS_JS = """
async () => {
  for (const p of window.__pcs || []) {
    p.pc.close(); p.el.remove();
    if (p.location) await fetch(p.location, {method: "DELETE"});
  }
  window.__pcs = [];
}
"""

# Onset of a beep after >= 50 ms of quiet: one message per beep, with its context time.
WORKLET = """
class Onset extends AudioWorkletProcessor {
  constructor() { super(); this.quiet = 1e9; }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      const loud = Math.abs(ch[i]) > 0.2;
      if (loud && this.quiet > 2400) this.port.postMessage(currentTime + i / sampleRate);
      this.quiet = loud ? 0 : this.quiet + 1;
    }
    return true;
  }
}
registerProcessor("onset", Onset);
"""

LIPSYNC_JS = """
async ([mount, seconds, worklet, align]) => {""" + WHEP_POST_JS + """
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  const tracks = {};
  const both = new Promise(r => pc.addEventListener("track", e => {
    tracks[e.track.kind] = e.track;
    if (tracks.audio && tracks.video) r();
  }));
  const {res, answer} = await whepPost(pc, mount);
  if (res.status !== 201) return {error: `POST ${res.status}: ${answer}`};
  const location = res.headers.get("Location");
  await pc.setRemoteDescription({type: "answer", sdp: answer});
  await both;
  // what the viewer does to a peer with audio (web/src/main.ts alignAudio), or a plain peer
  if (align) window.framecast.alignAudio(pc);
  // one element plays both tracks (Chromium syncs them there); unmuted, so audio is rendered
  const video = document.createElement("video");
  video.autoplay = true; video.muted = false;
  video.srcObject = new MediaStream([tracks.video, tracks.audio]);
  document.body.append(video);
  await video.play();
  const ctx = new AudioContext({sampleRate: 48000});
  await ctx.audioWorklet.addModule(
    URL.createObjectURL(new Blob([worklet], {type: "text/javascript"})));
  const node = new AudioWorkletNode(ctx, "onset");
  ctx.createMediaStreamSource(new MediaStream([tracks.audio])).connect(node);
  node.connect(ctx.destination);
  await ctx.resume();
  const beeps = [], flashes = [];
  node.port.onmessage = e => {
    const ts = ctx.getOutputTimestamp();
    beeps.push(ts.performanceTime + (e.data - ts.contextTime) * 1000);
  };
  const canvas = new OffscreenCanvas(8, 8);
  const c2 = canvas.getContext("2d", {willReadFrequently: true});
  let bright = false;
  const onFrame = (now, meta) => {
    c2.drawImage(video, 0, 0, 8, 8);
    const d = c2.getImageData(0, 0, 8, 8).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
    const white = sum / (d.length / 4 * 3) > 200;
    if (white && !bright) flashes.push(meta.expectedDisplayTime);
    bright = white;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  const t0 = performance.now();
  await new Promise(r => setTimeout(r, seconds * 1000));
  const stats = {baseLatency: ctx.baseLatency, outputLatency: ctx.outputLatency};
  (await pc.getStats()).forEach(s => {
    if (s.type === "inbound-rtp") stats[s.kind] = {
      jitterBufferMs: 1000 * s.jitterBufferDelay / Math.max(1, s.jitterBufferEmittedCount),
      targetMs: 1000 * (s.jitterBufferTargetDelay || 0) / Math.max(1, s.jitterBufferEmittedCount)};
  });
  pc.close();
  await ctx.close();
  if (location) await fetch(location, {method: "DELETE"});
  return {t0, flashes, beeps, stats, answer};
}
"""


def measure(page: Any, mount: str, seconds: float, align: bool = True) -> dict[str, Any]:
    """Play ``mount`` over WHEP for ``seconds`` on ``page`` (the viewer's page, at the server's
    origin): ``{"t0", "flashes", "beeps"}`` in page milliseconds. ``align``: the peer gets what
    the viewer gives a stream with audio; without it, a plain WHEP peer."""
    got = page.evaluate(LIPSYNC_JS, [mount, seconds, WORKLET, align])
    if "error" in got:
        raise AssertionError(got["error"])
    return got


def offsets(got: dict[str, Any], pair_ms: float = 250) -> list[tuple[float, float]]:
    """(seconds since the start, beep - flash in ms: > 0 audio late) for each flash with a
    beep within ``pair_ms``."""
    out = []
    beeps = got["beeps"]
    for f in got["flashes"]:
        near = min(beeps, key=lambda b: abs(b - f), default=None)
        if near is not None and abs(near - f) <= pair_ms:
            out.append(((f - got["t0"]) / 1000, near - f))
    return out
