"""Text embeddings for the embedding method: mean-pooled last hidden states of a transformers model."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from harness.engine import require
from harness.errors import HarnessError


@lru_cache(maxsize=2)
def _load(path: str) -> tuple[Any, Any, Any]:
    torch = require("torch", "hf", "the embedding method")
    transformers = require("transformers", "hf", "the embedding method")
    transformers.utils.logging.disable_progress_bar()
    try:
        tok = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.AutoModel.from_pretrained(path)
    except OSError as exc:
        raise HarnessError(f"cannot load embedding model {path!r}: {str(exc).splitlines()[0]}") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.eval()
    return torch, tok, model


def embed_texts(path: str, texts: list[str], batch_size: int = 32, max_length: int = 512) -> np.ndarray:
    """Unit-length embeddings, one row per text."""
    torch, tok, model = _load(path)
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tok(texts[start : start + batch_size], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")  # fmt: skip
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(vec, dim=-1).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)
