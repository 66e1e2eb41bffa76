#!/usr/bin/env python3
"""Train the bundled byte-level BPE tokenizer on examples/data/moby-dick.txt.

    /work/pyref/bin/python tools/reference/train_tokenizer.py
    # options: --text FILE --out DIR --vocab-size 4096

Writes into examples/data/tokenizer/:
  tokenizer.json           HF `tokenizers` file: byte-level BPE (no normalizer,
                           ByteLevel pre-tokenizer without prefix space, ByteLevel decoder),
                           special tokens <unk>=0, <s>=1, </s>=2, and a TemplateProcessing
                           post-processor that prepends <s> when add_special_tokens=True
                           (single: "<s> $A", pair: "<s> $A <s> $B")
  tokenizer_config.json    for transformers' PreTrainedTokenizerFast / AutoTokenizer
                           (bos_token <s>, eos_token </s>, unk_token <unk>)
  special_tokens_map.json
and examples/data/tokenizer-reference.jsonl: {"text", "ids", "tokens"} per sample text
(ids with add_special_tokens=True, i.e. starting with <s>=1), for tokenizer tests.

Deterministic for a given tokenizers version (verified: two runs give identical files);
made with tokenizers 0.23.2 / transformers 5.18.0.  After training it checks that
encode/decode round-trips several paragraphs (incl. non-ASCII) exactly and that the
files load with transformers.AutoTokenizer.
"""

import argparse
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO_ROOT, "examples", "data")
SPECIALS = ["<unk>", "<s>", "</s>"]

SAMPLES = [
    "Call me Ishmael. Some years ago—never mind how long precisely—having\n"
    "little or no money in my purse, and nothing particular to interest me on\n"
    "shore, I thought I would sail about a little and see the watery part of\n"
    "the world.",
    "  Leading spaces, tabs\tand trailing spaces   \n\nblank lines, digits 1851 & 3.14159.",
    "Unicode: “curly quotes”, naïve café, WHŒL, ϰητος, חן, emoji 🐋, CJK 鯨.",
    "",
    "x",
]


def train(text_path, vocab_size):
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([text_path], trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", bos)])
    return tok


def check(tok, out_dir, corpus):
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    assert ids == {"<unk>": 0, "<s>": 1, "</s>": 2}, ids
    paragraphs = SAMPLES + [p for p in corpus.split("\n\n")[100:110]]
    for s in paragraphs:
        enc = tok.encode(s)                      # add_special_tokens=True by default
        assert enc.ids[:1] == [1], ("<s> not prepended", s[:40], enc.ids[:3])
        assert tok.decode(enc.ids, skip_special_tokens=True) == s, ("round trip", s)
        plain = tok.encode(s, add_special_tokens=False)
        assert plain.ids == enc.ids[1:]
        assert 0 not in plain.ids, "byte-level BPE should never need <unk>"
    # whole corpus round trip (no specials)
    enc = tok.encode(corpus, add_special_tokens=False)
    assert tok.decode(enc.ids) == corpus, "corpus round trip failed"
    print(f"corpus: {len(corpus.encode('utf-8'))} bytes -> {len(enc.ids)} tokens "
          f"({len(corpus.encode('utf-8')) / len(enc.ids):.2f} bytes/token)")
    try:
        from transformers import AutoTokenizer
        hf = AutoTokenizer.from_pretrained(out_dir)
        for s in paragraphs:
            e = hf(s)["input_ids"]
            assert e == tok.encode(s).ids, ("transformers disagrees", s[:40])
            assert hf.decode(e, skip_special_tokens=True) == s
        assert hf.bos_token == "<s>" and hf.eos_token == "</s>" and hf.unk_token == "<unk>"
        print(f"transformers {type(hf).__name__}: ok (bos={hf.bos_token_id}, eos={hf.eos_token_id})")
    except ImportError:
        print("transformers not installed: skipped the AutoTokenizer check")


def main():
    ap = argparse.ArgumentParser(description="train the bundled byte-level BPE tokenizer")
    ap.add_argument("--text", default=os.path.join(DATA, "moby-dick.txt"))
    ap.add_argument("--out", default=os.path.join(DATA, "tokenizer"))
    ap.add_argument("--vocab-size", type=int, default=4096)
    args = ap.parse_args()

    tok = train(args.text, args.vocab_size)
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"), pretty=False)

    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 2048,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, f, indent=2)
        f.write("\n")

    with open(args.text, encoding="utf-8") as f:
        corpus = f.read()
    check(Tokenizer.from_file(os.path.join(args.out, "tokenizer.json")), args.out, corpus)
    ref_path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "tokenizer-reference.jsonl")
    with open(ref_path, "w", encoding="utf-8") as f:
        for text in SAMPLES + [corpus.split("\n\n")[104]]:
            enc = tok.encode(text)
            f.write(json.dumps({"text": text, "ids": enc.ids, "tokens": enc.tokens}, ensure_ascii=False) + "\n")
    print(f"wrote {ref_path}")
    size = os.path.getsize(os.path.join(args.out, "tokenizer.json"))
    print(f"vocab {tok.get_vocab_size()}, tokenizer.json {size} bytes")
    if size > 1024 * 1024:
        print("warning: tokenizer.json is over 1 MB", file=sys.stderr)


if __name__ == "__main__":
    main()
