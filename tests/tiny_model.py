"""A tiny local causal LM for tests and perf scripts: no hub download.

A byte-level BPE tokenizer is trained on a small code corpus (standard
library sources), a 2-layer Llama is initialised from a fixed seed, and both
are saved with a ChatML chat template, so ``hf:PATH`` loads them like any
model.  Its output is noise, but noise produced through the real code path.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

# ChatML with a thinking switch: ``enable_thinking=True`` opens a think block after the assistant header
# (templates that start the model's thinking do this); unset or false, the prompt is what it always was.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking %}<think>\n{% endif %}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<pad>", "<|im_start|>", "<|im_end|>"]


def corpus(limit_bytes: int = 1_500_000) -> list[str]:
    """Python sources from the running interpreter's standard library (same on every run of one Python)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts: list[str] = []
    total = 0
    for path in sorted(stdlib.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.append(text)
        total += len(text)
        if total >= limit_bytes:
            break
    return texts


def build_tiny_model(out: Path, vocab_size: int = 1024, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    """Train a tokenizer, initialise a tiny Llama, save both to ``out``; returns ``out``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>", bos_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )  # fmt: skip
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = [fast.eos_token_id, fast.convert_tokens_to_ids("<|im_end|>")]
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(out)
    return out


def build_vllm_tiny_model(out: Path, head_size: int = 32, seed: int = 0) -> Path:
    """The tiny model with attention heads vLLM's CPU build accepts (head size 32 or more; 16 is refused).

    Same tokenizer, chat template and layout as :func:`build_tiny_model`, four heads of ``head_size``
    dimensions (hidden size ``4 * head_size``), weights scaled up so greedy text varies; built in seconds.
    """
    if head_size < 32:
        raise ValueError(f"vLLM's CPU attention needs a head size of 32 or more, not {head_size}")
    import torch
    from transformers import LlamaForCausalLM

    build_tiny_model(out, hidden=4 * head_size, seed=seed)
    # At the default init scale every greedy sample of this width is one repeated token ("\n\n\n..."), which
    # would make backends agree trivially; five times the weights gives varied text.
    model = LlamaForCausalLM.from_pretrained(out)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.mul_(5)
    model.save_pretrained(out)
    return out


if __name__ == "__main__":
    import sys

    print(build_tiny_model(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-model")))
