#!/usr/bin/env python3
"""Generate the evaluation-metric fixtures used by collie-core's dev.collie.core.eval tests.

Run from the repository root (no network):

    /work/pyref/bin/python tools/reference/make_metric_fixtures.py
    # or: ... --out collie-core/src/test/resources/fixtures/metrics

Needs nltk, sacrebleu and torchmetrics (with torch). Produced with nltk 3.10.3, sacrebleu 2.6.0, torchmetrics 1.9.0,
torch 2.13.0 (recorded in the files). Deterministic: a second run rewrites both files byte for byte.

text.json — hand-written prediction/reference pairs (empty prediction and reference, no overlap, identical, one to
three words where BLEU smoothing decides the score, repeated words, punctuation, digits, HTML entities, a
hyphen at a line end, irregular white space, non-ASCII letters, one to three references) and:

  tokens       the tokens of every prediction and reference under sacrebleu's 13a tokenizer after rstrip() ("13a") and
               torchmetrics' ROUGE normalisation ("rouge": lower case, every run of characters outside [a-z0-9]
               a separator); whitespace tokens are Python's str.split()
  bleu         nltk's sentence_bleu for every pair with SmoothingFunction().method0/1/2 (epsilon 0.1) and
               4-gram uniform weights, and their mean (the macro average); sacrebleu's sentence score with
               smooth_method 'add-k' (k 1, effective_order off) on whitespace tokens, and its mean; nltk's
               corpus_bleu over all pairs and over the pairs whose prediction has at least 4 whitespace tokens
               ("long": where nltk's per-sentence floor of a zero n-gram count at 1 changes nothing); sacrebleu's
               corpus BLEU (score / 100) with tokenize 'none' (whitespace) and '13a', each with smooth_method
               'none', 'floor' (0.1) and 'add-k' (1); and nltk's sentence_bleu with bigram weights (0.5, 0.5)
               and method1, for a BLEU of order 2; and, for four pairs with unigram matches and no 4-gram
               match ("no_fourgram_match"), nltk's corpus_bleu with each method and sacrebleu's corpus BLEU
               (whitespace) with each smoothing
  rouge        torchmetrics' rouge_score(rouge_keys=("rouge1", "rouge2", "rougeL"), accumulate="best") per pair
               and over all pairs (torchmetrics averages the per-pair scores), with its default normalisation
               ("rouge") and with tokenizer=str.split and an identity normalizer ("whitespace")

classification.json — predicted and true class ids with a 0/1 mask, and by definition (no sklearn):
per-class true positives, false positives and false negatives over the unmasked positions; micro precision,
recall and F1 (from the summed counts) and macro ones (the mean over the classes that occur as a prediction or a
target; 0/0 is 0); token accuracy; and the same data as rows of a [4, 10] batch with sequence accuracy (a row is
right when all its unmasked positions are).
"""

import argparse
import json
import math
import os
import re
import logging
import warnings

import nltk
import sacrebleu
import torch
import torchmetrics
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu
from sacrebleu.metrics import BLEU
from torchmetrics.functional.text.rouge import rouge_score
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "collie-core", "src", "test", "resources", "fixtures", "metrics")

# (prediction, [references]); a reference list has one to three texts.
PAIRS = [
    ("the cat sat on the mat", ["the cat sat on the mat"]),
    ("", ["the cat is on the mat"]),
    ("dogs bark loudly at night", ["the cat sat on the mat"]),
    ("cat", ["the cat"]),
    ("the cat", ["the cat sat"]),
    ("on the mat", ["the cat sat on the mat"]),
    ("the the the the the the the", ["the cat is on the mat", "there is a cat on the mat"]),
    ("cat cat cat cat cat cat cat", ["the cat is on the mat", "there is a cat on the mat"]),
    ("Hello, world! How are you?", ["Hello world, how are you today?"]),
    ("It is a guide to action which ensures that the military always obeys the commands of the party.",
     ["It is a guide to action that ensures that the military will forever heed Party commands.",
      "It is the guiding principle which guarantees the military forces always being under the command of the Party.",
      "It is the practical guide for the army always to heed the directions of the party."]),
    ("he read the book because he was interested in world history",
     ["he was interested in world history because he read the book"]),
    ("The Cat Sat", ["the cat sat"]),
    ("The price rose 3.5% to $1,200.50 in 2023-2024.",
     ["Prices rose by 3.5 % to $ 1,200.50 during 2023 - 2024 ."]),
    ("Tom &amp; Jerry &lt;3 cheese", ["Tom & Jerry love cheese"]),
    ("a well-known fact", ["a well - known fact"]),
    ("the quick brown fox jumps over the lazy dog", ["a quick brown fox jumped over a lazy dog"]),
    ("the cat sat on the mat and then it slept for a long time", ["the cat sat on the mat"]),
    ("there is a cat on the mat", ["the cat is on the mat"]),
    ("  the   cat\tsat \n on  the mat  ", ["the cat sat on the mat"]),
    ("don't stop believing", ["do not stop believing"]),
    ("police killed the gunman", ["police kill the gunman", "the gunman kill police"]),
    ("the gunman police killed", ["police killed the gunman"]),
    ("one two three four five six", ["one two three four", "one two three four five six seven eight"]),
    ("something here", [""]),
    ("", [""]),
    ("...", ["!!!"]),
    ("Café au lait, s'il vous plaît", ["café au lait s'il vous plait"]),
    ("the study found that regular exercise improves both mental and physical health in older adults",
     ["regular exercise improves mental and physical health among older adults according to the study"]),
    ("to be or not to be", ["to be or not to be that is the question"]),
    ("I I I I", ["I am here"]),
    ("error code 404 not found", ["404 error: page not found"]),
    ("first line-\nsecond line", ["first linesecond line"]),
    ("a b c d a b c d", ["a b c d e a b c d"]),
    ("the mat sat on the cat", ["the cat sat on the mat", "a cat sat on a mat"]),
    ("w x y z", ["z y x w", "w x q r"]),  # ROUGE-1's best reference is the first, ROUGE-2's and ROUGE-L's the second
]

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")
# Indices into PAIRS: four predictions of four or more words, each with one or two references, with unigram
# matches and no 4-gram match.
NO_FOURGRAM_MATCH = [6, 7, 20, 21]


def nltk_smoothing():
    s = SmoothingFunction(epsilon=0.1)
    return {"method0": s.method0, "method1": s.method1, "method2": s.method2}


def bleu_fixtures():
    hyps = [p.split() for p, _ in PAIRS]
    refs = [[r.split() for r in rs] for _, rs in PAIRS]
    long_idx = [i for i, h in enumerate(hyps) if len(h) >= 4]
    out = {"sentence": {}, "macro": {}, "corpus_nltk": {}, "long_indices": long_idx}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # method0 warns about every zero n-gram count
        for name, fn in nltk_smoothing().items():
            scores = [float(sentence_bleu(r, h, smoothing_function=fn)) for h, r in zip(hyps, refs)]
            out["sentence"]["nltk_" + name] = scores
            out["macro"]["nltk_" + name] = math.fsum(scores) / len(scores)
            out["corpus_nltk"][name] = {
                "all": float(corpus_bleu(refs, hyps, smoothing_function=fn)),
                "long": float(corpus_bleu([refs[i] for i in long_idx], [hyps[i] for i in long_idx],
                                          smoothing_function=fn)),
            }
        out["bigram_nltk_method1"] = [
            float(sentence_bleu(r, h, weights=(0.5, 0.5), smoothing_function=nltk_smoothing()["method1"]))
            for h, r in zip(hyps, refs)]

    logging.getLogger("sacrebleu").setLevel(logging.ERROR)  # "recommended to enable effective_order" per pair
    add_k = BLEU(tokenize="none", smooth_method="add-k", effective_order=False)
    scores = [add_k.sentence_score(p, rs).score / 100 for p, rs in PAIRS]
    out["sentence"]["sacrebleu_add_k"] = scores
    out["macro"]["sacrebleu_add_k"] = math.fsum(scores) / len(scores)

    # Pairs whose corpus has unigram matches and no 4-gram match: the smoothing of a zero count decides.
    sub = NO_FOURGRAM_MATCH
    out["no_fourgram_match"] = {"indices": sub}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in nltk_smoothing().items():
            out["no_fourgram_match"]["nltk_" + name] = float(
                corpus_bleu([refs[i] for i in sub], [hyps[i] for i in sub], smoothing_function=fn))
    sub_streams = [[PAIRS[i][1][k] if k < len(PAIRS[i][1]) else None for i in sub] for k in range(2)]
    for smooth in ("none", "floor", "add-k"):
        out["no_fourgram_match"]["sacrebleu_" + smooth] = BLEU(tokenize="none", smooth_method=smooth).corpus_score(
            [PAIRS[i][0] for i in sub], sub_streams).score / 100

    most = max(len(rs) for _, rs in PAIRS)
    streams = [[rs[k] if k < len(rs) else None for _, rs in PAIRS] for k in range(most)]
    preds = [p for p, _ in PAIRS]
    out["corpus_sacrebleu"] = {}
    for tok in ("none", "13a"):
        out["corpus_sacrebleu"][tok] = {
            smooth: BLEU(tokenize=tok, smooth_method=smooth).corpus_score(preds, streams).score / 100
            for smooth in ("none", "floor", "add-k")}
    return out


def rouge_fixtures():
    out = {}
    variants = {
        "rouge": {},
        "whitespace": {"tokenizer": str.split, "normalizer": lambda s: s},
    }
    for name, kw in variants.items():
        per_pair = []
        for p, rs in PAIRS:
            r = rouge_score(p, [rs], rouge_keys=ROUGE_KEYS, accumulate="best", **kw)
            per_pair.append({k: float(v) for k, v in sorted(r.items())})
        overall = rouge_score([p for p, _ in PAIRS], [rs for _, rs in PAIRS], rouge_keys=ROUGE_KEYS,
                              accumulate="best", **kw)
        out[name] = {"pairs": per_pair, "mean": {k: float(v) for k, v in sorted(overall.items())}}
    return out


def token_fixtures():
    tok13a = Tokenizer13a()
    texts = [p for p, _ in PAIRS] + [r for _, rs in PAIRS for r in rs]
    return {
        "texts": texts,
        "13a": [tok13a(t.rstrip()).split() for t in texts],  # as sacrebleu's BLEU calls it
        "rouge": [[x for x in re.split(r"\s+", re.sub(r"[^a-z0-9]+", " ", t.lower())) if x] for t in texts],
        "whitespace": [t.split() for t in texts],
    }


# Classification: 40 positions, classes 0-4; class 3 is only ever a target, class 4 only ever a prediction;
# the masked positions (mask 0) would change every figure if they were counted; as rows of ten, only the last row
# is right at all its unmasked positions (and wrong at its masked ones).
PRED = [0, 1, 2, 2, 0, 1, 1, 4, 0, 2,
        2, 2, 1, 0, 0, 4, 1, 2, 0, 1,
        0, 0, 1, 2, 2, 1, 0, 4, 2, 2,
        1, 1, 0, 0, 2, 2, 1, 0, 4, 4]
TARGET = [0, 1, 2, 1, 0, 1, 2, 0, 3, 2,
          2, 0, 1, 0, 3, 1, 1, 2, 0, 1,
          0, 1, 1, 2, 3, 1, 0, 2, 2, 0,
          1, 1, 0, 0, 2, 2, 1, 1, 0, 0]
MASK = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 0, 0,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 0, 0, 0, 0]


def classification_fixtures():
    classes = sorted({p for p, m in zip(PRED, MASK) if m} | {t for t, m in zip(TARGET, MASK) if m})
    tp, fp, fn = {}, {}, {}
    for c in classes:
        tp[c] = sum(1 for p, t, m in zip(PRED, TARGET, MASK) if m and p == c and t == c)
        fp[c] = sum(1 for p, t, m in zip(PRED, TARGET, MASK) if m and p == c and t != c)
        fn[c] = sum(1 for p, t, m in zip(PRED, TARGET, MASK) if m and p != c and t == c)

    def div(a, b):
        return a / b if b else 0.0

    def prf(t, f_p, f_n):
        p, r = div(t, t + f_p), div(t, t + f_n)
        return p, r, div(2 * p * r, p + r)

    per = {c: prf(tp[c], fp[c], fn[c]) for c in classes}
    micro = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    counted = [(p, t) for p, t, m in zip(PRED, TARGET, MASK) if m]
    rows = [list(range(10 * i, 10 * i + 10)) for i in range(4)]
    row_right = [all(PRED[j] == TARGET[j] for j in r if MASK[j]) for r in rows if any(MASK[j] for j in r)]
    return {
        "pred": PRED, "target": TARGET, "mask": MASK, "classes": classes,
        "tp": [tp[c] for c in classes], "fp": [fp[c] for c in classes], "fn": [fn[c] for c in classes],
        "precision-micro": micro[0], "recall-micro": micro[1], "f1-micro": micro[2],
        "precision-macro": math.fsum(v[0] for v in per.values()) / len(classes),
        "recall-macro": math.fsum(v[1] for v in per.values()) / len(classes),
        "f1-macro": math.fsum(v[2] for v in per.values()) / len(classes),
        "accuracy": sum(1 for p, t in counted if p == t) / len(counted),
        "sequence-accuracy": sum(row_right) / len(row_right),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    versions = {"nltk": nltk.__version__, "sacrebleu": sacrebleu.__version__,
                "torchmetrics": torchmetrics.__version__, "torch": torch.__version__.split("+")[0]}
    text = {
        "versions": versions,
        "pairs": [{"prediction": p, "references": rs} for p, rs in PAIRS],
        "tokens": token_fixtures(),
        "bleu": bleu_fixtures(),
        "rouge": rouge_fixtures(),
    }
    cls = {"versions": {"python": "definition"}, **classification_fixtures()}
    for name, obj in (("text.json", text), ("classification.json", cls)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=1)
            f.write("\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
