using System.Buffers.Binary;
using System.Text.Json;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Checkpoints;

/// <summary>
/// Loading a multi-GB sharded checkpoint one tensor at a time keeps host memory bounded by about one tensor.
/// The shards are sparse files (header written, then extended with SetLength), so they cost no disk space; each
/// tensor's first and last element carry a marker value so misplaced offsets would show.
/// </summary>
public class ShardedLoadMemoryTests
{
    private const long MiB = 1024 * 1024;
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private sealed record Spec(string Name, SafetensorsDType DType, long[] Shape, int Marker)
    {
        public long Bytes => Shape.Aggregate(1L, (a, b) => a * b) * SafetensorsFile.ElementSize(DType);
    }

    /// <summary>Writes a sparse shard: real header, data extended with zeros, markers ±Marker at each tensor's ends.</summary>
    private static long WriteSparseShard(string path, IReadOnlyList<Spec> specs)
    {
        using var ms = new MemoryStream();
        var offsets = new Dictionary<string, (long Begin, long End)>();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            w.WriteString("format", "pt");
            w.WriteEndObject();
            long at = 0;
            foreach (var s in specs)
            {
                offsets[s.Name] = (at, at + s.Bytes);
                w.WriteStartObject(s.Name);
                w.WriteString("dtype", s.DType.ToString());
                w.WriteStartArray("shape");
                foreach (var d in s.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(at);
                w.WriteNumberValue(at + s.Bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                at += s.Bytes;
            }
            w.WriteEndObject();
        }
        while (ms.Length % 8 != 0) ms.WriteByte((byte)' ');
        var header = ms.ToArray();
        long dataStart = 8 + header.Length;
        long dataLength = specs.Sum(s => s.Bytes);

        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        fs.Write(len);
        fs.Write(header);
        fs.SetLength(dataStart + dataLength); // sparse: no blocks allocated for the zeros
        foreach (var s in specs)
        {
            var (begin, end) = offsets[s.Name];
            int es = SafetensorsFile.ElementSize(s.DType);
            foreach (var (pos, value) in new[] { (begin, (float)s.Marker), (end - es, (float)-s.Marker) })
            {
                var b = new byte[es];
                if (s.DType == SafetensorsDType.F32) BinaryPrimitives.WriteSingleLittleEndian(b, value);
                else BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16)); // exact in BF16
                fs.Position = dataStart + pos;
                fs.Write(b);
            }
        }
        return dataLength;
    }

    private static long StatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":"))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0]);
        throw new InvalidOperationException($"/proc/self/status has no {field}");
    }

    /// <summary>Resets VmHWM to the current RSS (writing 5 to clear_refs); false where that is not possible.</summary>
    private static bool TryResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    [Test]
    public void ShardedMultiGigabyteCheckpoint_LoadsOneTensorAtATime_WithBoundedHostMemory()
    {
        Assume.That(OperatingSystem.IsLinux(), "RSS is read from /proc");

        var shard1 = new List<Spec> { new("embed.small", SafetensorsDType.F32, [16, 8], 1) };
        for (int i = 0; i < 4; i++) shard1.Add(new($"layers.{i}.w", SafetensorsDType.F32, [98304, 1024], i + 2));      // 384 MiB each
        var shard2 = new List<Spec>();
        for (int i = 4; i < 7; i++) shard2.Add(new($"layers.{i}.w", SafetensorsDType.BF16, [262144, 1024], i + 2));     // 512 MiB each
        shard2.Add(new("layers.7.w", SafetensorsDType.BF16, [131072, 1024], 9));                                         // 256 MiB
        var shards = new Dictionary<string, List<Spec>>
        {
            ["model-00001-of-00002.safetensors"] = shard1,
            ["model-00002-of-00002.safetensors"] = shard2,
        };
        long total = 0;
        foreach (var (file, specs) in shards) total += WriteSparseShard(Path.Combine(_dir, file), specs);
        var specsByName = shards.Values.SelectMany(s => s).ToDictionary(s => s.Name);
        long largest = specsByName.Values.Max(s => s.Bytes);
        Assert.That(total, Is.GreaterThanOrEqualTo(3_000_000_000L), "the checkpoint is multi-GB");
        Assert.That(largest, Is.EqualTo(512 * MiB));

        using (var indexStream = File.Create(Path.Combine(_dir, "model.safetensors.index.json")))
        using (var w = new Utf8JsonWriter(indexStream))
        {
            w.WriteStartObject();
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", total);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (var (file, specs) in shards)
                foreach (var s in specs.OrderBy(s => s.Marker % 3)) // interleaved order, not file order
                    w.WriteString(s.Name, file);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        // Parse the index as a loader would.
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir, "model.safetensors.index.json")));
        long indexTotal = index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64();
        var weightMap = index.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => (Name: p.Name, File: p.Value.GetString()!)).ToList();
        Assert.That(weightMap.Select(w => w.Name), Is.EquivalentTo(specsByName.Keys));
        var files = weightMap.Select(w => w.File).Distinct().ToDictionary(f => f, f => SafetensorsFile.Open(Path.Combine(_dir, f)));
        Assert.That(files.Values.Sum(f => f.Entries.Values.Sum(e => e.ByteLength)), Is.EqualTo(indexTotal));
        Assert.That(files.Values.All(f => f.Metadata["format"] == "pt"), Is.True);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long baselineKb = StatusKb("VmRSS");
        bool hwmReset = TryResetPeakRss();
        long hwmAfterResetKb = hwmReset ? StatusKb("VmHWM") : 0;
        long maxSampledKb = baselineKb;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int loaded = 0;

        foreach (var (name, file) in weightMap)
        {
            var spec = specsByName[name];
            using var scope = NewDisposeScope();
            var t = files[file].Read(name, ScalarType.BFloat16);
            Assert.That(t.dtype, Is.EqualTo(ScalarType.BFloat16), name);
            Assert.That(t.shape, Is.EqualTo(spec.Shape), name);
            var flat = t.view(-1);
            long n = flat.shape[0];
            Assert.That(flat[0].to(ScalarType.Float32).item<float>(), Is.EqualTo((float)spec.Marker), $"{name}: first element");
            Assert.That(flat[n - 1].to(ScalarType.Float32).item<float>(), Is.EqualTo((float)-spec.Marker), $"{name}: last element");
            var mid = t.narrow(0, spec.Shape[0] / 2, Math.Min(2, spec.Shape[0] / 2)).to(ScalarType.Float32);
            Assert.That(mid.abs().sum().item<float>(), Is.EqualTo(0f), $"{name}: a slice from the middle is zeros");
            maxSampledKb = Math.Max(maxSampledKb, StatusKb("VmRSS")); // while the tensor is alive
            loaded++;
        }
        sw.Stop();

        long peakKb = hwmReset ? Math.Max(StatusKb("VmHWM"), maxSampledKb) : maxSampledKb;
        long growth = (peakKb - baselineKb) * 1024;
        long limit = largest * 3 / 2 + 300 * MiB;
        TestContext.Out.WriteLine(
            $"checkpoint {total / (double)MiB:F0} MiB in {loaded} tensors, largest {largest / MiB} MiB; baseline RSS {baselineKb / 1024} MiB; " +
            $"peak source {(hwmReset ? "VmHWM after clear_refs" : "VmRSS samples")} (VmHWM right after reset {hwmAfterResetKb / 1024} MiB); " +
            $"peak RSS {peakKb / 1024} MiB, sampled max {maxSampledKb / 1024} MiB; growth {growth / (double)MiB:F0} MiB (limit {limit / MiB} MiB); {sw.Elapsed.TotalSeconds:F1} s");

        Assert.That(loaded, Is.EqualTo(specsByName.Count));
        Assert.That(growth, Is.LessThan(limit), "host memory during a sharded load stays near one tensor");
        Assert.That(growth, Is.LessThan(total / 2), "far below the checkpoint's size");
        // The measurement sees real allocations: the largest tensor had to be resident while it was checked.
        Assert.That(growth, Is.GreaterThan(largest * 9 / 10), "peak RSS reflects the largest tensor (measurement sanity)");
        if (hwmReset) Assert.That(hwmAfterResetKb, Is.LessThan(baselineKb + 64 * 1024), "clear_refs reset the peak to the current RSS");
    }
}
