"""Edges: other servers (Janus) that carry framecast mounts to many more viewers."""
