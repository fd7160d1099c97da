using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Tests.Processing.Tokenizers;

/// <summary>The vendored tokenizer test data (tools/testdata/make_tokenizer_oracle.mjs, make_sentencepiece_models.py).</summary>
internal static class TokenizerTestData
{
    public static string Dir(params string[] parts) => TestPaths.TestData(["tokenizers", .. parts]);

    private static readonly Lazy<string[]> CorpusLazy = new(() => ReadGzLines(Dir("corpus.jsonl.gz")).Select(l => JsonSerializer.Deserialize<string>(l)!).ToArray());
    public static string[] Corpus => CorpusLazy.Value;

    public static IEnumerable<string> ReadGzLines(string path)
    {
        using var f = File.OpenRead(path);
        using var gz = new GZipStream(f, CompressionMode.Decompress);
        using var r = new StreamReader(gz);
        while (r.ReadLine() is { } line) if (line.Length > 0) yield return line;
    }

    public static List<JsonNode> Expected(string path) => ReadGzLines(path).Select(l => JsonNode.Parse(l)!).ToList();

    public static int[] Ids(JsonNode node, string key) => node[key]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();

    /// <summary>A temp folder with the oracle's files as a checkpoint ships them: tokenizer.json + tokenizer_config.json.</summary>
    public static string MaterializeHfFolder(string name)
    {
        var dir = TestPaths.NewTempDir();
        using (var src = new GZipStream(File.OpenRead(Dir(name, "tokenizer.json.gz")), CompressionMode.Decompress))
        using (var dst = File.Create(Path.Combine(dir, "tokenizer.json")))
            src.CopyTo(dst);
        File.Copy(Dir(name, "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        return dir;
    }

    public static string Show(string s) => JsonSerializer.Serialize(s.Length > 120 ? s[..120] + "…" : s);
    public static string Show(IEnumerable<int> ids) => "[" + string.Join(",", ids.Take(40)) + (ids.Count() > 40 ? ",…" : "") + "]";
}
