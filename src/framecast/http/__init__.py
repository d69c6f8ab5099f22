"""asyncio HTTP side: viewer files, signalling WebSocket, WHEP, /api, /metrics."""
