"""Tokenizers built in memory, with no files and no Hub: each family's pipeline saves them with its weights.

They share one alphabet, the 256 byte symbols of GPT-2/CLIP byte-level BPE, so every prompt tokenizes to
something (no unknown tokens). The texts are noise to a random model anyway; what matters is that each is
the tokenizer class the family's pipeline expects and that it survives ``save_pretrained`` /
``from_pretrained``.
"""

from __future__ import annotations

import string
from typing import Any

__all__ = ["CLIP_MAX_LENGTH", "byte_symbols", "clip_tokenizer", "qwen_tokenizer", "t5_tokenizer"]

#: CLIP's fixed context (the text encoders' position embeddings).
CLIP_MAX_LENGTH = 77
#: A few BPE merges so that tokens longer than one symbol exist.
MERGES = ("t h", "th e</w>", "o x</w>", "a n", "an d</w>", "c a", "ca t</w>")
#: The Qwen chat template's control tokens (Qwen2/2.5/3 share them), then Qwen2.5-VL's image tokens.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
    "<|video_pad|>",
)
#: The ChatML template Qwen tokenizers carry; the LLM-encoder pipelines call ``apply_chat_template``.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_symbols() -> list[str]:
    """GPT-2/CLIP byte-level alphabet: one printable unicode character per byte value, in byte order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def clip_tokenizer() -> Any:
    """A ``CLIPTokenizer``: the byte symbols, each also as an end of word (``</w>``), a few merges, then the
    start and end tokens; 77 tokens long like CLIP's."""
    from transformers import CLIPTokenizer

    symbols = byte_symbols()
    # pairs, as the tokenizers library's BPE takes them (the "a b" strings of merges.txt are refused)
    merges: Any = [tuple(m.split()) for m in MERGES]
    tokens = [*symbols, *(s + "</w>" for s in symbols), *(m.replace(" ", "") for m in MERGES)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={token: i for i, token in enumerate(tokens)},
        merges=merges,
        model_max_length=CLIP_MAX_LENGTH,
    )


def t5_tokenizer(max_length: int) -> Any:
    """A T5 tokenizer: a sentencepiece-style Unigram model (``<pad>``=0, ``</s>``=1, ``<unk>``=2, the word
    boundary ``▁``, printable ASCII, and each lowercase letter starting a word), ``</s>`` appended.

    transformers 5 rebuilds every T5 tokenizer as a Unigram model on loading, so a Unigram is what round-trips.
    """
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.printable.strip()]
    pieces += [("▁" + c, -2.5) for c in string.ascii_lowercase]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def qwen_tokenizer(max_length: int) -> Any:
    """A ``Qwen2Tokenizer`` (byte-level BPE, no merges) with Qwen's control tokens and a ChatML template."""
    from transformers import Qwen2Tokenizer

    vocab = {symbol: i for i, symbol in enumerate(byte_symbols())}
    for token in QWEN_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        chat_template=QWEN_CHAT_TEMPLATE,
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
        model_max_length=max_length,
    )
