"""The webrtcsink-compatible signalling protocol: pure message types and a state machine."""
