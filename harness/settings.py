"""The harness's environment variables, read in one place into one typed object.

Every ``HARNESS_*`` variable the harness understands is a field here; code
asks :func:`current` instead of reading ``os.environ``.  The object is
rebuilt only when one of those variables changes (tests and long-lived
processes may change them), so reading it is cheap everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

_FALSE = {"", "0", "false", "no", "off"}
_DISABLED = {"off", "none", "0", "false", "no"}
VARIABLES = (
    "HARNESS_CACHE_DIR", "XDG_CACHE_HOME", "HARNESS_DATA_DIR", "HARNESS_OFFLINE", "HARNESS_REGISTRY",
    "HARNESS_DEBUG", "HARNESS_TRACE", "HARNESS_ISOLATION", "HARNESS_HOME", "HARNESS_EXECUTOR", "RAY_ADDRESS",
)  # fmt: skip
ISOLATIONS = ("auto", "bwrap", "process")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Settings:
    """What the environment says (``HARNESS_*``), typed."""

    #: Cache root: datasets, expected outputs, verdicts, responses (``HARNESS_CACHE_DIR``, else XDG, else ~/.cache).
    cache_dir: Path
    #: Offline dataset folder (``HARNESS_DATA_DIR``), unchecked: :func:`harness.data.data_dir` checks it.
    data_dir: Path | None
    #: Never download (``HARNESS_OFFLINE=1``).
    offline: bool
    #: Run registry path; None: the default under the cache; ``registry_disabled``: ``HARNESS_REGISTRY=off``.
    registry: Path | None
    registry_disabled: bool
    #: Show the sandbox workers' own errors and tracebacks (``HARNESS_DEBUG=1``).
    debug: bool
    #: Log every sandbox kill with its limits and clocks (``HARNESS_TRACE=1``).
    trace: bool
    #: Default sandbox isolation (``HARNESS_ISOLATION``: auto, bwrap, process); ``--isolation`` overrides it.
    isolation: str
    #: Where sandbox workers run by default (``HARNESS_EXECUTOR``: local, ray); ``--executor`` overrides it.
    executor: str = "local"
    #: The Ray cluster ``--executor ray`` joins (``RAY_ADDRESS``, Ray's own variable); ``--ray-address`` overrides it.
    ray_address: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read the variables (``env`` defaults to ``os.environ``); a bad value is a :class:`ConfigError`."""
        e = os.environ if env is None else env
        cache = e.get("HARNESS_CACHE_DIR")
        if cache:
            cache_dir = Path(cache).expanduser()
        else:
            base = e.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
            cache_dir = Path(base) / "harness"
        reg = e.get("HARNESS_REGISTRY", "").strip()
        isolation = e.get("HARNESS_ISOLATION", "auto").strip().lower() or "auto"
        if isolation not in ISOLATIONS:
            raise ConfigError(f"HARNESS_ISOLATION={isolation!r}; use one of {', '.join(ISOLATIONS)}")
        executor = e.get("HARNESS_EXECUTOR", "local").strip().lower() or "local"
        if executor not in EXECUTORS:
            raise ConfigError(f"HARNESS_EXECUTOR={executor!r}; use one of {', '.join(EXECUTORS)}")
        data = e.get("HARNESS_DATA_DIR")
        return cls(
            cache_dir=cache_dir,
            data_dir=Path(data).expanduser() if data else None,
            offline=e.get("HARNESS_OFFLINE", "").strip() == "1",
            registry=Path(reg).expanduser() if reg and reg.lower() not in _DISABLED else None,
            registry_disabled=reg.lower() in _DISABLED and reg != "",
            debug=e.get("HARNESS_DEBUG", "").strip().lower() not in _FALSE,
            trace=e.get("HARNESS_TRACE", "").strip().lower() not in _FALSE,
            isolation=isolation,
            executor=executor,
            ray_address=e.get("RAY_ADDRESS", "").strip() or None,
        )


_cached: tuple[tuple[str | None, ...], Settings] | None = None


def current() -> Settings:
    """The settings for the environment as it is now (re-read only when a variable changed)."""
    global _cached
    key = tuple(os.environ.get(v) for v in VARIABLES)
    if _cached is None or _cached[0] != key:
        _cached = (key, Settings.from_env())
    return _cached[1]
