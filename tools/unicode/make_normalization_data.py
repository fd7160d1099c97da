#!/usr/bin/python3
"""Writes the Unicode normalisation table that SafeCoDe.Torch embeds (NFC/NFD/NFKC/NFKD without ICU).

The engine runs with InvariantGlobalization, where string.Normalize does nothing for non-ASCII text, so tokenizers whose
tokenizer.json asks for NFC/NFKC (Qwen2: NFC) need their own normaliser. Source: Debian's unicode-data package.
    apt-get install -y unicode-data
    /usr/bin/python3 tools/unicode/make_normalization_data.py
Output: src/SafeCoDe.Torch/Processing/Tokenizers/Data/unicode-normalization.txt.gz, lines of
    <hex code point> c <ccc>            canonical combining class (non-zero only)
    <hex> d <hex> [<hex>...]            canonical decomposition mapping (one level)
    <hex> k <hex> [<hex>...]            compatibility decomposition mapping (one level)
    <hex> x                             Full_Composition_Exclusion
and tests/SafeCoDe.Torch.Tests/TestData/unicode/NormalizationTest-part0-1.txt.gz (parts 0 and 1 of NormalizationTest.txt).
"""
import bz2
import gzip
import os

UCD = "/usr/share/unicode"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def main():
    lines = []
    version = open(os.path.join(UCD, "ReadMe.txt"), encoding="utf-8").read()
    with open(os.path.join(UCD, "UnicodeData.txt"), encoding="utf-8") as f:
        for row in f:
            fields = row.rstrip("\n").split(";")
            cp, ccc, decomp = fields[0], int(fields[3]), fields[5]
            if "First>" in fields[1] or "Last>" in fields[1]:
                continue  # ranges (Hangul syllables, CJK ideographs) have no mappings here; Hangul is algorithmic
            if ccc:
                lines.append(f"{cp} c {ccc}")
            if decomp:
                if decomp.startswith("<"):
                    lines.append(f"{cp} k {decomp.split('> ', 1)[1]}")
                else:
                    lines.append(f"{cp} d {decomp}")
    with open(os.path.join(UCD, "DerivedNormalizationProps.txt"), encoding="utf-8") as f:
        for row in f:
            row = row.split("#", 1)[0].strip()
            if not row:
                continue
            parts = [p.strip() for p in row.split(";")]
            if parts[1] != "Full_Composition_Exclusion":
                continue
            if ".." in parts[0]:
                lo, hi = (int(x, 16) for x in parts[0].split(".."))
            else:
                lo = hi = int(parts[0], 16)
            for cp in range(lo, hi + 1):
                lines.append(f"{cp:04X} x")
    out = os.path.join(ROOT, "src", "SafeCoDe.Torch", "Processing", "Tokenizers", "Data", "unicode-normalization.txt.gz")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with gzip.GzipFile(out, "wb", mtime=0) as f:
        f.write(("\n".join(lines) + "\n").encode("ascii"))
    print(out, len(lines), "lines")

    test_lines = []
    part = None
    with bz2.open(os.path.join(UCD, "NormalizationTest.txt.bz2"), "rt", encoding="utf-8") as f:
        for row in f:
            if row.startswith("@Part"):
                part = row.split()[0]
            if part in ("@Part0", "@Part1") and row.strip() and not row.startswith("#"):
                test_lines.append(row.split("#", 1)[0].strip())
    tout = os.path.join(ROOT, "tests", "SafeCoDe.Torch.Tests", "TestData", "unicode", "NormalizationTest-part0-1.txt.gz")
    os.makedirs(os.path.dirname(tout), exist_ok=True)
    with gzip.GzipFile(tout, "wb", mtime=0) as f:
        f.write(("\n".join(test_lines) + "\n").encode("utf-8"))
    print(tout, len(test_lines), "lines")


if __name__ == "__main__":
    main()
