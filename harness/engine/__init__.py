"""One inference engine per process, shared by every stage (evaluation, generation, training hooks).

A model is named ``backend:identifier``: ``hf:PATH_OR_HUB_ID``, ``vllm:...``,
``openai:MODEL``, ``replay:SAMPLES.jsonl``, ``oracle``.
"""

from harness.engine.base import (
    Backend,
    BackendOptions,
    Engine,
    EngineStats,
    backend_class,
    backend_names,
    create_engine,
    parse_options,
    parse_spec,
    register_backend,
    require,
    shared_engine,
)
from harness.engine.cache import ResponseCache, sample_key
from harness.engine.types import Completion, Job, Message, Request, Result, Sampling

__all__ = [
    "Backend",
    "BackendOptions",
    "Completion",
    "Engine",
    "EngineStats",
    "Job",
    "Message",
    "Request",
    "ResponseCache",
    "Result",
    "Sampling",
    "backend_class",
    "backend_names",
    "create_engine",
    "parse_options",
    "parse_spec",
    "register_backend",
    "require",
    "sample_key",
    "shared_engine",
]
