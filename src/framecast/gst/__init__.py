"""Everything that imports GStreamer lives in this package; the pure layers never import it."""
