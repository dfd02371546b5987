"""Progress bars on stderr (tqdm), shown only on a terminal so logs and tests stay clean."""

from __future__ import annotations

import sys
from typing import Any


class Bar:
    """A progress bar that can be stepped by any number at a time."""

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self._bar: Any = tqdm(total=total, desc=desc, unit="it", disable=not sys.stderr.isatty(), leave=True,
                              dynamic_ncols=True, smoothing=0.1)  # fmt: skip

    def update(self, k: int = 1, *_: Any) -> None:
        """Advance by ``k``."""
        self._bar.update(k)

    def step(self, *_: Any) -> None:
        """Advance by one (usable as an ``on_done`` callback)."""
        self._bar.update(1)

    def close(self) -> None:
        """Finish the line."""
        self._bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
