using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Torch.Tests.Hardening;

/// <summary>Seeded mutants of the default model's config, preprocessor config, tokenizer and weights, plus image bombs.</summary>
[NonParallelizable]
public class MutantTests
{
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = TestPaths.NewTempDir();
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    private static readonly JsonNode?[] HostileValues =
    [
        JsonValue.Create(0), JsonValue.Create(-1), JsonValue.Create(1_000_000_000), JsonValue.Create(int.MaxValue),
        JsonValue.Create(1e300), JsonValue.Create(-1e-300), JsonValue.Create("x"), null, new JsonArray(), new JsonObject(),
        JsonValue.Create(1_000_000), JsonValue.Create(8000), JsonValue.Create(3), JsonValue.Create(true),
    ];

    private static void Load(string model)
    {
        using var engine = SafeCoDeEngine.Load(model, new EngineOptions { Device = DeviceRequest.Cpu });
    }

    [TestCase("text_config.hidden_size", 1_000_000_000)]
    [TestCase("text_config.num_hidden_layers", 1_000_000)]
    [TestCase("text_config.vocab_size", 2_000_000_000)]
    [TestCase("text_config.max_position_embeddings", 2_000_000_000)]
    [TestCase("text_config.rope_theta", 0)]
    [TestCase("vision_config.patch_size", 0)]
    [TestCase("vision_config.image_size", 100_000)]
    [TestCase("image_token_index", int.MaxValue)]
    [TestCase("text_config.hidden_size", 128)]
    [TestCase("text_config.intermediate_size", 100_000)]
    public void HostileConfigValues_FailBeforeAllocating(string field, double value)
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        Mutate(Path.Combine(model, "config.json"), field, JsonValue.Create(value));
        long before = Hostile.PeakRss();
        var e = Hostile.Run($"config {field}={value}", () => Load(model));
        Assert.That(e, Is.InstanceOf<CheckpointException>(), "a config error naming the file and field");
        Assert.That(e!.Message, Does.Contain("config.json"));
        Assert.That(Hostile.PeakRss() - before, Is.LessThan(512L << 20), "nothing large was allocated");
    }

    [TestCase("size.shortest_edge", 8000)]
    [TestCase("crop_size.height", 0)]
    [TestCase("image_grid_pinpoints", 1_000_000)]
    [TestCase("image_std", 0)]
    [TestCase("rescale_factor", 1e300)]
    public void HostilePreprocessorValues_AreRefused(string field, double value)
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        var path = Path.Combine(model, "preprocessor_config.json");
        if (field == "image_grid_pinpoints") { var j = JsonNode.Parse(File.ReadAllText(path))!; j["image_grid_pinpoints"] = new JsonArray(new JsonArray(value, value)); File.WriteAllText(path, j.ToJsonString()); }
        else if (field == "image_std") { var j = JsonNode.Parse(File.ReadAllText(path))!; j["image_std"] = new JsonArray(0, 0, 0); File.WriteAllText(path, j.ToJsonString()); }
        else Mutate(path, field, JsonValue.Create(value));
        var image = ImageDecoder.Load(Path.Combine(Hostile.DefaultModel, "example.png"));
        long before = Hostile.PeakRss();
        var e = Hostile.Run($"preprocessor {field}={value}", () =>
        {
            var processor = ImageProcessors.For(ModelDirectory.Open(model));
            using var p = processor.Process([image]);
        });
        Assert.That(e, Is.Not.Null, "refused");
        Assert.That(Hostile.PeakRss() - before, Is.LessThan(512L << 20), "before allocating much");
    }

    [Test]
    public void SeededConfigMutants_EndCleanly()
    {
        var rng = new Random(Hostile.Seed);
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(Hostile.DefaultModel, "config.json")))!;
        var paths = Leaves(original, "").ToList();
        int n = Hostile.Count(12), failed = 0;
        for (int i = 0; i < n; i++)
        {
            var model = Path.Combine(_dir, "c" + i);
            Hostile.CopyDefaultModel(model);
            var field = paths[rng.Next(paths.Count)];
            var value = HostileValues[rng.Next(HostileValues.Length)];
            Mutate(Path.Combine(model, "config.json"), field, value?.DeepClone());
            if (Hostile.Run($"config mutant {i}: {field}={value?.ToJsonString() ?? "null"}", () => Load(model)) is not null) failed++;
            Directory.Delete(model, true);
        }
        TestContext.Out.WriteLine($"{failed}/{n} config mutants refused, the rest loaded");
    }

    [Test]
    public void SeededPreprocessorMutants_EndCleanly()
    {
        var rng = new Random(Hostile.Seed + 1);
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(Hostile.DefaultModel, "preprocessor_config.json")))!;
        var paths = Leaves(original, "").ToList();
        var image = ImageDecoder.Load(Path.Combine(Hostile.DefaultModel, "example.png"));
        for (int i = 0; i < Hostile.Count(8); i++)
        {
            var model = Path.Combine(_dir, "p" + i);
            Hostile.CopyDefaultModel(model);
            var field = paths[rng.Next(paths.Count)];
            var value = HostileValues[rng.Next(HostileValues.Length)];
            Mutate(Path.Combine(model, "preprocessor_config.json"), field, value?.DeepClone());
            Hostile.Run($"preprocessor mutant {i}: {field}={value?.ToJsonString() ?? "null"}", () =>
            {
                var processor = ImageProcessors.For(ModelDirectory.Open(model));
                using var p = processor.Process([image]);
            });
            Directory.Delete(model, true);
        }
    }

    [Test]
    public void HostileTokenizerFiles_FailWithTypedErrors()
    {
        var cases = new (string Name, Action<JsonNode> Edit)[]
        {
            ("merges null", j => j["model"]!["merges"] = null),
            ("added token without id", j => j["added_tokens"]!.AsArray()[0]!.AsObject().Remove("id")),
            ("negative added id", j => j["added_tokens"]!.AsArray()[0]!["id"] = -5),
            ("added id 2e9", j => j["added_tokens"]!.AsArray()[0]!["id"] = 2_000_000_000),
            ("added id 2^31-1", j => j["added_tokens"]!.AsArray()[0]!["id"] = int.MaxValue),
            ("vocab id string", j => j["model"]!["vocab"]!.AsObject().First().Value!.ReplaceWith("x")),
            ("vocab id 2e9", j => { var v = j["model"]!["vocab"]!.AsObject(); v[v.First().Key] = 2_000_000_000; }),
            ("model null", j => j["model"] = null),
            ("added_tokens null entry", j => j["added_tokens"]!.AsArray().Add(null)),
            ("bad regex", j => j["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "(" }, ["behavior"] = "Isolated", ["invert"] = false }),
        };
        foreach (var (name, edit) in cases)
        {
            var model = Path.Combine(_dir, "t-" + name.Replace(' ', '_'));
            Hostile.CopyDefaultModel(model);
            var path = Path.Combine(model, "tokenizer.json");
            var j = JsonNode.Parse(File.ReadAllText(path))!;
            edit(j);
            File.WriteAllText(path, j.ToJsonString());
            var e = Hostile.Run("tokenizer " + name, () => TokenizerLoader.Load(model).Encode("hello world", true));
            Assert.That(e, Is.TypeOf<TokenizerFormatException>(), name);
        }
    }

    [Test]
    public void ACatastrophicTokenizerRegex_TimesOutWithAClearError()
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        var path = Path.Combine(model, "tokenizer.json");
        var j = JsonNode.Parse(File.ReadAllText(path))!;
        j["pre_tokenizer"] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "(a+)+$" }, ["behavior"] = "Isolated", ["invert"] = false };
        File.WriteAllText(path, j.ToJsonString());
        var saved = InputLimits.Current;
        InputLimits.Current = saved with { RegexTimeout = TimeSpan.FromMilliseconds(300) };
        try
        {
            var tok = TokenizerLoader.Load(model);
            var e = Hostile.Run("regex (a+)+$", () => tok.Encode(new string('a', 40) + "!", false));
            Assert.That(e, Is.TypeOf<InputLimitException>().And.Message.Contains("regular expression"));
        }
        finally { InputLimits.Current = saved; }
    }

    [Test]
    public void SeededTokenizerByteMutants_EndCleanly()
    {
        var rng = new Random(Hostile.Seed + 2);
        var bytes = File.ReadAllBytes(Path.Combine(Hostile.DefaultModel, "tokenizer.json"));
        for (int i = 0; i < Hostile.Count(6); i++)
        {
            var model = Path.Combine(_dir, "tb" + i);
            Hostile.CopyDefaultModel(model);
            var m = (byte[])bytes.Clone();
            int flips = 1 + rng.Next(8);
            for (int k = 0; k < flips; k++) m[rng.Next(Math.Min(m.Length, 4096))] = (byte)rng.Next(256); // the structural head of the file
            if (rng.Next(3) == 0) m = m[..rng.Next(m.Length)];
            File.WriteAllBytes(Path.Combine(model, "tokenizer.json"), m);
            Hostile.Run($"tokenizer byte mutant {i}", () => TokenizerLoader.Load(model).Encode("hello <s> world", true));
            Directory.Delete(model, true);
        }
    }

    [Test]
    public void SeededSafetensorsMutants_EndCleanly()
    {
        var rng = new Random(Hostile.Seed + 3);
        var bytes = File.ReadAllBytes(Path.Combine(Hostile.DefaultModel, "model.safetensors"));
        ulong headerLen = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        for (int i = 0; i < Hostile.Count(10); i++)
        {
            var m = (byte[])bytes.Clone();
            int flips = 1 + rng.Next(6);
            for (int k = 0; k < flips; k++) m[rng.Next((int)Math.Min(headerLen + 8, (ulong)m.Length))] = (byte)rng.Next(256);
            var path = Path.Combine(_dir, $"st{i}.safetensors");
            File.WriteAllBytes(path, m);
            Hostile.Run($"safetensors mutant {i}", () => SafetensorsFile.Open(path));
        }
    }

    [Test]
    public void AnAllBlack8000x8000Png_IsRefusedFromItsHeader()
    {
        var png = BlackPng(8000, 8000);
        Assert.That(png.Length, Is.LessThan(1 << 20), "a small file");
        long before = Hostile.PeakRss();
        var e = Hostile.Run("8000x8000 black png", () => ImageDecoder.Decode(png, "bomb.png"));
        Assert.That(e, Is.TypeOf<ImageDecodeException>().And.Message.Contains("MaxDecodedBytes"));
        Assert.That(Hostile.PeakRss() - before, Is.LessThan(256L << 20));
    }

    [Test]
    public void SeededImageMutants_EndCleanly()
    {
        var rng = new Random(Hostile.Seed + 4);
        var bytes = File.ReadAllBytes(Path.Combine(Hostile.DefaultModel, "example.png"));
        for (int i = 0; i < Hostile.Count(20); i++)
        {
            var m = (byte[])bytes.Clone();
            int flips = 1 + rng.Next(10);
            for (int k = 0; k < flips; k++) m[rng.Next(m.Length)] = (byte)rng.Next(256);
            if (rng.Next(4) == 0) m = m[..rng.Next(m.Length)];
            Hostile.Run($"image mutant {i}", () => ImageDecoder.Decode(m, $"mutant{i}.png"));
        }
    }

    /// <summary>A valid PNG of the given size, all black (8-bit grey), compressed to a few hundred KB.</summary>
    public static byte[] BlackPng(int width, int height)
    {
        using var idat = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var row = new byte[width + 1];
            for (int y = 0; y < height; y++) z.Write(row);
        }
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 0;
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", idat.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        var len = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var td = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(td);
        var crc = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(td));
        s.Write(crc);
    }

    private static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xFFFFFFFF;
    }

    private static IEnumerable<string> Leaves(JsonNode node, string prefix)
    {
        if (node is JsonObject o)
        {
            foreach (var (k, v) in o)
            {
                var p = prefix.Length == 0 ? k : prefix + "." + k;
                if (v is JsonObject) foreach (var x in Leaves(v, p)) yield return x;
                else yield return p;
            }
        }
    }

    private static void Mutate(string path, string dotted, JsonNode? value)
    {
        var root = JsonNode.Parse(File.ReadAllText(path))!;
        var parts = dotted.Split('.');
        JsonNode cur = root;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            cur[parts[i]] ??= new JsonObject();
            cur = cur[parts[i]]!;
        }
        cur[parts[^1]] = value;
        File.WriteAllText(path, root.ToJsonString());
    }
}
