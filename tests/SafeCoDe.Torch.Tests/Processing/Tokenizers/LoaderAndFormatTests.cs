using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Processing.Tokenizers;

namespace SafeCoDe.Torch.Tests.Processing.Tokenizers;

/// <summary>The other file layouts checkpoints ship, special tokens, and load errors.</summary>
public sealed class LoaderAndFormatTests
{
    private readonly List<string> _dirs = [];

    [TearDown]
    public void Cleanup() { foreach (var d in _dirs) if (Directory.Exists(d)) Directory.Delete(d, true); _dirs.Clear(); }

    private string NewDir() { var d = TestPaths.NewTempDir(); _dirs.Add(d); return d; }

    /// <summary>Each expected line is for corpus line "index" (when present) or for the line of the same number.</summary>
    private static void AssertParity(ITokenizer tok, string expectedPath, int minLines, params string[] keys)
    {
        var expected = TokenizerTestData.Expected(expectedPath);
        Assert.That(expected, Has.Count.GreaterThanOrEqualTo(minLines));
        var corpus = TokenizerTestData.Corpus;
        foreach (var key in keys)
        {
            var failures = new List<string>();
            for (int n = 0; n < expected.Count; n++)
            {
                int i = expected[n]["index"]?.GetValue<int>() ?? n;
                var want = TokenizerTestData.Ids(expected[n], key);
                var got = tok.Encode(corpus[i], addSpecialTokens: key == "ids_special");
                if (!got.SequenceEqual(want)) failures.Add($"#{i} {TokenizerTestData.Show(corpus[i])} want {TokenizerTestData.Show(want)} got {TokenizerTestData.Show(got)}");
            }
            TestContext.Out.WriteLine($"{key}: {expected.Count - failures.Count}/{expected.Count} identical");
            Assert.That(failures, Is.Empty, $"{key}: {failures.Count} differ\n" + string.Join("\n", failures.Take(8)));
        }
    }

    [Test]
    public void Qwen_vocab_json_and_merges_txt_without_tokenizer_json_match_the_oracle()
    {
        // Write the files a Qwen2 checkpoint ships besides tokenizer.json, then load without tokenizer.json.
        var hfDir = TokenizerTestData.MaterializeHfFolder("qwen3");
        _dirs.Add(hfDir);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(hfDir, "tokenizer.json")))!;
        var dir = NewDir();
        File.WriteAllText(Path.Combine(dir, "vocab.json"), json["model"]!["vocab"]!.ToJsonString());
        File.WriteAllLines(Path.Combine(dir, "merges.txt"),
            new[] { "#version: 0.2" }.Concat(json["model"]!["merges"]!.AsArray().Select(m => m!.AsArray()[0]!.GetValue<string>() + " " + m.AsArray()[1]!.GetValue<string>())));
        File.Copy(TokenizerTestData.Dir("qwen3", "tokenizer_config.json"), Path.Combine(dir, "tokenizer_config.json"));
        var tok = TokenizerLoader.Load(dir);
        Assert.That(tok.Description, Does.StartWith("vocab.json+merges.txt"));
        Assert.That(tok.VocabSize, Is.EqualTo(151669));
        AssertParity(tok, TokenizerTestData.Dir("qwen3", "expected.jsonl.gz"), 2258, "ids", "ids_special");
    }

    [Test]
    public void QFormer_vocab_txt_WordPiece_matches_the_oracle()
    {
        var model = NewDir();
        var q = Path.Combine(model, "qformer_tokenizer");
        Directory.CreateDirectory(q);
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json" }) File.Copy(TokenizerTestData.Dir("qformer", f), Path.Combine(q, f));
        var tok = TokenizerLoader.LoadQFormer(model);
        Assert.That(tok.Description, Does.StartWith("vocab.txt (WordPiece"));
        // the oracle covers the corpus without its block of random code points (see make_tokenizer_oracle.mjs)
        AssertParity(tok, TokenizerTestData.Dir("qformer", "expected.jsonl.gz"), 2100, "ids", "ids_special");
        Assert.That(tok.Encode("Hello", true)[0], Is.EqualTo(tok.TokenToId("[CLS]")));
        Assert.That(tok.Unk!.Content, Is.EqualTo("[UNK]"));
        Assert.That(tok.Pad!.Id, Is.EqualTo(0));

        var expected = TokenizerTestData.Expected(TokenizerTestData.Dir("qformer", "expected.jsonl.gz"));
        var failures = new List<string>();
        for (int i = 0; i < expected.Count; i++)
        {
            var want = expected[i]["decoded_skip"]!.GetValue<string>();
            var got = tok.Decode(TokenizerTestData.Ids(expected[i], "ids_special"), skipSpecialTokens: true);
            if (got != want) failures.Add($"#{i} want {TokenizerTestData.Show(want)} got {TokenizerTestData.Show(got)}");
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} decodes differ\n" + string.Join("\n", failures.Take(8)));
    }

    [Test]
    public void Special_tokens_of_llama2_come_from_tokenizer_config()
    {
        var dir = TokenizerTestData.MaterializeHfFolder("llama2");
        _dirs.Add(dir);
        var tok = TokenizerLoader.Load(dir);
        Assert.That(tok, Is.InstanceOf<HfTokenizer>());
        Assert.That((tok.Bos!.Content, tok.Bos.Id), Is.EqualTo(("<s>", 1)));
        Assert.That((tok.Eos!.Content, tok.Eos.Id), Is.EqualTo(("</s>", 2)));
        Assert.That((tok.Unk!.Content, tok.Unk.Id), Is.EqualTo(("<unk>", 0)));
        Assert.That(tok.Pad, Is.Null);
        Assert.That(tok.VocabSize, Is.EqualTo(32000));
        Assert.That(tok.IsSpecial(1) && tok.IsSpecial(2) && !tok.IsSpecial(22557), Is.True);
        Assert.That(tok.IdToToken(22557), Is.EqualTo("▁Hello"));
        Assert.That(tok.TokenToId("▁Hello"), Is.EqualTo(22557));
        Assert.That(tok.Encode("Hello world", false), Is.EqualTo(new[] { 22557, 1526 }));
        Assert.That(tok.Encode("Hello world", true), Is.EqualTo(new[] { 1, 22557, 1526 }));
        Assert.That(tok.Encode("<s>Hi</s>", false), Is.EqualTo(new[] { 1, 15359, 2 }), "special-token text maps to its id");
        Assert.That(tok.Decode([1, 22557, 1526, 2], skipSpecialTokens: true), Is.EqualTo("Hello world"));
        Assert.That(tok.Decode([1, 22557, 1526, 2], skipSpecialTokens: false), Is.EqualTo("<s> Hello world</s>"));
        Assert.That(tok.Decode([22557, 999_999, -1], false), Is.EqualTo("Hello"), "ids outside the vocabulary are skipped");
    }

    [Test]
    public void Special_tokens_of_qwen_come_from_tokenizer_config()
    {
        var dir = TokenizerTestData.MaterializeHfFolder("qwen3");
        _dirs.Add(dir);
        var tok = TokenizerLoader.Load(dir);
        Assert.That(tok.Bos, Is.Null);
        Assert.That((tok.Eos!.Content, tok.Eos.Id), Is.EqualTo(("<|im_end|>", 151645)));
        Assert.That((tok.Pad!.Content, tok.Pad.Id), Is.EqualTo(("<|endoftext|>", 151643)));
        Assert.That(tok.TokenToId("<|image_pad|>"), Is.EqualTo(151655));
        Assert.That(tok.TokenToId("<|vision_start|>"), Is.EqualTo(151652));
        Assert.That(tok.RequireTokenId("<|im_start|>"), Is.EqualTo(151644));
        Assert.Throws<KeyNotFoundException>(() => tok.RequireTokenId("<image>"));
        Assert.That(tok.VocabSize, Is.EqualTo(151669));
        Assert.That(tok.AddedTokens, Has.Count.EqualTo(26));
        Assert.That(tok.IsSpecial(151655), Is.True);
        Assert.That(tok.IsSpecial(tok.RequireTokenId("<think>")), Is.False, "<think> is an added token but not special");
        var ids = tok.Encode("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi<|im_end|>", addSpecialTokens: true);
        Assert.That(ids, Is.EqualTo(new[] { 151644, 872, 198, 151652, 151655, 151653, 13048, 151645 }));
        Assert.That(tok.Decode(ids, skipSpecialTokens: true), Is.EqualTo("user\nHi"));
    }

    [Test]
    public void Added_tokens_json_adds_llava_image_token_to_a_sentencepiece_model()
    {
        // LLaVA-1.5 ships tokenizer.model + added_tokens.json {"<image>": 32000, "<pad>": 32001}.
        var dir = NewDir();
        File.Copy(TokenizerTestData.Dir("sentencepiece", "bpe-bytefallback.model"), Path.Combine(dir, "tokenizer.model"));
        File.WriteAllText(Path.Combine(dir, "added_tokens.json"), """{"<image>": 3000, "<pad>": 3001}""");
        File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), """{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}""");
        var tok = TokenizerLoader.Load(dir);
        Assert.That(tok.VocabSize, Is.EqualTo(3002));
        Assert.That(tok.TokenToId("<image>"), Is.EqualTo(3000));
        Assert.That(tok.Pad!.Id, Is.EqualTo(3001));
        var model = ((SentencePieceTokenizer)tok).Model;
        var ids = tok.Encode("USER: <image>\nWhat is this?", addSpecialTokens: true);
        int[] want = [1, .. model.Encode("USER: "), 3000, .. model.Encode("\nWhat is this?")];
        Assert.That(ids, Is.EqualTo(want));
        Assert.That(tok.Decode(ids, skipSpecialTokens: false), Does.StartWith("<s> USER: <image>"));
        // <image> is an added, non-special token; as in transformers' legacy LlamaTokenizer the segment after it starts
        // with sentencepiece's dummy-prefix space
        Assert.That(tok.Decode(ids, skipSpecialTokens: true), Is.EqualTo("USER: <image> \nWhat is this?"));
    }

    [Test]
    public void Missing_or_unknown_files_are_clear_errors()
    {
        var empty = NewDir();
        var ex = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(empty));
        Assert.That(ex!.Message, Does.Contain("tokenizer.json"));
        Assert.Throws<DirectoryNotFoundException>(() => TokenizerLoader.Load(Path.Combine(empty, "nope")));

        var bad = NewDir();
        File.WriteAllText(Path.Combine(bad, "tokenizer.json"), """{"model": {"type": "Unigram", "vocab": []}}""");
        var nse = Assert.Throws<NotSupportedException>(() => TokenizerLoader.Load(bad));
        Assert.That(nse!.Message, Does.Contain("Unigram"));

        var junk = NewDir();
        File.WriteAllBytes(Path.Combine(junk, "tokenizer.model"), [0x0A, 0xFF, 0xFF]);
        Assert.Catch<FormatException>(() => TokenizerLoader.Load(junk));
    }
}
