// Playing a mount through a Janus edge: janus.js (npm janus-gateway, what Janus users use)
// attaches to the streaming plugin, watches the mountpoint framecast created for the mount
// (listed in /api/streams as the mount's "edges"), and answers Janus's offer recvonly.
import Janus, { type JanusJS } from "janus-gateway";
import adapter from "webrtc-adapter";

export type Edge = {
  kind: string;
  url: string;
  feed?: string;
  mountpoint: number | null;
  up: boolean;
};

export type JanusCallbacks = {
  // the video track arrived: attach the SEI transform to its receiver now (before frames)
  track: (receiver: RTCRtpReceiver, stream: MediaStream) => void;
  // the mount's audio (Opus, from a mountpoint with an audio stream)
  audio: (track: MediaStreamTrack) => void;
  pc: (pc: RTCPeerConnection) => void;
  error: (message: string) => void;
};

const params = new URLSearchParams(location.search);
let ready: Promise<void> | null = null;

function init(): Promise<void> {
  ready ??= new Promise((resolve) =>
    Janus.init({
      debug: params.get("janusdebug") === "1" ? "all" : false,
      dependencies: Janus.useDefaultDependencies({ adapter }),
      callback: () => resolve(),
    }),
  );
  return ready;
}

/** The edge to use for a mount: one of those up, at random (so viewers spread evenly over
 * the edges without a balancer), or the Nth with ``&edge=N`` (links pinned to an edge). */
export function pickEdge(edges: Edge[], index: number | null, random = Math.random()): Edge | null {
  const usable = edges.filter((e) => e.kind === "janus" && e.up && e.mountpoint !== null);
  if (!usable.length) return null;
  const i = index === null || !Number.isFinite(index) ? Math.floor(random * usable.length) : index;
  return usable[((i % usable.length) + usable.length) % usable.length];
}

type Handle = JanusJS.PluginHandle;

export async function playJanus(edge: Edge, cb: JanusCallbacks): Promise<{ close(): void }> {
  await init();
  let closed = false;
  let streaming: Handle | null = null;
  const attached = new WeakSet<RTCRtpReceiver>();
  const janus: Janus = new Janus({
    server: edge.url,
    iceServers: [],
    destroyOnUnload: true,
    success: () => {
      if (closed) return;
      janus.attach({
        plugin: "janus.plugin.streaming",
        opaqueId: `framecast-viewer-${Math.random().toString(36).slice(2, 8)}`,
        success: (handle: Handle) => {
          streaming = handle;
          handle.send({ message: { request: "watch", id: edge.mountpoint } });
        },
        error: (e: string) => cb.error(`attach: ${e}`),
        onmessage: (msg: JanusJS.Message, jsep?: JanusJS.JSEP) => {
          if (closed || !streaming) return;
          const h = streaming;
          if (msg.error) {
            cb.error(String(msg.error));
            return;
          }
          if (!jsep) return;
          h.createAnswer({
            jsep,
            // nothing captured: the offered video and audio are accepted recvonly (data only if
            // offered)
            tracks: [{ type: "data" } as JanusJS.TrackOption],
            success: (answer: JanusJS.JSEP) => h.send({ message: { request: "start" }, jsep: answer }),
            error: (e: string) => cb.error(`answer: ${e}`),
          });
          cb.pc(h.webrtcStuff.pc);
        },
        // called from the peer connection's track event: as early as a receiver can be had
        onremotetrack: (track: MediaStreamTrack, _mid: string, on: boolean) => {
          if (!on || !streaming) return;
          if (track.kind === "audio") {
            cb.audio(track);
            return;
          }
          if (track.kind !== "video") return;
          const receiver = streaming.webrtcStuff.pc.getReceivers().find((r) => r.track === track);
          if (!receiver || attached.has(receiver)) return;
          attached.add(receiver);
          cb.track(receiver, new MediaStream([track]));
        },
        iceState: (state: string) => {
          if (state === "failed") cb.error("ICE failed");
        },
      });
    },
    error: (e: unknown) => {
      if (!closed) cb.error(`Janus ${edge.url}: ${e}`);
    },
  });
  return {
    close: () => {
      closed = true;
      streaming?.send({ message: { request: "stop" } });
      janus.destroy({ unload: false, notifyDestroyed: false });
    },
  };
}
