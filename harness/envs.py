"""Managed execution environments: virtual environments with a benchmark's pinned libraries.

Some benchmarks grade programs that import heavy third-party libraries
(DS-1000: numpy, pandas, torch, tensorflow, ...), and their verdicts depend on
the library versions.  ``harness env create NAME`` builds a virtual
environment with the versions the benchmark pins, or the nearest ones that
exist for the chosen Python, and records what it got in ``versions.json``;
the benchmark then runs its sandbox workers with that environment's
interpreter.

An environment is complete only once ``versions.json`` exists: it is written
last, so an interrupted build is never mistaken for a usable one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.data import cache_dir
from harness.errors import HarnessError

VERSIONS_FILE = "versions.json"


@dataclass(frozen=True)
class Requirement:
    """One library of an environment: its distribution, pinned version and import name."""

    dist: str
    version: str | None  # None: unpinned upstream (take the newest)
    module: str
    aliases: tuple[str, ...] = ()
    #: A CPU-only build is wanted: a build with accelerator runtimes is a last resort.
    cpu_build: bool = False


@dataclass(frozen=True)
class EnvSpec:
    """A named environment: what it pins and where the pins come from."""

    name: str
    source: str
    requirements: tuple[Requirement, ...]
    #: Modules a sandbox worker may import once before forking programs (no threads at import).
    preload: tuple[str, ...] = ()
    #: Heavy modules preloaded too when, at build time, importing them under ``env`` started no thread.
    preload_if_threadless: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    #: Data programs fetch from the internet at run time, fetched at build time instead (the sandbox has
    #: no network): ``(label, folder, env var, python code)``; the code runs in the new environment with
    #: ``DATA`` = ``<env>/data/<folder>``, and programs get ``env var`` pointing there.
    fetches: tuple[tuple[str, str, str, str], ...] = ()

    def requirement(self, name: str) -> Requirement:
        """The requirement a user-facing name (distribution, module or alias) means."""
        key = _norm(name)
        for req in self.requirements:
            if key in {_norm(req.dist), _norm(req.module), *(_norm(a) for a in req.aliases)}:
                return req
        known = ", ".join(r.dist for r in self.requirements)
        raise HarnessError(f"{self.name} has no library {name!r}; known: {known}")


def specs() -> dict[str, EnvSpec]:
    """Environment specs by name, as the installed benchmarks declare them (``Benchmark.environment_spec``)."""
    from harness import benchmark as registry

    out: dict[str, EnvSpec] = {}
    for name in registry.names():
        declared = registry.benchmark_class(name).environment_spec
        if isinstance(declared, EnvSpec):
            out.setdefault(declared.name, declared)
    return out


def spec(name: str) -> EnvSpec:
    """The environment spec called ``name``."""
    known = specs()
    try:
        return known[name]
    except KeyError:
        raise HarnessError(f"unknown environment {name!r}; known: {', '.join(sorted(known)) or 'none'}") from None


def __getattr__(attr: str) -> EnvSpec:
    # ``envs.NAME`` (upper case) reads the spec a benchmark declares, for callers of the older layout.
    if attr.isupper() and attr.lower() in specs():
        return specs()[attr.lower()]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")





def default_path(name: str) -> Path:
    """Where ``harness env create NAME`` builds by default: ``<harness cache>/envs/NAME``."""
    return cache_dir() / "envs" / name


def interpreter(path: Path) -> Path:
    """The Python of the environment at ``path``."""
    return path / "bin" / "python"


@dataclass
class EnvInfo:
    """A built environment, as its ``versions.json`` describes it."""

    name: str
    path: Path
    python: str
    python_version: str
    requested: dict[str, str | None]  # dist -> pinned version (None: unpinned)
    installed: dict[str, str]  # dist -> version actually installed (any known dist present)
    modules: dict[str, bool]  # import name -> importable
    created: str = ""
    seconds: float = 0.0
    pip_log: list[str] = field(default_factory=list)
    substitutions: dict[str, str] = field(default_factory=dict)  # dist -> why another version/build was taken
    #: Heavy modules whose import started no thread here (safe to import before fork).
    fork_safe: list[str] = field(default_factory=list)
    #: Run-time data that could not be fetched at build time: label -> why.
    unfetched: dict[str, str] = field(default_factory=dict)

    def data_env(self, env_spec: EnvSpec) -> dict[str, str]:
        """Environment variables that point programs at the fetched data."""
        return {var: str(self.path / "data" / folder) for _, folder, var, _ in env_spec.fetches}

    def has_module(self, module: str) -> bool:
        """Whether programs can import ``module`` here."""
        return bool(self.modules.get(module))

    def deviations(self, env_spec: EnvSpec) -> list[str]:
        """How this environment differs from the pins: other versions, other builds, absent libraries."""
        out: list[str] = []
        for req in env_spec.requirements:
            got = self.installed.get(req.dist) or self.installed.get(_norm(req.dist))
            if got is None:
                out.append(f"{req.dist} {req.version or ''} absent".replace("  ", " "))
            elif req.version is not None and _base_version(got) != req.version:
                why = self.substitutions.get(req.dist)
                out.append(f"{req.dist} {got} instead of {req.version}" + (f" ({why})" if why else ""))
            elif req.version is not None and got != req.version and req.dist in self.substitutions:
                out.append(f"{req.dist} {got}: {self.substitutions[req.dist]}")
        pinned_py = "3.10"
        if not self.python_version.startswith(pinned_py + "."):
            out.insert(0, f"Python {self.python_version} instead of {pinned_py}")
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``versions.json`` document."""
        return {
            "name": self.name, "python": self.python, "python_version": self.python_version,
            "requested": self.requested, "installed": self.installed, "modules": self.modules,
            "created": self.created, "seconds": round(self.seconds, 1), "substitutions": self.substitutions,
            "fork_safe": self.fork_safe, "unfetched": self.unfetched, "pip_log": self.pip_log,
        }  # fmt: skip


def load(name: str, path: str | os.PathLike[str] | None = None) -> EnvInfo | None:
    """The environment built at ``path`` (default location if None), or None when absent or unfinished."""
    root = Path(path) if path is not None else default_path(name)
    doc_path = root / VERSIONS_FILE
    if not doc_path.is_file():
        return None
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{doc_path} is unreadable ({exc}); rebuild with `harness env create {name}`") from None
    py = interpreter(root)
    if not py.exists():
        return None
    return EnvInfo(
        name=doc.get("name", name), path=root, python=str(py), python_version=doc.get("python_version", ""),
        requested=doc.get("requested", {}), installed=doc.get("installed", {}), modules=doc.get("modules", {}),
        created=doc.get("created", ""), seconds=float(doc.get("seconds", 0.0)), pip_log=doc.get("pip_log", []),
        substitutions=doc.get("substitutions", {}), fork_safe=doc.get("fork_safe", []),
        unfetched=doc.get("unfetched", {}),
    )  # fmt: skip


def require(name: str, path: str | os.PathLike[str] | None = None) -> EnvInfo:
    """The built environment, or a one-line error saying how to build it."""
    info = load(name, path)
    if info is None:
        where = Path(path) if path is not None else default_path(name)
        flag = f" --path {where}" if path is not None else ""
        raise HarnessError(
            f"the {name} execution environment is missing ({where} has no {VERSIONS_FILE}); "
            f"build it with `harness env create {name}{flag}`"
        )
    return info


def create(
    name: str,
    path: str | os.PathLike[str] | None = None,
    libraries: Sequence[str] | None = None,
    python: str | None = None,
    echo: Callable[[str], None] = print,
    reuse: bool = True,
) -> EnvInfo:
    """Build (or complete) the environment ``name``; returns what it got.

    ``libraries`` picks a subset of the spec's libraries (what their own
    dependencies pull in comes too); ``python`` the interpreter to base it on
    (default: the one running the harness).  With ``reuse``, an existing
    virtual environment at ``path`` is installed into rather than rebuilt.
    """
    env_spec = spec(name)
    root = Path(path) if path is not None else default_path(name)
    reqs = [env_spec.requirement(x) for x in libraries] if libraries else list(env_spec.requirements)
    reqs = list(dict.fromkeys(reqs))
    t0 = time.perf_counter()
    base_python = python or sys.executable
    if shutil.which(base_python) is None and not Path(base_python).exists():
        raise HarnessError(f"--python {base_python} is not an interpreter on this machine")
    (root / VERSIONS_FILE).unlink(missing_ok=True)  # unfinished until rewritten
    py = interpreter(root)
    if not (reuse and py.exists()):
        if root.exists():
            shutil.rmtree(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        echo(f"creating virtual environment {root} ({base_python})")
        _run([base_python, "-m", "venv", str(root)], "create the virtual environment")
    pyver = _python_version(py)
    log: list[str] = []
    substitutions: dict[str, str] = {}
    specs: dict[str, str] = {}
    for req in reqs:
        if req.cpu_build:
            chosen, why = _pick_cpu_build(py, req, echo)
            specs[req.dist] = chosen
            if why:
                substitutions[req.dist] = why
        else:
            specs[req.dist] = f"{req.dist}=={req.version}" if req.version else req.dist
    binary = ",".join(r.dist for r in reqs if r.version)
    args = [str(py), "-m", "pip", "install", "--prefer-binary", "--only-binary", binary, *specs.values()]
    echo("installing: " + " ".join(specs.values()))
    ok, out = _pip(args)
    log.append(f"$ pip install {' '.join(specs.values())}: {'ok' if ok else 'failed'}")
    if not ok:
        # Some pin does not exist for this Python: settle each library on the
        # nearest version that does, then install the lot together.
        echo("the pinned set does not install here; looking for the nearest available versions")
        for req in reqs:
            if req.cpu_build or not req.version:
                continue
            found = _nearest(py, req)
            if found is None:
                raise HarnessError(f"no installable {req.dist} for Python {pyver}: {_tail(out)}")
            if found != req.version:
                specs[req.dist] = f"{req.dist}=={found}"
                substitutions[req.dist] = f"{req.version} has no build for Python {pyver}"
        args = [str(py), "-m", "pip", "install", "--prefer-binary", *specs.values()]
        ok, out = _pip(args)
        log.append(f"$ pip install {' '.join(specs.values())}: {'ok' if ok else 'failed'}")
        if not ok:
            raise HarnessError(f"pip could not install the {name} environment: {_tail(out)}")
    _warm(py, [r.module for r in reqs], echo)
    installed, modules = _probe(py, env_spec)
    fork_safe = [m for m in env_spec.preload_if_threadless if modules.get(m) and _threadless(py, m, env_spec.env)]
    unfetched = _fetch_data(py, root, env_spec, [r.module for r in reqs], echo)
    info = EnvInfo(
        name=name, path=root, python=str(py), python_version=pyver,
        requested={r.dist: r.version for r in reqs}, installed=installed, modules=modules,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), seconds=time.perf_counter() - t0,
        pip_log=log, substitutions=substitutions, fork_safe=fork_safe, unfetched=unfetched,
    )  # fmt: skip
    tmp = root / (VERSIONS_FILE + ".tmp")
    tmp.write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, root / VERSIONS_FILE)
    return info


def describe(info: EnvInfo, env_spec: EnvSpec) -> str:
    """A human-readable summary: interpreter, each library pinned vs installed, deviations."""
    lines = [f"{info.name}: {info.path}", f"  python {info.python_version} ({info.python})"]
    if info.created:
        lines.append(f"  last built {info.created} (that run took {info.seconds:.0f} s)")
    width = max(len(r.dist) for r in env_spec.requirements) + 2
    for req in env_spec.requirements:
        got = info.installed.get(req.dist, "absent")
        pin = req.version or "(unpinned)"
        mark = "" if got == "absent" or req.version is None or _base_version(got) == req.version else "  *"
        lines.append(f"  {req.dist.ljust(width)}pinned {pin:<10} installed {got}{mark}")
    for dev in info.deviations(env_spec):
        lines.append(f"  deviation: {dev}")
    return "\n".join(lines)


# ----------------------------------------------------------------- helpers


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _base_version(version: str) -> str:
    """``2.2.0+cpu`` -> ``2.2.0``: the local label names a build, not a release."""
    return version.split("+", 1)[0]


def _run(cmd: list[str], what: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise HarnessError(f"could not {what}: {exc}") from None
    if proc.returncode != 0:
        raise HarnessError(f"could not {what}: {_tail(proc.stderr or proc.stdout)}")
    return proc.stdout


def _pip(args: list[str]) -> tuple[bool, str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    return proc.returncode == 0, (proc.stdout or "") + (proc.stderr or "")


def _tail(text: str) -> str:
    """The last meaningful line of a tool's output (for one-line errors)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("WARNING: Location")]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors[-1] if errors else lines[-1] if lines else "no output")[:400]


def _python_version(py: Path) -> str:
    return _run([str(py), "-c", "import platform; print(platform.python_version())"], "run the interpreter").strip()


def _would_install(py: Path, spec_text: str) -> str | None:
    """The version pip would pick for ``spec_text`` (no dependencies, binaries only), or None."""
    ok, out = _pip([str(py), "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--only-binary", ":all:",
                    "--report", "-", "--quiet", spec_text])  # fmt: skip
    if not ok:
        return None
    try:
        start = out.index("{")
        report = json.loads(out[start : out.rindex("}") + 1])
        return str(report["install"][0]["metadata"]["version"])
    except (ValueError, KeyError, IndexError):
        return None


def _nearest(py: Path, req: Requirement) -> str | None:
    """The installable version closest to the pin: same minor, then same major, then newer, then any."""
    assert req.version is not None
    parts = req.version.split(".")
    for cand in (
        f"=={req.version}",
        f"=={parts[0]}.{parts[1]}.*",
        f">={req.version},<{int(parts[0]) + 1}",
        f">={req.version}",
        "",
    ):
        got = _would_install(py, f"{req.dist}{cand}")
        if got is not None:
            return got
    return None


def _find_links() -> list[Path]:
    """Local wheel folders pip is configured to look in (``find-links``)."""
    values = [os.environ.get("PIP_FIND_LINKS", "")]
    try:
        out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    except OSError:
        out = ""
    values += [m.group(1) for m in re.finditer(r"find-links='([^']*)'", out)]
    folders = []
    for value in values:
        for item in value.split():
            path = Path(item.removeprefix("file://"))
            if path.is_dir() and path not in folders:
                folders.append(path)
    return folders


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.]", _base_version(version))[:3])


def _pick_cpu_build(py: Path, req: Requirement, echo: Callable[[str], None]) -> tuple[str, str]:
    """A pip spec for a CPU-only build of ``req``, and why it deviates from the pin ('' when it does not).

    Order: the pinned version's CPU build (``+cpu``; found where pip is
    pointed at an index that has it), then the CPU build nearest the pin in
    pip's local wheel folders, then the pinned version as the package index
    has it (on PyPI a build with CUDA runtimes: a few GB, but the same code
    on CPU).
    """
    assert req.version is not None
    pinned_cpu = f"{req.dist}=={req.version}+cpu"
    if _would_install(py, pinned_cpu) is not None:
        return pinned_cpu, ""
    tag = _run([str(py), "-c", "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')"], "probe").strip()
    local: list[tuple[str, Path]] = []
    for folder in _find_links():
        for wheel in folder.glob(f"{req.dist}-*+cpu-{tag}-*.whl"):
            local.append((wheel.name.split("-")[1], wheel))
    if local:
        pin = _version_key(req.version)

        def distance(item: tuple[str, Path]) -> tuple[int, ...]:
            return tuple(abs(a - b) for a, b in zip(_version_key(item[0]), pin))

        version, _wheel = min(local, key=distance)
        if _would_install(py, f"{req.dist}=={version}") is not None:
            echo(f"{req.dist} {req.version}: no CPU build here; using the local CPU build {version}")
            return f"{req.dist}=={version}", f"no CPU build of {req.version} for {tag}; nearest local CPU build"
    echo(f"{req.dist} {req.version}: no CPU build here; installing the package index's build (with CUDA runtimes)")
    return f"{req.dist}=={req.version}", "the package index only has a build with CUDA runtimes (unused on CPU)"


def _warm(py: Path, modules: list[str], echo: Callable[[str], None]) -> None:
    """Import each library once, so byte-code and caches (matplotlib's font list) are built outside the sandbox."""
    for module in modules:
        proc = subprocess.run([str(py), "-c", f"import {module}"], capture_output=True, text=True,
                              env={**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
        if proc.returncode != 0:
            echo(f"warning: `import {module}` fails in the new environment: {_tail(proc.stderr)}")


def _fetch_data(
    py: Path, root: Path, env_spec: EnvSpec, modules: list[str], echo: Callable[[str], None]
) -> dict[str, str]:
    """Run the spec's data fetches in the new environment; returns what could not be fetched, and why."""
    failed: dict[str, str] = {}
    for label, folder, _var, code in env_spec.fetches:
        needs = set(re.findall(r"^\s*(?:from|import)\s+(\w+)", code, re.MULTILINE))
        if not needs <= set(modules):
            failed[label] = "library not installed"
            continue
        target = root / "data" / folder
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([str(py), "-c", f"DATA = {str(target)!r}\n{code}"], capture_output=True, text=True,
                              timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})  # fmt: skip
        if proc.returncode != 0:
            failed[label] = _tail(proc.stderr)
    fetchable = {k: v for k, v in failed.items() if v != "library not installed"}
    if fetchable:
        echo(f"warning: could not fetch data that programs download at run time (no network?): "
             f"{'; '.join(f'{k}: {v}' for k, v in fetchable.items())}; rerun `harness env create {env_spec.name}` "
             "with network access to add it")  # fmt: skip
    return failed


def _threadless(py: Path, module: str, env: tuple[tuple[str, str], ...]) -> bool:
    """Whether importing ``module`` (under the sandbox's environment variables) leaves the process one thread."""
    code = (
        f"import {module}\nprint([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('Threads:')][0])"
    )
    proc = subprocess.run([str(py), "-c", code], capture_output=True, text=True, env={**os.environ, **dict(env)})
    return proc.returncode == 0 and proc.stdout.strip().splitlines()[-1:] == ["1"]


_PROBE = """
import importlib.metadata as md, importlib.util as u, json, sys
dists, modules = json.loads(sys.argv[1])
inst = {}
for d in dists:
    try:
        inst[d] = md.version(d)
    except md.PackageNotFoundError:
        pass
print(json.dumps([inst, {m: u.find_spec(m) is not None for m in modules}]))
"""


def _probe(py: Path, env_spec: EnvSpec) -> tuple[dict[str, str], dict[str, bool]]:
    """Installed versions of every known library (and pillow) and which import names resolve."""
    dists = [r.dist for r in env_spec.requirements] + ["pillow", "torch", "tensorflow", "keras"]
    modules = [r.module for r in env_spec.requirements] + ["PIL", "keras", "mpl_toolkits"]
    out = _run([str(py), "-c", _PROBE, json.dumps([list(dict.fromkeys(dists)), modules])], "probe the environment")
    installed, found = json.loads(out)
    return installed, found
