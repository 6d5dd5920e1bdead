"""Caches that save money and are never wrong.

- answers (exact): key = normalised question + filters + mode + the fingerprint of every setting that
  shapes an answer. A hit is served without importing lancedb, pyarrow or onnxruntime.
- answers (semantic): a question whose embedding is ≥ `semantic_threshold` similar to a cached one, under
  the same scope, and that passes the guards (negation, numbers, named entities, comparison direction).
- query embeddings by (model, text) and chunk embeddings by (model, chunk hash).

A cached answer is served only while none of the documents behind it changed since it was cached
(store/journal.py). Degraded answers are never cached. A cache found damaged when opened is moved
aside with a warning and rebuilt; one that cannot be written (full disk, read-only folder) is read
without being written, never moved or emptied (ragcli/cache/disk.py): the worst a cache failure can
cost is a miss, never another answer path.
"""
