using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Torch.Tests.Hardening;

/// <summary>Hostile files at every file boundary: FIFOs, devices, links out of the folder, strict formats, huge indexes.</summary>
[NonParallelizable]
public class HostileFileTests
{
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = TestPaths.NewTempDir();
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    [TestCase("config.json")]
    [TestCase("tokenizer.json")]
    [TestCase("preprocessor_config.json")]
    [TestCase("model.safetensors")]
    public void AFifoInAModelFolder_IsRefusedWithoutBlocking(string file)
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        File.Delete(Path.Combine(model, file));
        Hostile.MkFifo(Path.Combine(model, file));
        var e = Hostile.Run("fifo " + file, () =>
        {
            if (file.StartsWith("tokenizer")) TokenizerLoader.Load(model);
            else ModelDirectory.Open(model);
        });
        Assert.That(e, Is.Not.Null);
        Assert.That(e!.Message, Does.Contain("FIFO"));
    }

    [Test]
    public void AFifoOrADeviceAsTheImage_IsRefused()
    {
        var fifo = Path.Combine(_dir, "image.png");
        Hostile.MkFifo(fifo);
        var e1 = Hostile.Run("fifo image", () => ImageDecoder.ReadBytes(fifo));
        Assert.That(e1, Is.TypeOf<ImageDecodeException>().And.Message.Contains("FIFO"));
        var e2 = Hostile.Run("/dev/zero image", () => ImageDecoder.ReadBytes("/dev/zero"));
        Assert.That(e2, Is.TypeOf<ImageDecodeException>().And.Message.Contains("character device"));
    }

    [Test]
    public void BoundedFile_NeverTrustsTheReportedLength()
    {
        // /proc files report length 0 and still have content: the cap applies to what is read
        var e = Assert.Throws<InputLimitException>(() => BoundedFile.ReadAllBytes("/proc/self/maps", 16, "probe"));
        Assert.That(e!.Message, Does.Contain("16 bytes limit"));
        Assert.That(BoundedFile.ReadAllBytes("/proc/self/status", 1 << 20, "probe").Length, Is.GreaterThan(0));
        Assert.That(BoundedFile.FileKind("/dev/zero"), Is.EqualTo("character device"));
    }

    [Test]
    public void ALinkOutOfTheModelFolder_IsRefused_AndNoFileBytesAreEchoed()
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        File.Delete(Path.Combine(model, "model.safetensors"));
        File.CreateSymbolicLink(Path.Combine(model, "model.safetensors"), "/etc/passwd");
        var e = Hostile.Run("link to /etc/passwd", () => ModelDirectory.Open(model));
        Assert.That(e, Is.TypeOf<InputFileException>().And.Message.Contains("outside the model folder"));

        // allowed by option: the file is then read as what it is, and the error shows none of its bytes
        var saved = InputLimits.Current;
        InputLimits.Current = saved with { AllowExternalLinks = true };
        try
        {
            var e2 = Hostile.Run("link allowed", () => ModelDirectory.Open(model));
            Assert.That(e2, Is.InstanceOf<SafetensorsFormatException>());
            var first8 = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes("/etc/passwd").AsSpan(0, 8));
            Assert.That(e2!.Message, Does.Not.Contain(first8.ToString()), "no number decoded from the file's first bytes");
            Assert.That(e2.Message, Does.Not.Contain("root"));
        }
        finally { InputLimits.Current = saved; }
    }

    [Test]
    public void AHubCacheLinkIntoBlobs_IsAllowed()
    {
        var repo = Path.Combine(_dir, "models--org--tiny");
        var blobs = Directory.CreateDirectory(Path.Combine(repo, "blobs")).FullName;
        var snap = Directory.CreateDirectory(Path.Combine(repo, "snapshots", "abc123")).FullName;
        foreach (var f in Directory.GetFiles(Hostile.DefaultModel))
        {
            var blob = Path.Combine(blobs, Guid.NewGuid().ToString("N"));
            File.Copy(f, blob);
            File.CreateSymbolicLink(Path.Combine(snap, Path.GetFileName(f)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }
        Assert.That(ModelDirectory.Open(snap).Config.ModelType, Is.EqualTo(ModelFamilies.LlavaNext));
    }

    [Test]
    public void DuplicateKeysInASafetensorsHeader_AreRejected()
    {
        // the same tensor entry says I64 and F32: last-wins parsing would read the data under either type
        var header = "{\"w\":{\"dtype\":\"I64\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        var path = Path.Combine(_dir, "dup.safetensors");
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.That(e!.Message, Does.Contain("w.dtype").And.Contain("appears twice"));
    }

    [Test]
    public void AHugeShardIndex_IsReadInLinearTime()
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        var st = SafetensorsFile.Open(Path.Combine(model, "model.safetensors"));
        var map = new JsonObject();
        foreach (var n in st.Entries.Keys) map[n] = "model.safetensors";
        int extra = Hostile.Nightly ? 1_000_000 : 150_000;
        for (int i = 0; i < extra; i++) map[$"extra.{i}.weight"] = "model.safetensors";
        File.WriteAllText(Path.Combine(model, "model.safetensors.index.json"), new JsonObject { ["weight_map"] = map }.ToJsonString());
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = Hostile.Run("index with extra entries", () => ModelDirectory.Open(model));
        Assert.That(e, Is.InstanceOf<SafetensorsFormatException>().And.Message.Contains("does not contain it"));
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), $"{extra} entries");
    }

    [Test]
    public void DuplicateKeysInAShardIndex_AreRejected()
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        File.WriteAllText(Path.Combine(model, "model.safetensors.index.json"),
            "{\"weight_map\":{\"a\":\"model.safetensors\",\"a\":\"other.safetensors\"}}");
        var e = Assert.Throws<ConfigException>(() => ModelDirectory.Open(model));
        Assert.That(e!.Message, Does.Contain("appears twice"));
    }

    [Test]
    public void InvalidUtf8InATokenizerFile_IsAnError()
    {
        var model = Hostile.CopyDefaultModel(Path.Combine(_dir, "m"));
        var path = Path.Combine(model, "tokenizer.json");
        var bytes = File.ReadAllBytes(path);
        int at = Array.IndexOf(bytes, (byte)'"', 100);
        var bad = bytes.Take(at + 1).Concat(new byte[] { 0xC3, 0x28, 0xFF }).Concat(bytes.Skip(at + 1)).ToArray();
        File.WriteAllBytes(path, bad);
        var e = Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.Load(model));
        Assert.That(e!.Message, Does.Contain("not valid UTF-8"));
    }
}

/// <summary>libtorch's own errors reach callers summarised: out of memory says how much and where, no backtrace.</summary>
public class NativeErrorTests
{
    [Test]
    public void ARealLibtorchAllocationFailure_IsSummarised()
    {
        Exception? caught = null;
        try
        {
            using var t = TorchSharp.torch.empty([1L << 50], TorchSharp.torch.ScalarType.Byte);
        }
        catch (Exception e) { caught = e; }
        Assert.That(caught, Is.Not.Null);
        Assert.That(NativeErrors.IsNative(caught!) || caught is OutOfMemoryException, Is.True, caught!.GetType().FullName);
        Assert.That(NativeErrors.IsOutOfMemory(caught), Is.True, caught.Message);
        var line = NativeErrors.Summarize(caught);
        Assert.That(line, Does.StartWith("out of memory: libtorch asked for ").And.EndWith(" on the CPU"));
        Assert.That(line, Does.Contain("1024 TiB"), "2^50 bytes");
        Assert.That(line, Does.Not.Contain("\n").And.Not.Contain("frame #"));
    }

    [Test]
    public void CudaOutOfMemoryText_NamesTheSizeAndTheDevice()
    {
        var e = new System.Runtime.InteropServices.ExternalException(
            "CUDA out of memory. Tried to allocate 40.00 GiB. GPU 0 has a total capacity of 139.81 GiB of which 2.00 GiB is free.\nException raised from malloc at c10/cuda/CUDACachingAllocator.cpp:1234 (most recent call first):\nframe #0: ...");
        Assert.That(NativeErrors.Summarize(e), Is.EqualTo("out of memory: libtorch asked for 40.00 GiB on cuda:0"));
        var other = new System.Runtime.InteropServices.ExternalException("shape '[2, 3]' is invalid for input of size 7\nException raised from infer_size at x.cpp:1\nframe #0: y");
        Assert.That(NativeErrors.Summarize(other), Is.EqualTo("shape '[2, 3]' is invalid for input of size 7"));
    }
}
