// Reading framecast metadata out of an encoded access unit (Annex B, as WebRTC hands it over).
// H.264 (SEI = NAL type 6) and H.265 (prefix SEI = type 39); user data unregistered = payload 5.
import { decode as decodeMsgpack } from "@msgpack/msgpack";

export const FRAMECAST_UUID = "54bc3258c96344b9bf5d215c5823bc0e";
export type Codec = "h264" | "h265";
export type Metadata = Record<string, unknown>;

const UUID_BYTES = Uint8Array.from(FRAMECAST_UUID.match(/../g)!.map((h) => parseInt(h, 16)));

/** NAL unit payloads (without start codes) of an Annex B buffer. */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < data.length) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) nals.push(trimZeros(data.subarray(start, i)));
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < data.length) nals.push(data.subarray(start));
  return nals.filter((n) => n.length > 0);
}

// A 4-byte start code leaves a trailing zero on the previous NAL.
function trimZeros(nal: Uint8Array): Uint8Array {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

/** Drop emulation-prevention bytes (00 00 03 → 00 00). */
export function unescapeRbsp(nal: Uint8Array): Uint8Array {
  const out = new Uint8Array(nal.length);
  let n = 0;
  let zeros = 0;
  for (const b of nal) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[n++] = b;
  }
  return out.subarray(0, n);
}

function isSei(nal: Uint8Array, codec: Codec): boolean {
  if (codec === "h264") return (nal[0] & 0x1f) === 6;
  return ((nal[0] >> 1) & 0x3f) === 39;
}

/** Guess the codec from the NAL headers of one access unit. */
export function guessCodec(nals: Uint8Array[]): Codec {
  for (const nal of nals) {
    if (nal.length < 2) continue;
    const t265 = (nal[0] >> 1) & 0x3f;
    // H.265 headers have forbidden bit 0, layer id 0 and temporal id + 1 = 1 in byte two.
    if ((nal[0] & 0x81) === 0 && nal[1] === 1 && [32, 33, 34, 39, 19, 20, 1].includes(t265)) {
      if ((nal[0] & 0x1f) === 6 || (nal[0] & 0x1f) === 7) continue; // plausible H.264 too
      return "h265";
    }
  }
  return "h264";
}

/** All user-data-unregistered payloads (uuid hex, bytes) of one access unit. */
export function userData(au: Uint8Array, codec?: Codec): Array<[string, Uint8Array]> {
  const nals = splitAnnexB(au);
  const c = codec ?? guessCodec(nals);
  const header = c === "h264" ? 1 : 2;
  const found: Array<[string, Uint8Array]> = [];
  for (const nal of nals) {
    if (nal.length <= header || !isSei(nal, c)) continue;
    const rbsp = unescapeRbsp(nal.subarray(header));
    let p = 0;
    // sei_message()s until rbsp_trailing_bits (0x80).
    while (p < rbsp.length && !(rbsp[p] === 0x80 && p === rbsp.length - 1)) {
      let type = 0;
      while (rbsp[p] === 0xff) { type += 255; p++; }
      type += rbsp[p++];
      let size = 0;
      while (rbsp[p] === 0xff) { size += 255; p++; }
      size += rbsp[p++];
      if (p + size > rbsp.length || Number.isNaN(size)) break; // truncated: ignore the rest
      if (type === 5 && size >= 16) {
        const payload = rbsp.subarray(p, p + size);
        const uuid = Array.from(payload.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
        found.push([uuid, payload.subarray(16)]);
      }
      p += size;
    }
  }
  return found;
}

function sameUuid(hex: string): boolean {
  return hex === FRAMECAST_UUID;
}

/** msgpack map by default; a payload starting with `{` is UTF-8 JSON. */
export function decodePayload(bytes: Uint8Array): Metadata {
  const value = bytes[0] === 0x7b ? JSON.parse(new TextDecoder().decode(bytes)) : decodeMsgpack(bytes);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error("metadata is not a map");
  }
  return normalise(value) as Metadata;
}

// msgpack may give bigint for 64-bit ints (wallclock_ns); postMessage clones bigint fine, but
// JSON.stringify does not: keep numbers (ns precision loss is irrelevant at ms resolution).
function normalise(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Uint8Array) return Array.from(v);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = normalise(x);
    return out;
  }
  return v;
}

/** The framecast metadata of one access unit, or null if it carries none. */
export function framecastMetadata(au: Uint8Array, codec?: Codec): Metadata | null {
  return framecastPayload(au, codec)?.metadata ?? null;
}

/** Same, with the payload's wire format (msgpack or JSON). */
export function framecastPayload(
  au: Uint8Array, codec?: Codec,
): { metadata: Metadata; format: "json" | "msgpack" } | null {
  for (const [uuid, data] of userData(au, codec)) {
    if (sameUuid(uuid)) {
      return { metadata: decodePayload(data), format: data[0] === 0x7b ? "json" : "msgpack" };
    }
  }
  return null;
}

export { UUID_BYTES };
