"""The CLI's own configuration: API URL, API key, default output format and the CA to trust.

Stored as JSON in `$B2C_CONFIG` or `~/.config/b2c/config.json` (mode 0600, it holds a key).
`B2C_API_URL`, `B2C_API_KEY`, `B2C_FORMAT` and `B2C_CA_FILE` (`--ca-file`) override the file for one
invocation.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from b2c.errors import CliError

if TYPE_CHECKING:
    import ssl

DEFAULT_API_URL = "http://127.0.0.1:8080"
KEYS = ("api-url", "api-key", "format", "ca-file")
FORMATS = ("table", "json")


def config_path() -> Path:
    explicit = os.environ.get("B2C_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "b2c" / "config.json"


@dataclass
class CliConfig:
    api_url: str = DEFAULT_API_URL
    api_key: str = ""
    format: str = "table"
    ca_file: str = ""  # PEM bundle of the CA that signed the gateway's certificate ("": the system's CAs)

    @classmethod
    def load(cls) -> CliConfig:
        path = config_path()
        data: dict[str, str] = {}
        if path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as error:
                raise CliError(f"cannot read {path}: {error}") from None
            if isinstance(raw, dict):
                data = {k: str(v) for k, v in raw.items() if k in ("api_url", "api_key", "format", "ca_file")}
        config = cls(**data)
        config.api_url = os.environ.get("B2C_API_URL", config.api_url)
        config.api_key = os.environ.get("B2C_API_KEY", config.api_key)
        config.format = os.environ.get("B2C_FORMAT", config.format)
        config.ca_file = os.environ.get("B2C_CA_FILE", config.ca_file)
        return config

    def save(self) -> Path:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle, indent=2)
        tmp.replace(path)
        return path

    def set(self, key: str, value: str) -> None:
        if key == "api-url":
            if not value.startswith(("http://", "https://")):
                raise CliError(f"api-url must start with http:// or https:// (got {value!r})")
            self.api_url = value.rstrip("/")
        elif key == "api-key":
            self.api_key = value
        elif key == "ca-file":
            if value and not Path(value).expanduser().is_file():
                raise CliError(f"ca-file {value!r} is not a readable file (a PEM bundle of CA certificates)")
            self.ca_file = str(Path(value).expanduser().resolve()) if value else ""
        elif key == "format":
            if value not in FORMATS:
                raise CliError(f"format must be one of {', '.join(FORMATS)} (got {value!r})")
            self.format = value
        else:
            raise CliError(f"unknown setting {key!r}; known: {', '.join(KEYS)}")

    def ssl_context(self) -> ssl.SSLContext:
        """Certificate verification for https/wss: against `ca_file` when set, else the system's CAs."""
        import ssl  # noqa: PLC0415 - only https needs it (startup budget, docs/adr/0007)

        try:
            return ssl.create_default_context(cafile=self.ca_file or None)
        except (OSError, ssl.SSLError) as error:
            raise CliError(f"cannot use ca-file {self.ca_file}: {error}") from None

    def masked_key(self) -> str:
        if not self.api_key:
            return "(not set)"
        return self.api_key[:17] + "…" if len(self.api_key) > 17 else "****"
