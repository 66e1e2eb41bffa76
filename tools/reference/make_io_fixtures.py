#!/usr/bin/env python3
"""Generate the small I/O fixtures used by the SafeTensors and HfTokenizer tests.

    /work/pyref/bin/python tools/reference/make_io_fixtures.py

Deterministic and re-runnable (it rewrites every file it owns).  Made with torch 2.13.0+cpu,
safetensors 0.8.0, tokenizers 0.23.2, transformers 5.18.0.

Writes:

  collie-core/src/test/resources/io/python.safetensors
      written by Python safetensors (safetensors.torch.save_file), one small tensor per dtype
      (F32, F64, F16, BF16, I64, I32, I8, U8, BOOL, a scalar, an empty tensor) with
      __metadata__ {"format": "pt", "generator": ...}.  The values are listed in VALUES below and
      hard-coded in SafeTensorsTest.

  collie-models/src/test/resources/tokenizer/wordlevel/
      tokenizer.json            WordLevel model, Whitespace pre-tokenizer, TemplateProcessing
                                post-processor "<s> $A", special tokens <unk>=0 <s>=1 </s>=2 <pad>=3
      tokenizer_config.json     bos/eos/pad as strings and as AddedToken dicts (both HF spellings)
      special_tokens_map.json
      expected.json             [{text, add_special_tokens, ids, decoded, decoded_skip}] from Python tokenizers

  collie-models/src/test/resources/tokenizer/bpe/
      tokenizer.json            byte-level BPE trained on CORPUS (vocab 300), post-processor "<|bos|> $A",
                                specials <|bos|>=0 <|eos|>=1 <|pad|>=2 (no tokenizer_config.json: the test
                                checks that bos/eos/pad are taken from config.json instead)
      config.json               only bos_token_id / eos_token_id / pad_token_id
      expected.json             as above

It also prints the rope inverse frequencies of transformers 5 for "linear" and "dynamic" rope
(LlamaConfigTest hard-codes a few of them).
"""

import json
import os

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORE_IO = os.path.join(REPO_ROOT, "collie-core", "src", "test", "resources", "io")
TOK = os.path.join(REPO_ROOT, "collie-models", "src", "test", "resources", "tokenizer")


def safetensors_fixture():
    os.makedirs(CORE_IO, exist_ok=True)
    t = {
        "f32": torch.tensor([[-1.0, -0.5, 0.0], [0.5, 1.0, 1.5]], dtype=torch.float32),
        "f64": torch.tensor([1e-300, 2.5, -3.25], dtype=torch.float64),
        # 65504 = largest half, 2^-14 = smallest normal, 2^-24 = smallest subnormal, 1/3 rounds
        "f16": torch.tensor([1.0, -2.5, 65504.0, 2.0 ** -14, 2.0 ** -24, 1.0 / 3.0], dtype=torch.float16),
        # 1/3 rounds to 0.333984375 in bfloat16; 3e38 rounds to 2.9908203e38
        "bf16": torch.tensor([[1.0, -3.140625], [1.0 / 3.0, 3e38]], dtype=torch.bfloat16),
        "i64": torch.tensor([-(2 ** 40), 7], dtype=torch.int64),
        "i32": torch.tensor([-5, 2147483647], dtype=torch.int32),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.0, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
    }
    path = os.path.join(CORE_IO, "python.safetensors")
    save_file(t, path, metadata={"format": "pt", "generator": "tools/reference/make_io_fixtures.py"})
    print(path, os.path.getsize(path), "bytes")
    for k, v in t.items():
        print("  ", k, v.dtype, list(v.shape), v.float().tolist() if v.is_floating_point() else v.tolist())


def expected(tok, texts):
    out = []
    for text in texts:
        for add in (True, False):
            ids = tok.encode(text, add_special_tokens=add).ids
            out.append({
                "text": text,
                "add_special_tokens": add,
                "ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=False),
                "decoded_skip": tok.decode(ids, skip_special_tokens=True),
            })
    return out


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def wordlevel_fixture():
    d = os.path.join(TOK, "wordlevel")
    os.makedirs(d, exist_ok=True)
    words = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", ".", ",", "and", "big", "small"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3}
    for w in words:
        vocab[w] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<unk>", "<s>", "</s>", "<pad>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "bos_token": "<s>",
        "eos_token": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True},
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "model_max_length": 8,
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    # special_tokens_map says something else for bos: tokenizer_config.json must win
    write_json(os.path.join(d, "special_tokens_map.json"), {"bos_token": "</s>", "eos_token": "</s>"})
    # (HfTokenizerTest also checks that a 720-word text is not truncated to model_max_length 8 or to 512)
    texts = ["the cat sat on the mat .", "a big dog ran , and a small cat sat", "the zebra sat", ""]
    write_json(os.path.join(d, "expected.json"), expected(tok, texts))
    print(d, "vocab", tok.get_vocab_size())


CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "How vexingly quick daft zebras jump; the five boxing wizards jump quickly.",
    "Sphinx of black quartz, judge my vow. 12345 + 67890 = 80235",
    "héllo wörld — naïve café, 日本語のテキスト, emoji 🙂🚀",
] * 20


def bpe_fixture():
    d = os.path.join(TOK, "bpe")
    os.makedirs(d, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|bos|>", "<|eos|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B", special_tokens=[("<|bos|>", 0)])
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "config.json"), {"bos_token_id": 0, "eos_token_id": [1], "pad_token_id": 2})
    texts = ["The quick brown fox.", "héllo wörld 🙂 日本", "  leading spaces and\nnewlines\t tabs", "<|eos|> inside"]
    write_json(os.path.join(d, "expected.json"), expected(tok, texts))
    print(d, "vocab", tok.get_vocab_size())


def rope_numbers():
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    base = dict(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                num_attention_heads=4, max_position_embeddings=256)
    for rp in ({"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0},
               {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}):
        cfg = LlamaConfig(rope_parameters=rp, **base)
        inv = LlamaRotaryEmbedding(cfg).inv_freq
        print(rp["rope_type"], "head_dim 16, theta 10000, factor", rp["factor"], ":",
              [float(x) for x in inv[[0, 1, 4, 7]]])
    # dynamic at seq_len 1024 > max_position_embeddings 256 (computed the way the dynamic rope update does)
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    cfg = LlamaConfig(rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}, **base)
    inv, _ = ROPE_INIT_FUNCTIONS["dynamic"](cfg, "cpu", seq_len=1024)
    print("dynamic seq_len 1024:", [float(x) for x in inv[[0, 1, 4, 7]]])


if __name__ == "__main__":
    safetensors_fixture()
    wordlevel_fixture()
    bpe_fixture()
    rope_numbers()
