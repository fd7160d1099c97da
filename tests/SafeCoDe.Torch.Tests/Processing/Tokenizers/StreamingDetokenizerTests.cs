using NUnit.Framework;
using SafeCoDe.Torch.Processing.Tokenizers;

namespace SafeCoDe.Torch.Tests.Processing.Tokenizers;

/// <summary>Streaming detokenisation: complete characters only, and the chunks add up to the full decode.</summary>
[TestFixture("llama2")]
[TestFixture("qwen3")]
[TestFixture("sp-bpe-bytefallback")]
[TestFixture("sp-unigram-bytefallback")]
public sealed class StreamingDetokenizerTests(string name)
{
    private ITokenizer _tok = null!;
    private string? _dir;

    [OneTimeSetUp]
    public void Load()
    {
        if (name.StartsWith("sp-"))
        {
            _dir = TestPaths.NewTempDir();
            File.Copy(TokenizerTestData.Dir("sentencepiece", name[3..] + ".model"), Path.Combine(_dir, "tokenizer.model"));
        }
        else _dir = TokenizerTestData.MaterializeHfFolder(name);
        _tok = TokenizerLoader.Load(_dir);
    }

    [OneTimeTearDown]
    public void Cleanup() { if (_dir is not null) Directory.Delete(_dir, true); }

    private static bool Broken(string chunk)
    {
        for (int i = 0; i < chunk.Length; i++)
        {
            if (char.IsHighSurrogate(chunk[i]) && (i + 1 >= chunk.Length || !char.IsLowSurrogate(chunk[i + 1]))) return true;
            if (char.IsLowSurrogate(chunk[i]) && (i == 0 || !char.IsHighSurrogate(chunk[i - 1]))) return true;
        }
        return false;
    }

    [Test]
    public void Chunks_are_never_broken_and_add_up_to_the_full_decode()
    {
        var failures = new List<string>();
        foreach (var s in TokenizerTestData.Corpus)
        {
            var ids = _tok.Encode(s, addSpecialTokens: true);
            var full = _tok.Decode(ids, skipSpecialTokens: true);
            var stream = _tok.CreateStreamingDetokenizer();
            var chunks = new List<string>();
            foreach (var id in ids)
            {
                var c = stream.Push(id);
                if (c.Length > 0) chunks.Add(c);
            }
            var tail = stream.Flush();
            var joined = string.Concat(chunks) + tail;
            // U+FFFD may appear in a chunk only where the text itself has one (e.g. the corpus line "\uFFFD replacement")
            bool badChar = chunks.Any(c => Broken(c) || (c.Contains('\uFFFD') && !full.Contains('\uFFFD')));
            if (joined != full || badChar || stream.Text != joined)
                failures.Add($"{TokenizerTestData.Show(s)}: full {TokenizerTestData.Show(full)} streamed {TokenizerTestData.Show(joined)} chunks {chunks.Count}{(badChar ? " BROKEN CHUNK" : "")}");
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} differ\n" + string.Join("\n", failures.Take(8)));
    }

    [TestCase("😀")]
    [TestCase("👨‍👩‍👧‍👦 family")]
    [TestCase("𠮷野家")]
    [TestCase("数据数据 and 日本語")]
    public void A_character_split_over_several_tokens_is_held_back_until_complete(string text)
    {
        var ids = _tok.Encode(text, addSpecialTokens: false);
        var stream = _tok.CreateStreamingDetokenizer();
        var emitted = new List<(int Index, string Chunk)>();
        for (int i = 0; i < ids.Length; i++)
        {
            var c = stream.Push(ids[i]);
            Assert.That(c, Does.Not.Contain("\uFFFD"), $"token {i} of {text}");
            Assert.That(Broken(c), Is.False);
            if (c.Length > 0) emitted.Add((i, c));
        }
        Assert.That(stream.Flush(), Is.Empty);
        Assert.That(stream.Text, Is.EqualTo(_tok.Decode(ids, true)));
        // every chunk ends on a boundary of the full text
        Assert.That(stream.Text, Is.EqualTo(string.Concat(emitted.Select(e => e.Chunk))));
        // where a prefix of the ids decodes to an incomplete character, that push emitted nothing
        for (int i = 0; i < ids.Length; i++)
            if (_tok.Decode(ids[..(i + 1)], true).EndsWith('\uFFFD'))
                Assert.That(emitted.Any(e => e.Index == i), Is.False, $"token {i} completes no character but text was emitted");
    }

    [Test]
    public void Emoji_bytes_are_held_back_byte_by_byte()
    {
        // "😀" is four UTF-8 bytes; feed them as single-byte tokens where the vocabulary has them.
        var byteIds = new List<int>();
        foreach (var b in System.Text.Encoding.UTF8.GetBytes("😀"))
        {
            int? id = _tok.TokenToId($"<0x{b:X2}>") ?? (name == "qwen3" ? _tok.TokenToId(((char)ByteLevelChar(b)).ToString()) : null);
            Assert.That(id, Is.Not.Null, $"byte 0x{b:X2} has no token");
            byteIds.Add(id!.Value);
        }
        var stream = _tok.CreateStreamingDetokenizer();
        Assert.That(stream.Push(byteIds[0]), Is.Empty);
        Assert.That(stream.Push(byteIds[1]), Is.Empty);
        Assert.That(stream.Push(byteIds[2]), Is.Empty);
        var last = stream.Push(byteIds[3]);
        Assert.That(stream.Text.TrimStart(), Is.EqualTo("😀"));
        Assert.That(last.TrimStart(), Is.EqualTo("😀"));
    }

    private static int ByteLevelChar(byte b)
        => b is >= (byte)'!' and <= (byte)'~' or >= 0xA1 and <= 0xAC or >= 0xAE ? b : 256 + Enumerable.Range(0, b).Count(x => !(x is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE));
}
