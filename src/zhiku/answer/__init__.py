"""Answers: prompts, context packing, generation, citations, refusal."""
