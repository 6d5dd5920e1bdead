"""Reaching object storage (s3://…): one set of options for LanceDB, s3fs and the writer lease.

Where the options come from, later wins: the standard AWS environment variables (`AWS_ENDPOINT_URL`,
`AWS_REGION` / `AWS_DEFAULT_REGION`; the key pair `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` is read
by each client itself, so it never lands in a config file), then `[store] storage_options`. The keys are
LanceDB's (object_store's) names: endpoint, region, allow_http, aws_access_key_id, …; `fsspec_options`
translates them for s3fs. An http:// endpoint (a local S3-compatible server) implies allow_http.

Nothing here imports boto, s3fs or lancedb until an object store is actually used: `ragcli.cli` must
stay light for local indexes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ragcli.errors import ConfigError

if TYPE_CHECKING:
    from ragcli.config import Settings

OBJECT_SCHEMES = ("s3://",)


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def is_object_url(location: str) -> bool:
    """Whether an ingest argument names object storage rather than a local path."""
    return location.startswith(OBJECT_SCHEMES)


def storage_options(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    options: dict[str, str] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint"] = endpoint
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    options.update({key: str(value) for key, value in settings.config.store.storage_options.items()})
    if options.get("endpoint", "").startswith("http://"):
        options.setdefault("allow_http", "true")
    return options


_FSSPEC_KEYS = {
    "aws_access_key_id": "key",
    "access_key_id": "key",
    "aws_secret_access_key": "secret",
    "secret_access_key": "secret",
    "aws_session_token": "token",
    "session_token": "token",
}


def fsspec_options(options: Mapping[str, str]) -> dict[str, Any]:
    """LanceDB-style storage options as s3fs.S3FileSystem arguments."""
    out: dict[str, Any] = {}
    client: dict[str, Any] = {}
    for key, value in options.items():
        if key in ("endpoint", "aws_endpoint"):
            out["endpoint_url"] = value
        elif key in ("region", "aws_region"):
            client["region_name"] = value
        elif key in _FSSPEC_KEYS:
            out[_FSSPEC_KEYS[key]] = value
    if client:
        out["client_kwargs"] = client
    return out


def filesystem(settings: Settings) -> Any:
    """An s3fs filesystem for the configured object store (the `s3` extra)."""
    try:
        import s3fs
    except ImportError as exc:
        raise ConfigError(
            "Object storage (s3://…) needs the s3 extra, which is not installed.",
            hint="pip install 'ragcli[s3]'",
        ) from exc
    # No listing cache: a lease or a bucket listing must be read fresh every time.
    return s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True, **fsspec_options(storage_options(settings)))
