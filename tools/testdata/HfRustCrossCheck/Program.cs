// Compares SafeCoDe.Torch's tokenizers with Hugging Face's Rust tokenizers (through Tokenizers.DotNet 1.4.1, whose
// Encode always adds special tokens and whose Decode always skips them) on the vendored corpus, for every file layout
// whose tokenizer.json we can hand to the Rust library: the two oracle tokenizer.json files, the same Qwen vocabulary as
// vocab.json + merges.txt, and the BERT vocab.txt (the tokenizer.json our loader builds for them goes to Rust as well).
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Torch.Processing.Tokenizers;

var data = args.Length > 0 ? args[0] : Path.Combine(FindRepoRoot(), "tests", "SafeCoDe.Torch.Tests", "TestData", "tokenizers");
var corpus = GzLines(Path.Combine(data, "corpus.jsonl.gz")).Select(l => JsonSerializer.Deserialize<string>(l)!).ToArray();
var tmp = Directory.CreateTempSubdirectory("hf-rust-crosscheck").FullName;
int failures = 0;
try
{
    foreach (var name in new[] { "llama2", "qwen3" })
    {
        var dir = Directory.CreateDirectory(Path.Combine(tmp, name)).FullName;
        using (var g = new GZipStream(File.OpenRead(Path.Combine(data, name, "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var f = File.Create(Path.Combine(dir, "tokenizer.json")))
            g.CopyTo(f);
        File.Copy(Path.Combine(data, name, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        failures += Compare($"{name} tokenizer.json", TokenizerLoader.Load(dir), Path.Combine(dir, "tokenizer.json"), corpus);
        if (name == "qwen3")
        {
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")))!;
            var legacy = Directory.CreateDirectory(Path.Combine(tmp, "qwen3-legacy")).FullName;
            File.WriteAllText(Path.Combine(legacy, "vocab.json"), json["model"]!["vocab"]!.ToJsonString());
            File.WriteAllLines(Path.Combine(legacy, "merges.txt"), new[] { "#version: 0.2" }.Concat(
                json["model"]!["merges"]!.AsArray().Select(m => m!.AsArray()[0]!.GetValue<string>() + " " + m.AsArray()[1]!.GetValue<string>())));
            File.Copy(Path.Combine(dir, "tokenizer_config.json"), Path.Combine(legacy, "tokenizer_config.json"));
            var built = TokenizerLoader.ByteLevelBpeJson(Path.Combine(legacy, "vocab.json"), Path.Combine(legacy, "merges.txt"), TokenizerConfig.Load(legacy));
            File.WriteAllText(Path.Combine(tmp, "qwen3-built.json"), built.ToJsonString());
            failures += Compare("qwen3 vocab.json+merges.txt", TokenizerLoader.Load(legacy), Path.Combine(tmp, "qwen3-built.json"), corpus);
        }
    }
    var q = Path.Combine(data, "qformer");
    var bert = TokenizerLoader.WordPieceJson(Path.Combine(q, "vocab.txt"), TokenizerConfig.Load(q));
    File.WriteAllText(Path.Combine(tmp, "qformer-built.json"), bert.ToJsonString());
    // the random-code-point block is where HF's BertNormalizer (old Unicode category tables) and .NET disagree
    var covered = GzLines(Path.Combine(q, "expected.jsonl.gz")).Select(l => JsonNode.Parse(l)!["index"]!.GetValue<int>()).ToHashSet();
    failures += Compare("qformer vocab.txt", TokenizerLoader.Load(q), Path.Combine(tmp, "qformer-built.json"), corpus.Where((_, i) => covered.Contains(i)).ToArray(), cleanUpSpaces: true);
}
finally { Directory.Delete(tmp, true); }
Console.WriteLine(failures == 0 ? "all identical" : $"{failures} differences");
return failures == 0 ? 0 : 1;

static int Compare(string label, ITokenizer ours, string tokenizerJson, string[] corpus, bool cleanUpSpaces = false)
{
    using var rust = new Tokenizers.DotNet.Tokenizer(tokenizerJson);
    int ids = 0, dec = 0;
    foreach (var s in corpus)
    {
        var r = rust.Encode(s).Select(x => (int)x).ToArray();
        var o = ours.Encode(s, addSpecialTokens: true);
        if (!r.SequenceEqual(o)) { if (ids++ < 3) Console.WriteLine($"  ids differ: {JsonSerializer.Serialize(s)}\n    rust {string.Join(",", r)}\n    ours {string.Join(",", o)}"); }
        var rd = rust.Decode(r.Select(x => (uint)x).ToArray());
        // transformers applies clean_up_tokenization_spaces (tokenizer_config.json) after the Rust decoder
        if (cleanUpSpaces) rd = rd.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
            .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
        var od = ours.Decode(r, skipSpecialTokens: true);
        if (rd != od) { if (dec++ < 3) Console.WriteLine($"  decode differs: {JsonSerializer.Serialize(s)}\n    rust {JsonSerializer.Serialize(rd)}\n    ours {JsonSerializer.Serialize(od)}"); }
    }
    Console.WriteLine($"{label}: ids {corpus.Length - ids}/{corpus.Length} identical, decode(skip_special_tokens) {corpus.Length - dec}/{corpus.Length} identical");
    return ids + dec;
}

static IEnumerable<string> GzLines(string path)
{
    using var r = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
    while (r.ReadLine() is { } l) if (l.Length > 0) yield return l;
}

static string FindRepoRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "SafeCoDe.Torch.sln"))) return d.FullName;
    throw new DirectoryNotFoundException("run from inside the repository or pass the TestData/tokenizers folder");
}
