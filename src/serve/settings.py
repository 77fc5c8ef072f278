"""Service settings: ``src/serve/config.yaml`` (or ``$SERVE_CONFIG``), overridden by env vars.

Precedence (highest first): keyword arguments to :class:`Settings`, environment variables
(the upper-case field name, e.g. ``FASTAPI_PORT``), the YAML file, the field default.

To add a setting: add one annotated field with a ``Field(description=...)`` below (and,
optionally, a commented default in ``config.yaml`` and a row in docs/serving.md). Nothing else
needs to change: env vars, YAML keys and error messages follow from the field name.

API keys and artifact signing keys are secrets: they come only from the environment or a key
file, are held as ``SecretStr`` (signing keys parsed to bytes for the keyring) and are never
logged or echoed in error messages.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from src.artifact_contract.errors import ContractError
from src.artifact_contract.keys import (
    SigningKey,
    is_printable_token,
    parse_signing_key,
    read_key_file,
    read_signing_keys,
)
from src.artifact_contract.layout import MODEL_NAME_PATTERN
from src.artifact_contract.local_key import LOCAL_KEY_PATH, read_local_key
from src.serve.errors import SettingsError
from src.serve.model_specs import ModelSpec, parse_model_names
from src.serve.signing import Keyring

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "config.yaml"
CONFIG_ENV_VAR = "SERVE_CONFIG"
SECRET_FIELDS = frozenset({"api_keys", "admin_api_keys", "artifact_signing_keys"})
A = TypeVar("A")
T = TypeVar("T")
LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]

ORIGIN_RE = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:]+\](:[0-9]{1,5})?$"
)

NO_KEYS_MESSAGE = (
    "no API keys configured. Set API_KEYS (comma-separated keys) or API_KEYS_FILE (a file "
    "with one key per line, e.g. a container secret), or set AUTH_DISABLED=true for local "
    "development only. Generate a key with: "
    'python -c "import secrets; print(secrets.token_urlsafe(32))"'
)


def _split_keys(value: Any) -> Any:
    """Accept ``"k1,k2"`` (env var) as well as a list; drop blanks."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _check_key(key: SecretStr) -> SecretStr:
    if not is_printable_token(key.get_secret_value()):
        raise ValueError("API keys must be non-empty and contain no whitespace or control chars")
    return key


def _from_contract(setting: str, read: Callable[[A], T], value: A) -> T:
    """``read(value)`` with a contract reader; its error becomes a ``ValueError`` naming the
    setting (the contract's messages never contain a secret)."""
    try:
        return read(value)
    except ContractError as exc:
        raise ValueError(f"{setting}: {exc}") from None


class Settings(BaseSettings):
    """Everything the service reads at start-up (see docs/serving.md for the user view)."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        env_ignore_empty=True,
        extra="forbid",
        validate_default=True,
    )

    fastapi_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Interface to bind. 127.0.0.1 (local only) by default; 0.0.0.0 in a container.",
    )
    fastapi_port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    artifacts_dir: Path = Field(
        Path("artifacts"),
        description="Directory holding published models (<dir>/<model_name>/<version>/). "
        "Relative paths are resolved against the working directory.",
    )
    model_name: str = Field(
        "iris_classifier",
        pattern=MODEL_NAME_PATTERN,
        description="Which published model to serve (a folder under ARTIFACTS_DIR).",
    )
    model_version: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Pin one published version instead of following LATEST (unset: follow LATEST).",
    )
    model_names: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Several models to serve, comma-separated; each `<name>` (follows LATEST) "
        "or `<name>@<alias>` (follows the alias). The first is the default behind /predict and "
        "/model; `*` adds every other model under ARTIFACTS_DIR as it is published (with `*` "
        "first or alone, MODEL_NAME is the default). Unset: MODEL_NAME alone.",
    )
    reload_generation_file: Path | None = Field(
        None,
        description="A file every worker's poller checks (about every 0.5 s): POST "
        "/admin/reload bumps it so all workers reload at once. Set automatically to a private "
        "temporary file when WORKERS > 1; set it yourself only to share it wider.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys accepted for predictions and /model. "
        "Environment only (never in a committed file).",
    )
    api_keys_file: Path | None = Field(
        None,
        description="File with one API key per line (blank lines and # comments ignored), "
        "e.g. a container secret. Its keys are added to API_KEYS.",
    )
    admin_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated keys for /admin/* (they also work wherever API keys do). "
        "Environment only. Without any, /admin/* always answers 403.",
    )
    auth_disabled: bool = Field(
        False,
        description="Serve without authentication. Local development only; logged loudly.",
    )
    model_poll_seconds: float = Field(
        5.0,
        ge=0,
        description="How often to look for a newly published version (0 disables polling).",
    )
    log_json: bool = Field(False, description="One JSON object per log line instead of text.")
    log_level: LogLevel = Field("INFO", description="Minimum log level.")
    access_log_buffer_bytes: int = Field(
        32 * 1024,
        ge=0,
        le=16 * 1024 * 1024,
        description="The access log (one line per request) is written when this many bytes "
        "are pending (0: every line at once); see docs/serving.md#logging.",
    )
    access_log_flush_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="The access log's pending lines are written at least this often: what a "
        "hard kill (SIGKILL) can lose; a graceful stop loses nothing.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes. Above 1, metrics use prometheus_client multiprocess mode.",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="Largest accepted request body in bytes (larger: 413, without reading it).",
    )
    max_batch_rows: int = Field(
        1000, ge=1, description="Most records accepted by /predict/batch (more: 413)."
    )
    metrics_auth: bool = Field(False, description="Require an API key for GET /metrics.")
    shutdown_grace_seconds: int = Field(
        10,
        ge=0,
        description="On SIGTERM, how long in-flight requests may take before connections close.",
    )
    inference_backend: Literal["auto", "onnx", "sklearn"] = Field(
        "auto",
        description="Which runtime serves the model: auto (model.onnx when published and its "
        "sha256 verifies, else scikit-learn), onnx (refuse models without a usable model.onnx) "
        "or sklearn (always the pickled pipeline). See docs/performance.md.",
    )
    allow_pickle: bool = Field(
        True,
        description="Allow deserialising model.joblib (pickle). false: only models with a "
        "usable model.onnx are served, and model.joblib is never unpickled.",
    )
    inference_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Most predictions of one model running at once in each worker process "
        "(worker threads). 1 is fastest under the GIL; see docs/performance.md before raising it.",
    )
    gc_freeze: bool = Field(
        True,
        description="After each model load, collect garbage once and freeze the surviving "
        "heap out of the garbage collector's reach (fewer full collections: docs/performance.md).",
    )
    batch_max_size: int = Field(
        1,
        ge=1,
        le=4096,
        description="Micro-batching: most concurrent single-row /predict requests predicted "
        "in one backend call (1: off).",
    )
    batch_max_wait_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="Micro-batching: the longest a request waits for others to join its batch.",
    )
    monitoring_enabled: bool = Field(
        True,
        description="Live drift and data-quality monitoring of recent inputs (GET /monitoring, "
        "model_feature_drift_* metrics; docs/monitoring.md). false: no per-request work.",
    )
    monitoring_window: int = Field(
        1000, ge=1, le=1_000_000, description="Recent rows each worker keeps for drift checks."
    )
    monitoring_psi_warn: float = Field(
        0.1, gt=0, description="PSI from which a feature's drift status is warn."
    )
    monitoring_psi_drift: float = Field(
        0.25, gt=0, description="PSI from which a feature's drift status is drift."
    )
    monitoring_min_samples: int = Field(
        200,
        ge=1,
        description="Values a feature needs in the window before a verdict "
        "(else insufficient_data).",
    )
    monitoring_cache_seconds: float = Field(
        2.0, ge=0, description="How long a computed drift snapshot is reused."
    )
    monitoring_refresh_seconds: float = Field(
        15.0,
        ge=0,
        description="With WORKERS > 1: how often each worker republishes its monitoring "
        "metrics (0: only when it answers a scrape).",
    )

    prediction_log_enabled: bool = Field(
        False,
        description="Log every answered prediction and accept POST /feedback (docs/feedback.md).",
    )
    prediction_log_dir: Path = Field(
        Path("prediction_log"),
        description="Where the prediction log's segment files and feedback index live "
        "(shared by all workers).",
    )
    prediction_log_sample_rate: float = Field(
        1.0, gt=0, le=1, description="Share of prediction requests logged (1: every one)."
    )
    prediction_log_features: bool = Field(
        True,
        description="Keep the feature values in the log (false: they are left out, e.g. for "
        "personal data; the log then cannot become training data).",
    )
    prediction_log_segment_bytes: int = Field(
        16 * 1024 * 1024,
        ge=4096,
        description="A segment file is rotated before it would grow beyond this many bytes.",
    )
    prediction_log_segment_seconds: float = Field(
        3600, gt=0, description="A non-empty segment file is rotated after this many seconds."
    )
    prediction_log_max_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=8192,
        description="Disk bound of all segment files together; the oldest rotated segments "
        "are deleted to stay under it.",
    )
    prediction_log_queue_size: int = Field(
        10_000,
        ge=1,
        description="Records waiting for the background writer; beyond it new records are "
        "dropped (and counted), never blocking a request.",
    )
    feedback_pending_seconds: float = Field(
        86_400,
        ge=0,
        description="How long feedback for an id not (yet) in the log waits for its prediction.",
    )
    live_quality_window: int = Field(
        1000,
        ge=1,
        description="Latest labelled predictions per model version the live "
        "metrics are computed over.",
    )
    live_quality_min_labelled: int = Field(
        100, ge=1, description="Labelled predictions a version needs before a quality verdict."
    )
    live_quality_margin: float = Field(
        0.05,
        ge=0,
        description="Degraded when live accuracy/F1 is this much below the training figure "
        "(absolute), or live MAE/RMSE this fraction above it (relative).",
    )

    artifact_signing_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys that verify artifact signatures, `<key_id>:<secret>` comma-separated "
        "(several during a key rotation). Environment only.",
    )
    artifact_signing_keys_file: Path | None = Field(
        None,
        description="File with one `<key_id>:<secret>` per line (blank lines and # comments "
        "ignored), e.g. a container secret. Its keys are added to ARTIFACT_SIGNING_KEYS.",
    )
    artifact_signing_local_fallback: bool = Field(
        True,
        description="With no ARTIFACT_SIGNING_KEYS(_FILE): trust the local key training "
        "creates, `secrets/artifact_signing_key.txt` under the working directory, if it exists "
        "(logged once at start). Set false in production (compose and the Kubernetes manifests "
        "do).",
    )
    allow_unsigned: bool = Field(
        False,
        description="Load unsigned artifacts (and ones signed with an unknown key id) without "
        "verification. Local work only; logged loudly. Tampered signatures are always refused.",
    )
    rate_limit_per_minute: float = Field(
        0,
        ge=0,
        description="Requests per minute each API key may send (a token bucket per key; over "
        "it: 429 with Retry-After). 0 turns rate limiting off.",
    )
    rate_limit_burst: int | None = Field(
        None,
        ge=1,
        description="Bucket size: requests a quiet key may send at once (default: the "
        "per-minute rate).",
    )
    request_timeout_seconds: float = Field(
        30,
        ge=0,
        description="A request whose response has not started after this long is answered 504 "
        "(body upload included; /admin/* exempt). 0 turns it off.",
    )

    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins (`https://app.example.com`, comma-separated; `*` for any) "
        "allowed to call the API from another origin (Starlette's CORSMiddleware). Empty: no "
        "CORS headers, browsers keep the same-origin rule.",
    )

    _file_keys: list[SecretStr] = PrivateAttr(default_factory=list)
    _signing_keys: list[SigningKey] = PrivateAttr(default_factory=list)
    _local_key_path: Path | None = PrivateAttr(default=None)

    @field_validator("model_names", mode="before")
    @classmethod
    def _parse_model_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("model_names")
    @classmethod
    def _validate_model_names(cls, value: list[str]) -> list[str]:
        parse_model_names(value)  # ValueError names the bad entry
        return value

    def model_specs(self) -> list[ModelSpec]:
        """The configured models in order; the first is the default one. ``MODEL_VERSION``
        pins the default model when it follows LATEST."""
        specs, _ = parse_model_names(self.model_names)
        if not specs or self.model_names[0].strip() == "*":
            specs = [ModelSpec(self.model_name), *(s for s in specs if s.name != self.model_name)]
        first = specs[0]
        if self.model_version is not None and first.alias is None:
            specs[0] = ModelSpec(first.name, None, self.model_version)
        return specs

    @property
    def serve_all_models(self) -> bool:
        """True when ``MODEL_NAMES`` holds ``*``."""
        return parse_model_names(self.model_names)[1]

    @field_validator("api_keys", "admin_api_keys", "artifact_signing_keys", mode="before")
    @classmethod
    def _parse_key_list(cls, value: Any) -> Any:
        return _split_keys(value)

    @field_validator("api_keys", "admin_api_keys")
    @classmethod
    def _validate_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        return [_check_key(key) for key in value]

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        return _split_keys(value)

    @field_validator("cors_allow_origins")
    @classmethod
    def _validate_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not ORIGIN_RE.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port] without a path, or *"
                )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _require_keys(self) -> Settings:
        if self.api_keys_file is not None:
            lines = _from_contract("API_KEYS_FILE", read_key_file, self.api_keys_file)
            self._file_keys = [_check_key(SecretStr(line)) for _, line in lines]
        if not self.auth_disabled and not (self.api_keys or self._file_keys):
            raise ValueError(NO_KEYS_MESSAGE)
        return self

    @model_validator(mode="after")
    def _check_backend(self) -> Settings:
        if self.inference_backend == "sklearn" and not self.allow_pickle:
            raise ValueError(
                "INFERENCE_BACKEND=sklearn needs ALLOW_PICKLE=true (the scikit-learn pipeline "
                "is a pickle); use INFERENCE_BACKEND=onnx or auto with ALLOW_PICKLE=false"
            )
        if self.allow_pickle and importlib.util.find_spec("sklearn") is None:
            raise ValueError(
                "ALLOW_PICKLE=true needs scikit-learn, which is not installed here (the slim "
                "image serves ONNX models only); set ALLOW_PICKLE=false"
            )
        return self

    @model_validator(mode="after")
    def _check_monitoring_thresholds(self) -> Settings:
        if self.monitoring_psi_warn >= self.monitoring_psi_drift:
            raise ValueError(
                f"MONITORING_PSI_WARN ({self.monitoring_psi_warn}) must be below "
                f"MONITORING_PSI_DRIFT ({self.monitoring_psi_drift})"
            )
        return self

    @model_validator(mode="after")
    def _check_prediction_log_bound(self) -> Settings:
        needed = 2 * self.workers * self.prediction_log_segment_bytes
        if self.prediction_log_enabled and self.prediction_log_max_bytes < needed:
            raise ValueError(
                f"PREDICTION_LOG_MAX_BYTES ({self.prediction_log_max_bytes}) must be at least "
                f"2 x WORKERS x PREDICTION_LOG_SEGMENT_BYTES ({needed}): each worker's open "
                "segment is reserved in the bound"
            )
        return self

    def all_api_keys(self) -> list[SecretStr]:
        """API keys from ``API_KEYS`` and ``API_KEYS_FILE`` together."""
        return [*self.api_keys, *self._file_keys]

    @model_validator(mode="after")
    def _load_signing_keys(self) -> Settings:
        keys = [
            _from_contract("ARTIFACT_SIGNING_KEYS", parse_signing_key, key.get_secret_value())
            for key in self.artifact_signing_keys
        ]
        if self.artifact_signing_keys_file is not None:
            path = self.artifact_signing_keys_file
            keys += _from_contract("ARTIFACT_SIGNING_KEYS_FILE", read_signing_keys, path)
        if not keys and self.artifact_signing_local_fallback:
            local = _from_contract(
                "ARTIFACT_SIGNING_LOCAL_FALLBACK", read_local_key, LOCAL_KEY_PATH
            )
            if local is not None:
                keys = [local]
                self._local_key_path = LOCAL_KEY_PATH
        try:
            Keyring(keys, allow_unsigned=self.allow_unsigned)  # same id twice, two secrets
        except ValueError as exc:
            raise ValueError(f"ARTIFACT_SIGNING_KEYS: {exc}") from None
        self._signing_keys = keys
        return self

    def signing_keys(self) -> list[SigningKey]:
        """(key id, secret) pairs from ``ARTIFACT_SIGNING_KEYS`` and its file, in order."""
        return list(self._signing_keys)

    def local_signing_key_path(self) -> Path | None:
        """The local key file the signing keys came from (no key configured), else None."""
        return self._local_key_path

    def keyring(self) -> Keyring:
        """The signature-verification policy: the signing keys and ``ALLOW_UNSIGNED``."""
        return Keyring(self._signing_keys, allow_unsigned=self.allow_unsigned)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments > environment > YAML file > defaults (no .env file)."""
        return init_settings, env_settings, YamlSource(settings_cls)


class YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML config file; keys are setting names in any case."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        explicit = os.environ.get(CONFIG_ENV_VAR)
        self.path = Path(explicit) if explicit else DEFAULT_CONFIG_PATH
        self.required = bool(explicit)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: values come from ``__call__``."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.is_file():
            if self.required:
                raise SettingsError(f"{CONFIG_ENV_VAR}: config file {self.path} does not exist")
            return {}
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"cannot read config file {self.path}: {exc}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise SettingsError(f"config file {self.path} must hold a mapping of settings")
        values = {str(key).lower(): value for key, value in data.items()}
        secrets_in_file = sorted(SECRET_FIELDS & values.keys())
        if secrets_in_file:
            names = ", ".join(name.upper() for name in secrets_in_file)
            raise SettingsError(
                f"{names} must not be set in {self.path} (a committed file); "
                "use the environment or API_KEYS_FILE"
            )
        return values


def _format_error(err: dict[str, Any]) -> str:
    loc = [str(part) for part in err.get("loc", ())]
    name = loc[0].upper() if loc else ""
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        return f"{name}: unknown setting (check the spelling in the config file)"
    if not name:
        return message
    shown = ""
    if loc[0] not in SECRET_FIELDS and "input" in err and not isinstance(err["input"], dict):
        shown = f" (got {str(err['input'])[:80]!r})"
    return f"{name}: {message}{shown}"


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning every validation problem into one :class:`SettingsError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_format_error(dict(err)) for err in exc.errors()]
        raise SettingsError("; ".join(lines)) from None
