// Dedicated worker: sees every encoded video frame the receiver gets (RTCRtpScriptTransform via
// nal-extractor's plumbing), pulls the framecast SEI out and posts {rtpTimestamp, metadata}.
// Dedicated because nal-extractor's listeners throw on any other message in the same worker.
import { startRtpScriptTransformService } from "nal-extractor";
import { type Codec, framecastPayload } from "./sei";

export type WorkerReport = {
  type: "frame";
  rtpTimestamp: number;
  metadata: Record<string, unknown> | null;
  error?: string;
  format?: "json" | "msgpack";
  bytes: number;
  key: boolean;
};

type Options = { codec?: Codec };

interface EncodedFrame {
  data: ArrayBuffer;
  type?: string;
  timestamp?: number;
  getMetadata(): { rtpTimestamp?: number; mimeType?: string };
}

function codecOf(frame: EncodedFrame, fallback?: Codec): Codec | undefined {
  const mime = frame.getMetadata().mimeType?.toLowerCase() ?? "";
  if (mime.includes("h265") || mime.includes("hevc")) return "h265";
  if (mime.includes("h264")) return "h264";
  return fallback;
}

startRtpScriptTransformService<Options>((transformer, options) => {
  const transform = new TransformStream<EncodedFrame, EncodedFrame>({
    transform(frame, controller) {
      // Parse before forwarding: an enqueued frame's data may be handed over (detached).
      const md = frame.getMetadata();
      const rtpTimestamp = md.rtpTimestamp ?? frame.timestamp ?? -1;
      const report: WorkerReport = {
        type: "frame", rtpTimestamp, metadata: null, bytes: frame.data.byteLength,
        key: frame.type === "key",
      };
      try {
        const found = framecastPayload(new Uint8Array(frame.data), codecOf(frame, options?.codec));
        if (found) {
          report.metadata = found.metadata;
          report.format = found.format;
        }
      } catch (e) {
        report.error = String(e);
      }
      controller.enqueue(frame);
      self.postMessage(report);
    },
  });
  transformer.readable
    .pipeThrough(transform as unknown as TransformStream)
    .pipeTo(transformer.writable)
    .catch((e) => self.postMessage({ type: "closed", error: String(e) }));
});
