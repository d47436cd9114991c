"""Model adapters behind one-method interfaces (embedders now; generators and rerankers later)."""
