"""Challenge-style submissions: metadata, query sets, sandboxed encoding and scoring."""
