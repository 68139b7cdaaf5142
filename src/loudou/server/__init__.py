"""The HTTP server: Segment-compatible tracking, keys, and the query API (FastAPI, imported lazily
by ``loudou serve``; the modules here without FastAPI imports are usable on their own)."""
