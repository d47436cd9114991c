"""Lexical + vector retrieval, fused with reciprocal rank fusion."""
