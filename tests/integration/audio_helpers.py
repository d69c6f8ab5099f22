"""Helpers for the audio tests: the tone's frequency, by FFT."""

from __future__ import annotations

import numpy as np

from framecast.reader import AudioChunk


def peak_hz(pcm: np.ndarray, rate: int) -> float:
    """The strongest frequency of mono ``pcm`` (Hann window; resolution rate/len)."""
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum) * rate / len(pcm))


def chunks_peak_hz(chunks: list[AudioChunk]) -> float:
    assert chunks, "no audio chunk"
    pcm = np.concatenate([c.samples for c in chunks])
    return peak_hz(pcm[:, 0], chunks[0].rate)
