"""SDP helpers for the WebRTC producer: H.264/Opus payload choice, profile-level-id,
candidates."""

from __future__ import annotations

from framecast.producer import WebRTCError

_PROFILE_IDC = {"constrained-baseline": "42e0", "baseline": "4200", "main": "4d00",
                "high": "6400"}


def profile_level_id(profile: str | None, level: str | None) -> str:
    idc = _PROFILE_IDC.get(profile or "", "42e0")
    try:
        lvl = int(round(float(level) * 10)) if level else 31
    except ValueError:
        lvl = 31
    return f"{idc}{lvl:02x}"


def choose_h264_payload(offer_sdp: str, profile_level_id: str) -> tuple[int, str]:
    """Pick the offer's H.264 payload (packetization-mode=1) that fits our stream.

    Our stream is what it is (no per-viewer encode): the offer must accept its profile
    (same profile_idc and constraint flags; browsers offer 42e01f, 4d001f, ...). An offer
    without profile-level-id accepts ours. Returns (payload type, profile-level-id to answer).
    """
    best: tuple[int, int, str] | None = None
    ours = profile_level_id.lower()
    for line in offer_sdp.splitlines():
        if not line.startswith("a=rtpmap:") or "H264/90000" not in line.upper():
            continue
        try:
            pt = int(line[9:].split()[0])
        except (ValueError, IndexError):
            continue
        fmtp = _fmtp(offer_sdp, pt)
        if fmtp.get("packetization-mode", "0") != "1":
            continue
        plid = fmtp.get("profile-level-id", "").lower()
        if not plid or plid[:4] == ours[:4]:
            score = 3
        elif plid[:2] == ours[:2]:
            score = 2
        else:
            continue
        if best is None or score > best[0]:
            best = (score, pt, plid or ours)
    if best is None:
        raise WebRTCError(f"offer has no H.264 (packetization-mode=1) matching the stream's "
                          f"profile-level-id {ours}")
    return best[1], best[2]


OPUS_PT = 111  # what Chromium uses; any dynamic type works when we make the offer


def choose_opus_payload(offer_sdp: str) -> int | None:
    """The offer's Opus payload type in an audio section that accepts media from us
    (sendrecv/recvonly), or None: that viewer gets video only."""
    section: list[str] = []
    sections: list[list[str]] = []
    for line in offer_sdp.splitlines():
        if line.startswith("m="):
            section = [line]
            sections.append(section)
        elif section:
            section.append(line)
    for sec in sections:
        if not sec[0].startswith("m=audio") or sec[0].split()[1:2] == ["0"]:
            continue  # port 0: a rejected/stopped section
        if any(x in ("a=inactive", "a=sendonly") for x in sec):
            continue
        for line in sec:
            if line.startswith("a=rtpmap:") and "OPUS/48000" in line.upper():
                try:
                    return int(line[9:].split()[0])
                except (ValueError, IndexError):
                    continue
    return None


def _fmtp(sdp: str, pt: int) -> dict[str, str]:
    prefix = f"a=fmtp:{pt} "
    for line in sdp.splitlines():
        if line.startswith(prefix):
            items = (kv.split("=", 1) for kv in line[len(prefix):].split(";") if "=" in kv)
            return {k.strip().lower(): v.strip() for k, v in items}
    return {}


def with_candidates(sdp: str, candidates: list[tuple[int, str]]) -> str:
    """Make sure every gathered candidate is in the SDP (non-trickle WHEP answers)."""
    if "a=candidate:" in sdp or not candidates:
        return sdp
    lines = sdp.rstrip("\r\n").split("\r\n")
    out: list[str] = []
    mline = -1
    for line in lines:
        if line.startswith("m="):
            if mline >= 0:
                out += [f"a={c}" for m, c in candidates if m == mline]
            mline += 1
        out.append(line)
    out += [f"a={c}" for m, c in candidates if m == mline]
    return "\r\n".join(out) + "\r\n"

