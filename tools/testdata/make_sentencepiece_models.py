#!/usr/bin/python3
"""Trains small SentencePiece models on the tokenizer corpus and records sentencepiece's own ids as the oracle.

Needs Debian's sentencepiece bindings (the system python, not a pyenv one):
    apt-get install -y python3-sentencepiece
    /usr/bin/python3 tools/testdata/make_sentencepiece_models.py

Reads  tests/SafeCoDe.Torch.Tests/TestData/tokenizers/corpus.jsonl.gz (made by make_tokenizer_oracle.mjs).
Writes tests/SafeCoDe.Torch.Tests/TestData/tokenizers/sentencepiece/<name>.model and <name>.expected.jsonl.gz with one
{"ids": sp.encode(text), "pieces": [...], "decoded": sp.decode(ids)} per corpus line, plus <name>.spec.json (the
trainer/normalizer settings the C# reader must see in the file).
"""
import gzip
import json
import os
import sys
import tempfile

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "SafeCoDe.Torch.Tests", "TestData", "tokenizers")
OUT = os.path.join(DATA, "sentencepiece")

# Llama/Vicuna's tokenizer.model: BPE, byte fallback, identity normalisation, no whitespace collapsing, split digits.
MODELS = {
    "bpe-bytefallback": dict(model_type="bpe", vocab_size=3000, byte_fallback=True, normalization_rule_name="identity",
                             remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
                             character_coverage=0.98, max_sentencepiece_length=16),
    # sentencepiece's defaults: nmt_nfkc normalisation (precompiled charsmap), whitespace collapsing, <unk> for unseen chars.
    "bpe-nfkc": dict(model_type="bpe", vocab_size=2600, character_coverage=0.98),
    "unigram-bytefallback": dict(model_type="unigram", vocab_size=2600, byte_fallback=True, character_coverage=0.98, hard_vocab_limit=False),
    "unigram-nfkc": dict(model_type="unigram", vocab_size=2400, character_coverage=0.98, hard_vocab_limit=False),
}


def encode_split(sp, text, specials):
    """transformers' LlamaTokenizer (legacy=True): special-token text becomes its id, each other segment goes to
    sentencepiece on its own (so it gets its own dummy-prefix)."""
    out, seg, i = [], [], 0
    while i < len(text):
        hit = next((t for t in specials if text.startswith(t, i)), None)
        if hit is None:
            seg.append(text[i])
            i += 1
            continue
        if seg:
            out += sp.encode("".join(seg))
            seg = []
        out.append(sp.piece_to_id(hit))
        i += len(hit)
    if seg:
        out += sp.encode("".join(seg))
    return out


def main():
    with gzip.open(os.path.join(DATA, "corpus.jsonl.gz"), "rt", encoding="utf-8") as f:
        corpus = [json.loads(line) for line in f if line.strip()]
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, "train.txt")
        with open(train, "w", encoding="utf-8") as f:
            for s in corpus:
                for line in s.splitlines():
                    if line.strip() and "\0" not in line:
                        f.write(line + "\n")
        for name, kw in MODELS.items():
            prefix = os.path.join(tmp, name)
            spm.SentencePieceTrainer.train(input=train, model_prefix=prefix, num_threads=1, minloglevel=2,
                                           input_sentence_size=0, shuffle_input_sentence=False, **kw)
            with open(prefix + ".model", "rb") as f:
                blob = f.read()
            with open(os.path.join(OUT, name + ".model"), "wb") as f:
                f.write(blob)
            sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
            specials = sorted({sp.id_to_piece(i) for i in (sp.unk_id(), sp.bos_id(), sp.eos_id()) if i >= 0}, key=len, reverse=True)
            lines = []
            for s in corpus:
                ids = sp.encode(s)
                lines.append(json.dumps({"ids": ids, "pieces": [sp.id_to_piece(i) for i in ids], "decoded": sp.decode(ids),
                                         "ids_split": encode_split(sp, s, specials)}, ensure_ascii=False))
            with gzip.GzipFile(os.path.join(OUT, name + ".expected.jsonl.gz"), "wb", mtime=0) as f:
                f.write(("\n".join(lines) + "\n").encode("utf-8"))
            spec = dict(kw, vocab_size=sp.get_piece_size(), unk_id=sp.unk_id(), bos_id=sp.bos_id(), eos_id=sp.eos_id(),
                        pad_id=sp.pad_id())
            with open(os.path.join(OUT, name + ".spec.json"), "w", encoding="utf-8") as f:
                json.dump(spec, f, indent=1, sort_keys=True)
                f.write("\n")
            print(f"{name}: {len(blob)} bytes, {sp.get_piece_size()} pieces, {sum(len(json.loads(l)['ids']) for l in lines)} ids")


if __name__ == "__main__":
    sys.exit(main())
