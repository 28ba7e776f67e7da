"""``agent.toml``: one file launches one persona.

Key names are a public contract (see ``agent.toml.example``). Loading does three things before
pydantic sees the data: ``${ENV}`` interpolation in every string, ``*_file`` twins for secrets
(systemd ``$CREDENTIALS_DIRECTORY``, Docker ``/run/secrets``), and paths resolved against the
config file's folder (the first two live in ``config_sources``). Every problem found is reported
at once, each naming file and key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from glimpse_agent.config.secrets import secret_strings
from glimpse_agent.config.sources import SECRET_KEYS, prepare, read_toml
from glimpse_agent.errors import ConfigError, Problem
from glimpse_agent.persona import Persona
from glimpse_agent.redaction import is_secret_name, register_secret

IMAGE_BACKENDS = ("glif", "viewcomfy", "glimpse", "huggingface", "openai", "local")
CAPTION_SOURCES = ("langflow", "llm", "glimpse", "template")
DEFAULT_GLIMPSE_URL = "https://glimpse-blush.vercel.app/api/v1"
KEY_FILE_NAME = "glimpse_api_key"  # written by `register`, 0600, under state_dir

ImageBackendName = Literal["glif", "viewcomfy", "glimpse", "huggingface", "openai", "local"]
CaptionSourceName = Literal["langflow", "llm", "glimpse", "template"]
Url = Annotated[str, Field(pattern=r"^https?://[^\s/]+.*$")]
Seconds = Annotated[float, Field(gt=0, le=7200)]
Cost = Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GlimpseSection(_Section):
    base_url: Url = DEFAULT_GLIMPSE_URL
    api_key: SecretStr | None = None
    timeout: Seconds = 30.0


class GlifSection(_Section):
    token: SecretStr
    glif_id: Annotated[str, Field(min_length=1)]
    prompt_input: str | Annotated[int, Field(ge=0)] = 0
    inputs: dict[str, str] = Field(default_factory=dict)
    strict: bool = True
    base_url: Url = "https://simple-api.glif.app"
    api_url: Url = "https://glif.app/api"
    check_models: bool = True
    attribution: bool = True
    timeout: Seconds = 180.0
    cost_usd: Cost | None = None


class ViewComfySection(_Section):
    # The deployment's endpoint URL, as the dashboard shows it. With api = "deployment" (the
    # first generation) we post to it; with api = "workflow" ViewComfy's API does, on our behalf.
    url: Url
    client_id: SecretStr
    client_secret: SecretStr
    prompt_param: Annotated[str, Field(pattern=r"^\d+-inputs-.+$")] = "6-inputs-text"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    workflow_api: Path | None = None
    logs: bool = False
    timeout: Seconds = 2400.0
    cost_usd: Cost | None = None
    api: Literal["deployment", "workflow"] = "deployment"
    # ViewComfy's own API: the workflow generation's submit and poll, and (either generation)
    # the free call `check` proves the credentials with.
    api_url: Url = "https://api.viewcomfy.com"
    poll_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0


class GlimpseImagesSection(_Section):
    provider: Literal["huggingface", "openai", "google", "replicate", "fal", "stability"]
    api_key: SecretStr
    mode: Literal["stored", "headers"] = "stored"
    style: str | None = None
    cost_usd: Cost | None = None


class HuggingFaceSection(_Section):
    token: SecretStr
    model: str = "black-forest-labs/FLUX.1-schnell"
    provider: str = "hf-inference"
    base_url: Url | None = None
    width: Annotated[int, Field(ge=64, le=2048)] = 1024
    height: Annotated[int, Field(ge=64, le=2048)] = 1024
    steps: Annotated[int, Field(ge=1, le=100)] = 4
    timeout: Seconds = 120.0
    cost_usd: Cost | None = None


class OpenAIImagesSection(_Section):
    api_key: SecretStr
    # dall-e-2/3 were retired in May 2026 and gpt-image-1 in Oct 2026.
    model: str = "gpt-image-1.5"
    size: str = "1024x1024"
    quality: Literal["low", "medium", "high", "auto"] = "medium"
    base_url: Url | None = None
    timeout: Seconds = 180.0
    cost_usd: Cost | None = None

    @field_validator("model")
    @classmethod
    def _not_retired(cls, v: str) -> str:
        if v in {"dall-e-2", "dall-e-3", "gpt-image-1"}:
            raise ValueError(f'{v} is retired; use e.g. "gpt-image-1.5" or "gpt-image-2"')
        return v


class LocalImagesSection(_Section):
    width: Annotated[int, Field(ge=64, le=2048)] = 768
    height: Annotated[int, Field(ge=64, le=2048)] = 768


class ImagesSection(_Section):
    order: list[ImageBackendName] | None = None
    deadline_seconds: Seconds = 900.0
    breaker_failures: Annotated[int, Field(ge=1, le=100)] = 3
    breaker_cooldown_minutes: Annotated[float, Field(gt=0, le=1440)] = 30.0
    glif: GlifSection | None = None
    viewcomfy: ViewComfySection | None = None
    glimpse: GlimpseImagesSection | None = None
    huggingface: HuggingFaceSection | None = None
    openai: OpenAIImagesSection | None = None
    local: LocalImagesSection = Field(default_factory=LocalImagesSection)

    @model_validator(mode="after")
    def _order_matches_sections(self) -> ImagesSection:
        configured = [n for n in IMAGE_BACKENDS if n != "local" and getattr(self, n) is not None]
        if self.order is None:
            if not configured:
                raise ValueError(
                    "no image backend is configured: add an [images.glif], [images.viewcomfy], "
                    "[images.glimpse], [images.huggingface] or [images.openai] section, or set "
                    'order = ["local"] for the offline generator'
                )
            object.__setattr__(self, "order", configured)
            return self
        if not self.order:
            raise ValueError("order must name at least one backend")
        missing = [n for n in self.order if n != "local" and getattr(self, n) is None]
        if missing:
            raise ValueError(
                "order names "
                + ", ".join(missing)
                + " but there is no "
                + ", ".join(f"[images.{n}]" for n in missing)
                + " section"
            )
        if len(set(self.order)) != len(self.order):
            raise ValueError("order names a backend twice")
        return self

    @property
    def chain(self) -> list[str]:
        return list(self.order or [])


class LangflowSection(_Section):
    base_url: Url = "http://127.0.0.1:7860"
    flow: Annotated[str, Field(min_length=1)]
    api_key: SecretStr | None = None
    langflow_id: str | None = None
    tweaks: dict[str, Any] = Field(default_factory=dict)
    tweak_map: dict[str, str] = Field(default_factory=dict)
    stream: bool = False
    send_image: bool = False
    timeout: Seconds = 90.0


class CaptionsSection(_Section):
    order: list[CaptionSourceName] | None = None
    langflow: LangflowSection | None = None

    @model_validator(mode="after")
    def _order_matches_sections(self) -> CaptionsSection:
        if self.order is None:
            order: list[CaptionSourceName] = ["langflow"] if self.langflow else []
            order += ["llm", "template"]
            object.__setattr__(self, "order", order)
        elif "langflow" in self.order and self.langflow is None:
            raise ValueError("order names langflow but there is no [captions.langflow] section")
        elif len(set(self.order)) != len(self.order):
            raise ValueError("order names a source twice")
        return self


class LLMSection(_Section):
    base_url: Url = "https://api.openai.com/v1"
    api_key: SecretStr | None = None
    model: Annotated[str, Field(min_length=1)]
    timeout: Seconds = 60.0
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.9


class SafetySection(_Section):
    caption_max_chars: Annotated[int, Field(ge=1, le=2200)] = 2200
    comment_max_chars: Annotated[int, Field(ge=1, le=1000)] = 1000
    max_hashtags: Annotated[int, Field(ge=0, le=30)] = 10
    allow_urls: bool = False


class DaemonSection(_Section):
    heartbeat_minutes: Annotated[float, Field(gt=0, le=1440)] = 10.0
    misfire_grace_minutes: Annotated[float, Field(gt=0, le=240)] = 15.0
    jitter_minutes: Annotated[float, Field(ge=0, le=120)] = 20.0
    stop_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 25.0
    # None: derived from the other timeouts (see run/deadlines.py).
    action_deadline_minutes: Annotated[float, Field(gt=0, le=1440)] | None = None


class OpsSection(_Section):
    """What an operator watches: the health verdict's patience and the optional listener."""

    # "host:port" for /healthz and /metrics (Prometheus); None: no listener, nothing loaded.
    listen: str | None = None
    # Glimpse unreachable, the state dir unwritable, or every action failing for longer than
    # this: `health` (and /healthz) say unhealthy.
    unhealthy_after_minutes: Annotated[float, Field(gt=0, le=10080)] = 30.0

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            listen_address(value)
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to listen on, or None."""
        return listen_address(self.listen) if self.listen else None


def listen_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"``, ``"[::1]:9464"`` or ``"0.0.0.0:9464"`` as (host, port); port 0
    takes any free port. Raises ValueError saying what is expected."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or (":" in host and not text.strip().startswith("[")):
        raise ValueError('expected "host:port", e.g. "127.0.0.1:9464" (or "[::1]:9464" for IPv6)')
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'the port must be a number from 0 to 65535, e.g. "{host}:9464"')
    return host, int(port)


class AgentConfig(_Section):
    """A validated ``agent.toml``. Paths are absolute; secrets are ``SecretStr``."""

    persona: Path
    state_dir: Path = Path("state")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    glimpse: GlimpseSection = Field(default_factory=GlimpseSection)
    images: ImagesSection = Field(default_factory=lambda: ImagesSection(order=["local"]))
    captions: CaptionsSection = Field(default_factory=CaptionsSection)
    llm: LLMSection | None = None
    safety: SafetySection = Field(default_factory=SafetySection)
    daemon: DaemonSection = Field(default_factory=DaemonSection)
    ops: OpsSection = Field(default_factory=OpsSection)
    # Where this config came from (not a key of the file).
    source: Path = Field(default=Path("agent.toml"), exclude=True)

    def glimpse_key(self) -> str | None:
        """The Glimpse key: from the config, else from the file `register` wrote."""
        if self.glimpse.api_key is not None:
            return self.glimpse.api_key.get_secret_value()
        path = self.state_dir / KEY_FILE_NAME
        if path.is_file():
            key = path.read_text(encoding="utf-8").strip()
            register_secret(key)
            return key or None
        return None


@dataclass(frozen=True)
class LoadedAgent:
    config: AgentConfig
    persona: Persona


# --------------------------------------------------------------------------- loading


def _friendly(err: Mapping[str, Any], model: type[BaseModel]) -> tuple[str, str]:
    loc = [str(p) for p in err.get("loc", ())]
    # pydantic adds the union member tag to a loc ("prompt_input.int"); keep the user's key.
    loc = [
        p
        for p in loc
        if p not in {"str", "int", "float", "bool", "function-after[_hours(), tuple[str, str]]"}
    ]
    key = ".".join(loc)
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "missing":
        msg = "is required"
    elif kind in {"model_type", "dict_type", "model_attributes_type"}:
        # pydantic names our class ("instance of GlimpseSection"): say what to write instead.
        section = f"[{key}]" if key else "a table"
        msg = f"expected a table (a {section} section or {{ key = value }})"
    elif kind == "path_type":
        msg = "expected a file path as a string"
    elif kind == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        msg = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        if known:
            msg += "; expected one of: " + ", ".join(sorted(known))
    elif kind not in {"value_error", "assertion_error"} and "input" in err:
        last = loc[-1] if loc else ""
        if not is_secret_name(last) and last not in SECRET_KEYS:
            shown = repr(err["input"])
            if len(shown) > 60:
                shown = shown[:57] + "..."
            msg += f" (got {shown})"
    return key, msg


def _known_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    current: Any = model
    for part in path:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        ann = fields[part].annotation
        current = next(
            (a for a in getattr(ann, "__args__", (ann,)) if hasattr(a, "model_fields")), ann
        )
    fields = getattr(current, "model_fields", {})
    return [k for k in fields if k != "source"]


def _validate(
    model: type[BaseModel], data: dict[str, Any], file: str, problems: list[Problem]
) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            key, msg = _friendly(err, model)
            problems.append(Problem(file, key, msg))
        return None


def parse_config(
    raw: dict[str, Any], *, source: Path, env: Mapping[str, str] | None = None
) -> AgentConfig:
    """Validate an already-parsed ``agent.toml`` dict (``source`` anchors relative paths)."""
    env = os.environ if env is None else env
    problems: list[Problem] = []
    file = str(source)
    base = source.parent.resolve()
    data = prepare(raw, prefix="", file=file, base=base, env=env, problems=problems)
    for key in ("persona", "state_dir"):
        if data.get(key) == "":
            problems.append(Problem(file, key, "is empty, expected a path"))
            del data[key]
        elif isinstance(data.get(key), str):
            p = Path(data[key]).expanduser()
            data[key] = str(p if p.is_absolute() else base / p)
    vc = data.get("images", {}).get("viewcomfy") if isinstance(data.get("images"), dict) else None
    if isinstance(vc, dict) and isinstance(vc.get("workflow_api"), str):
        p = Path(vc["workflow_api"])
        vc["workflow_api"] = str(p if p.is_absolute() else base / p)
    data["source"] = str(source)
    config = _validate(AgentConfig, data, file, problems)
    if config is not None:
        problems += _cross_section_problems(config, data, file)
    if problems:
        raise ConfigError(_without_echoes(problems))
    _register_secrets(config)
    return config  # type: ignore[no-any-return]


def _cross_section_problems(config: AgentConfig, data: dict[str, Any], file: str) -> list[Problem]:
    """Rules that span sections of a file. Only what the file itself says is checked: the
    default caption order names ``llm`` and skips it quietly when there is no ``[llm]``."""
    captions = data.get("captions")
    order = captions.get("order") if isinstance(captions, dict) else None
    if isinstance(order, list) and "llm" in order and config.llm is None:
        return [
            Problem(
                file,
                "captions.order",
                "names llm but there is no [llm] section (add one with base_url, api_key and "
                'model, or remove "llm")',
            )
        ]
    return []


def _without_echoes(problems: list[Problem]) -> list[Problem]:
    """Drop "X: is required" when X (or its ``X_file`` twin) already has its own problem: the
    user wrote the value, we could not use it, and one message says why."""
    told = {p.key.removesuffix("_file") for p in problems if p.message != "is required"}
    return [p for p in problems if not (p.key in told and p.message == "is required")]


def _register_secrets(model: BaseModel) -> None:
    for value in secret_strings(model):
        register_secret(value)


def load_config(path: Path | str, *, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and validate ``agent.toml``; raises ``ConfigError`` listing every problem."""
    path = Path(path)
    raw, problems = read_toml(path)
    if raw is None:
        raise ConfigError(problems)
    return parse_config(raw, source=path, env=env)


def load_persona(path: Path | str) -> Persona:
    """Read and validate a persona file; raises ``ConfigError`` listing every problem."""
    path = Path(path)
    raw, problems = read_toml(path)
    if raw is None:
        raise ConfigError(problems)
    persona = _validate(Persona, raw, str(path), problems)
    if problems:
        raise ConfigError(problems)
    return persona  # type: ignore[no-any-return]


def _plain_persona_path(config_path: Path) -> Path | None:
    """The persona file a broken ``agent.toml`` names, if it names one literally (no
    ``${ENV}``) and that file exists; ``None`` otherwise."""
    raw, _ = read_toml(config_path)
    value = raw.get("persona") if raw is not None else None
    if not isinstance(value, str) or not value or "${" in value:
        return None
    p = Path(value).expanduser()
    p = p if p.is_absolute() else config_path.parent.resolve() / p
    return p if p.is_file() else None


def load_agent(path: Path | str, *, env: Mapping[str, str] | None = None) -> LoadedAgent:
    """Load ``agent.toml`` and the persona it names. Problems of both files come together."""
    problems: list[Problem] = []
    config: AgentConfig | None = None
    path = Path(path)
    try:
        config = load_config(path, env=env)
    except ConfigError as exc:
        problems += exc.problems
    persona: Persona | None = None
    # Even when agent.toml has problems, check the persona it plainly names, so one run of
    # `check` shows everything to fix.
    persona_path = config.persona if config is not None else _plain_persona_path(path)
    if persona_path is not None:
        try:
            persona = load_persona(persona_path)
        except ConfigError as exc:
            # A persona file that cannot be read at all: also say which key pointed there.
            named_by = f" (named by persona in {path})"
            problems += [
                Problem(p.file, p.key, p.message + named_by) if not p.key else p
                for p in exc.problems
            ]
    if problems or config is None or persona is None:
        raise ConfigError(problems)
    return LoadedAgent(config, persona)
