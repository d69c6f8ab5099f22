"""Profile and level from a sequence parameter set (pure: no GStreamer).

A relayed camera's caps do not always say its profile (rtspsrc's SDP may not, and the caps
only get it once the parser has seen an SPS); the first keyframe's SPS always does. Names are
the ones h264parse/h265parse put in caps, so they compare with the rest of framecast.

H.264 (7.3.2.1.1): after the NAL header, profile_idc (8), constraint_set0..5 flags (6 + 2
reserved bits), level_idc (8). H.265 (7.3.2.2.1, 7.3.3): after the 2-byte header, 4+3+1 bits,
then profile_tier_level: profile_space (2), tier (1), profile_idc (5), 32 compatibility flags,
48 constraint bits, level_idc (8).
"""

from __future__ import annotations

from dataclasses import dataclass

from framecast import sei

H264_SPS, H265_SPS = 7, 33


@dataclass(frozen=True)
class Profile:
    profile: str | None  # e.g. "constrained-baseline", "high", "main-10"; None: not named here
    level: str  # e.g. "3.1", "1b"
    profile_idc: int
    constraints: int  # H.264: the constraint_set flags byte; H.265: 0
    tier: str | None = None  # H.265: "main" or "high"


_H264_NAMES = {66: "baseline", 77: "main", 88: "extended", 100: "high", 110: "high-10",
               122: "high-4:2:2", 244: "high-4:4:4", 44: "cavlc-4:4:4-intra",
               118: "multiview-high", 128: "stereo-high", 83: "scalable-baseline",
               86: "scalable-high"}
_H265_NAMES = {1: "main", 2: "main-10", 3: "main-still-picture"}


def _h264_name(idc: int, flags: int) -> str | None:
    set1, set3, set4, set5 = (flags >> 6) & 1, (flags >> 4) & 1, (flags >> 3) & 1, (flags >> 2) & 1
    if idc == 66 and set1:
        return "constrained-baseline"
    if idc == 100 and set4:
        return "constrained-high" if set5 else "progressive-high"
    if idc in (110, 122, 244) and set3:
        return f"{_H264_NAMES[idc]}-intra"
    if idc == 110 and set4:
        return "progressive-high-10"
    return _H264_NAMES.get(idc)


def _h264_level(idc: int, flags: int, profile_idc: int) -> str:
    if idc == 9 or (idc == 11 and flags & 0x10 and profile_idc in (66, 77, 88)):
        return "1b"  # A.3.1: level 1b is level_idc 11 with constraint_set3 (or 9)
    return str(idc // 10) if idc % 10 == 0 else f"{idc // 10}.{idc % 10}"


def parse_sps(nal: bytes, codec: sei.Codec) -> Profile:
    """Profile and level of one SPS NAL unit (no start code); SEIError if it is none."""
    t = sei.nal_type(nal, codec)
    if codec == "h264":
        if t != H264_SPS:
            raise sei.SEIError(f"NAL unit type {t} is not an H.264 SPS")
        rbsp = sei.remove_emulation_prevention(nal[1:8])
        if len(rbsp) < 3:
            raise sei.SEIError("H.264 SPS too short for its profile and level")
        idc, flags, level = rbsp[0], rbsp[1], rbsp[2]
        return Profile(_h264_name(idc, flags), _h264_level(level, flags, idc), idc, flags)
    if t != H265_SPS:
        raise sei.SEIError(f"NAL unit type {t} is not an H.265 SPS")
    rbsp = sei.remove_emulation_prevention(nal[2:24])
    if len(rbsp) < 13:
        raise sei.SEIError("H.265 SPS too short for its profile and level")
    ptl = rbsp[1]
    idc, tier = ptl & 0x1F, "high" if ptl & 0x20 else "main"
    compat = int.from_bytes(rbsp[2:6], "big")
    if idc == 0:  # a profile said only by its compatibility flag (A.3)
        idc = next((i for i in (1, 2, 3) if compat & (1 << (31 - i))), 0)
    level = rbsp[12]
    return Profile(_H265_NAMES.get(idc), f"{level // 30}" if level % 30 == 0
                   else f"{level // 30}.{level % 30 // 3}", idc, 0, tier)


def profile_of_au(au: bytes, codec: sei.Codec) -> Profile | None:
    """Profile and level from the first SPS in an Annex B access unit; None without one."""
    want = H264_SPS if codec == "h264" else H265_SPS
    try:
        for nal in sei.split_annexb(au):
            if len(nal) > 2 and sei.nal_type(nal, codec) == want:
                return parse_sps(nal, codec)
    except sei.SEIError:
        return None
    return None
