"""Retrieval: filters, vector and keyword search, fusion, and context compression.

The orchestration (with reranking, degradation and timings) lives in ragcli/query/engine.py.
"""
