"""The ``oracle`` backend: each benchmark's canonical solution, a sanity check that must score 100%.

``oracle`` answers every request that names a benchmark task with that
task's reference solution, whatever the prompt; ``oracle:BENCHMARK``
restricts it to one benchmark.  A grader or prompt pipeline that does not
give the oracle full marks is broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness import benchmark as registry
from harness.engine.base import Backend, BackendOptions, Emit
from harness.engine.types import Completion, Job
from harness.errors import HarnessError


class OracleOptions(BackendOptions):
    """Options of the ``oracle`` backend."""

    data_dir: str | None = None


class OracleBackend(Backend):
    """Canonical solutions from the benchmark registry."""

    name = "oracle"
    Options = OracleOptions
    cacheable = False
    dedupe_greedy = False

    def __init__(self, identifier: str, options: BackendOptions) -> None:
        super().__init__(identifier, options)
        if identifier and identifier not in registry.names():
            raise HarnessError(f"oracle:{identifier}: unknown benchmark; known: {', '.join(registry.names())}")
        self._benchmarks: dict[str, Any] = {}

    def identity(self) -> dict[str, Any]:
        """The oracle is only its benchmark restriction."""
        return {"benchmark": self.identifier or None}

    def default_style(self) -> str:
        """Solutions are used as stored."""
        return "replay"

    def _bench(self, name: str) -> Any:
        if name not in self._benchmarks:
            self._benchmarks[name] = registry.reader(name, data_dir=self.options.data_dir)  # type: ignore[attr-defined]
        return self._benchmarks[name]

    def run(self, jobs: Sequence[Job], emit: Emit) -> None:
        """Emit the canonical solution for every sample of every job."""
        for j, job in enumerate(jobs):
            req = job.request
            name = req.benchmark or self.identifier
            if req.task_id is None or not name:
                raise HarnessError("the oracle backend answers benchmark tasks only (a request without a task)")
            if self.identifier and name != self.identifier:
                raise HarnessError(f"oracle:{self.identifier} cannot answer a {name} task")
            bench = self._bench(name)
            problem = bench.problems().get(req.task_id)
            if problem is None:
                raise HarnessError(f"oracle: {name} has no task {req.task_id}")
            field, text = bench.oracle_sample(problem)
            for i in job.indices:
                emit(j, i, Completion(text, "replay", 0, 0, sample_field=field))
