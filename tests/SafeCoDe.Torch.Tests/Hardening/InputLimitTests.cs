using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Torch.Tests.Hardening;

/// <summary>
/// Issue 33, items 4, 6 and 7: the new limits and file primitives each with a case, the crash (a null Sequence part
/// in tokenizer.json) and the unclear messages (null prompt/options, empty refusal phrases, --options type names,
/// --out on a file, verify's native backtrace, unbounded safescenes counts), each a clean typed error.
/// </summary>
[NonParallelizable]
public class InputLimitTests
{
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = TestPaths.NewTempDir();
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [TestCase("pre_tokenizer", "pretokenizers")]
    [TestCase("normalizer", "normalizers")]
    [TestCase("decoder", "decoders")]
    [TestCase("post_processor", "processors")]
    public void ASequenceWithANullPart_IsATokenizerFormatError(string field, string list)
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        var path = Path.Combine(model, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        foreach (var parts in new JsonNode?[] { new JsonArray((JsonNode?)null), null, JsonValue.Create(3) })
        {
            json[field] = new JsonObject { ["type"] = "Sequence", [list] = parts?.DeepClone() };
            File.WriteAllText(path, json.ToJsonString());
            var e = Hostile.Run($"{field} Sequence {parts?.ToJsonString() ?? "missing"}", () => TokenizerLoader.Load(model).Encode("hello there", true));
            Assert.That(e, Is.TypeOf<TokenizerFormatException>());
            Assert.That(e!.Message, Does.Contain(field).And.Contain(list));
        }
    }

    [Test]
    public void ANullPromptOrNullOptions_IsATypedError()
    {
        using var engine = SafeCoDeEngine.Load(Hostile.DefaultModel, new EngineOptions { Device = DeviceRequest.Cpu });
        var image = Path.Combine(Hostile.DefaultModel, "example.png");
        var e1 = Assert.ThrowsAsync<PromptException>(() => engine.GenerateAsync(new SafeCoDeRequest { Prompt = null!, ImagePath = image }));
        Assert.That(e1!.Message, Does.Contain("Prompt is null"));
        var e2 = Assert.ThrowsAsync<ArgumentException>(() => engine.GenerateAsync(new SafeCoDeRequest { Prompt = "hi", ImagePath = image, Options = null! }));
        Assert.That(e2!.Message, Does.Contain("Options is null"));
        Assert.That(Assert.Throws<InputLimitException>(() => (SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { RefusalPhrases = null! }).Validate())!.Message, Does.Contain("not null"));
    }

    [TestCase("")]
    [TestCase("   ")]
    public void AnEmptyRefusalPhrase_IsRefused(string phrase)
    {
        var o = SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { RefusalPhrases = ["I cannot help with that.", phrase] };
        var e = Assert.Throws<InputLimitException>(() => o.Validate());
        Assert.That(e!.Message, Does.Contain("refusal phrase 1 is empty"));
        var file = Path.Combine(_dir, "o.json");
        File.WriteAllText(file, "{\"refusal_phrases\": [\"\"]}");
        var (code, _, err) = Cli("generate", "--model", Hostile.DefaultModel, "--image", "x.png", "--prompt", "p", "--options", file);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain("refusal phrase 0 is empty"));
    }

    [TestCase("{\"max_new_tokens\": \"many\"}", "max_new_tokens must be an integer, not a string")]
    [TestCase("{\"alpha\": [1]}", "alpha must be a number, not an array")]
    [TestCase("{\"greedy\": 3}", "greedy must be a boolean, not a number")]
    [TestCase("{\"refusal_phrases\": 5}", "refusal_phrases must be an array of strings, not a number")]
    [TestCase("{\"alpah\": 1}", "unknown field 'alpah'")]
    public void OptionsFileErrors_NameTheField_NotADotNetType(string json, string expected)
    {
        var file = Path.Combine(_dir, "o.json");
        File.WriteAllText(file, json);
        var (code, _, err) = Cli("generate", "--model", Hostile.DefaultModel, "--image", "x.png", "--prompt", "p", "--options", file);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain(expected));
        Assert.That(err, Does.Not.Contain("System.").And.Not.Contain("`1"));
    }

    [TestCase("safescenes", "--out")]
    [TestCase("safescenes", "--train")]
    [TestCase("make-random", "--out")]
    [TestCase("eval merge", "--out")]
    public void AnOutFolderThatIsAnExistingFile_IsAUsageErrorSayingSo(string command, string option)
    {
        var file = Path.Combine(_dir, "taken");
        File.WriteAllText(file, "x");
        string[] args = command switch
        {
            "make-random" => ["make-random", "--config", Path.Combine(Hostile.DefaultModel, "config.json"), option, file],
            "eval merge" => ["eval", "merge", _dir, option, file],
            _ => ["safescenes", option, file, "--count", "2"],
        };
        var (code, _, err) = Cli(args);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain("is an existing file").And.Not.Contain("not found"));
    }

    [TestCase("--count", "2147483647")]
    [TestCase("--count", "0")]
    [TestCase("--renders", "1000000")]
    [TestCase("--renders", "-1")]
    [TestCase("--object-renders", "-1")]
    [TestCase("--clutter-renders", "-5")]
    public void SafeScenesSizes_AreBounded_BeforeAnythingIsWritten(string option, string value)
    {
        var outDir = Path.Combine(_dir, "world");
        var (code, _, err) = Cli("safescenes", "--out", outDir, "--train", Path.Combine(_dir, "train"), option, value);
        Assert.That(code, Is.EqualTo(2), err);
        Assert.That(err, Does.Contain(option).And.Contain("InputLimits.MaxScene"));
        Assert.That(Directory.Exists(outDir), Is.False, "nothing written");
        Assert.Throws<ArgumentOutOfRangeException>(() => SafeCoDe.Eval.SafeScenes.SafeScenesWorld.WriteEvaluation(1, outDir, int.MaxValue));
        Assert.Throws<ArgumentOutOfRangeException>(() => SafeCoDe.Eval.SafeScenes.SafeScenesWorld.TrainingExamples(1, -1, null));
    }

    /// <summary>A reference file with the given prompt and continuation lengths (the tensors are tiny where the check does not read them).</summary>
    private string Reference(long promptTokens, long totalTokens, bool badPixels = false)
    {
        var path = Path.Combine(_dir, $"ref-{promptTokens}-{totalTokens}.safetensors");
        using var scope = TorchSharp.torch.NewDisposeScope();
        var tensors = new Dictionary<string, TorchSharp.torch.Tensor>
        {
            ["input_ids"] = TorchSharp.torch.ones([1, promptTokens], TorchSharp.torch.ScalarType.Int64),
            ["logits"] = TorchSharp.torch.zeros([1, promptTokens, 4]),
        };
        if (totalTokens > promptTokens) tensors["generated_ids"] = TorchSharp.torch.ones([1, totalTokens], TorchSharp.torch.ScalarType.Int64);
        if (badPixels)
        {
            // tiles of two channels: the vision tower's convolution wants three, and libtorch refuses with a C++ backtrace
            tensors["pixel_values"] = TorchSharp.torch.zeros([1, 3, 2, 5, 7]);
            tensors["image_sizes"] = TorchSharp.torch.tensor(new long[] { 5, 7 }).reshape(1, 2);
        }
        SafetensorsWriter.Write(path, tensors);
        return path;
    }

    [Test]
    public void VerifyAskingMoreTokensThanThePositions_IsRefusedUpFront()
    {
        foreach (var (prompt, total) in new[] { (20_000L, 20_000L), (8L, 200_000L) })
        {
            var reference = Reference(prompt, total);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var (code, o, _) = Cli("verify", "--model", Hostile.DefaultModel, "--reference", reference);
            Assert.That(code, Is.EqualTo(1));
            Assert.That(o.Trim(), Does.StartWith("verify: FAIL").And.Contain($"{total:N0} tokens").And.Contain("2,048 positions"));
            Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "before the model runs");
        }
    }

    [Test]
    public void VerifyErrors_AreOneLine_WithoutLibtorchsBacktrace()
    {
        var (code, o, _) = Cli("verify", "--model", Hostile.DefaultModel, "--reference", Reference(6, 6, badPixels: true));
        TestContext.Out.WriteLine(o);
        Assert.That(code, Is.EqualTo(1));
        var lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1));
        Assert.That(lines[0], Does.StartWith("verify: FAIL").And.Not.Contain("frame #").And.Not.Contain("Exception raised from"));
    }

    [Test]
    public void BoundedLines_SkipAnOverlongLine_AndReadTheRest()
    {
        var text = "first\n" + new string('x', 5000) + "\nthird\r\nlast";
        var lines = BoundedLines.Read(new MemoryStream(Encoding.UTF8.GetBytes(text)), 1000).ToList();
        Assert.That(lines.Select(l => l.Text), Is.EqualTo(new[] { "first", null, "third", "last" }));
        Assert.That(lines[1].Problem, Does.Contain("line 2").And.Contain("MaxJsonlLineBytes"));
        Assert.That(lines.Select(l => l.Terminated), Is.EqualTo(new[] { true, true, true, false }));
        Assert.That(lines[3].Offset, Is.EqualTo(text.Length - 4));
        var chars = BoundedLines.Read(new StringReader(text), 1000).ToList();
        Assert.That(chars.Select(l => l.Text), Is.EqualTo(new[] { "first", null, "third", "last" }));
    }

    [Test]
    public void TheFolderWalk_StopsAtItsDepth_AndSkipsLinkedFolders()
    {
        var deep = _dir;
        for (int i = 0; i < 5; i++) deep = Directory.CreateDirectory(Path.Combine(deep, "d" + i)).FullName;
        File.WriteAllText(Path.Combine(deep, "x.parquet"), "");
        Directory.CreateSymbolicLink(Path.Combine(_dir, "loop"), _dir);
        Assert.That(SafeFiles.Walk(_dir, "*.parquet"), Has.Count.EqualTo(1), "the loop is not entered");
        var saved = InputLimits.Current;
        InputLimits.Current = saved with { MaxWalkDepth = 3 };
        try { Assert.That(Assert.Throws<InputLimitException>(() => SafeFiles.Walk(_dir, "*.parquet"))!.Message, Does.Contain("MaxWalkDepth")); }
        finally { InputLimits.Current = saved; }
    }

    [Test]
    public void OpenRegular_RefusesAFifoAtOnce_AndReadsARegularFile()
    {
        var fifo = Path.Combine(_dir, "p");
        Hostile.MkFifo(fifo);
        var e = Hostile.Run("open a FIFO", () => SafeFiles.OpenRegular(fifo).Dispose());
        Assert.That(e, Is.TypeOf<InputFileException>().And.Message.Contains("FIFO"));
        var file = Path.Combine(_dir, "f");
        File.WriteAllText(file, "abc");
        using var s = SafeFiles.OpenRegular(file);
        Assert.That(new StreamReader(s).ReadToEnd(), Is.EqualTo("abc"));
        Assert.That(SafeFiles.RealPath(Path.Combine(_dir, "..", Path.GetFileName(_dir), "f")), Is.EqualTo(SafeFiles.RealPath(file)));
    }
}
