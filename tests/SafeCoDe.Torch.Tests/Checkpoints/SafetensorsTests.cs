using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Checkpoints;

/// <summary>Builds safetensors files byte by byte, independently of <see cref="SafetensorsWriter"/>.</summary>
internal static class RawSafetensors
{
    /// <summary>8-byte little-endian length, the header text as given (no padding), then <paramref name="dataBytes"/> zero bytes.</summary>
    public static string Write(string path, string json, long dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(json);
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        fs.Write(len);
        fs.Write(header);
        fs.SetLength(8 + header.Length + dataBytes);
        return path;
    }

    /// <summary>As <see cref="Write(string, string, long)"/> with the given data bytes.</summary>
    public static string Write(string path, string json, byte[] data)
    {
        Write(path, json, 0);
        using var fs = new FileStream(path, FileMode.Append, FileAccess.Write);
        fs.Write(data);
        return path;
    }

    /// <summary>An arbitrary 8-byte length field followed by <paramref name="rest"/> bytes of spaces.</summary>
    public static string WriteLengthField(string path, ulong headerLength, int rest)
    {
        var bytes = new byte[8 + rest];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);
        bytes.AsSpan(8).Fill((byte)' ');
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>The header JSON and where the data starts, read straight from the file.</summary>
    public static (ulong HeaderLength, byte[] Header, long DataStart) ReadHeader(string path)
    {
        var all = File.ReadAllBytes(path);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(all);
        return (n, all.AsSpan(8, (int)n).ToArray(), 8 + (long)n);
    }
}

public class SafetensorsTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string P(string name) => Path.Combine(_dir, name);

    private static byte[] BytesOf(Tensor t)
    {
        if (t.numel() == 0) return [];
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }

    private static readonly ScalarType[] Supported =
    [
        ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64, ScalarType.Int64,
        ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
    ];

    /// <summary>A tensor of <paramref name="shape"/> whose bytes are random (0/1 for Bool): every bit pattern, NaN payloads included.</summary>
    private static Tensor RandomTensor(Random rng, ScalarType dtype, params long[] shape)
    {
        var t = empty(shape, dtype);
        long n = t.numel() * t.element_size();
        if (n == 0) return t;
        var buf = new byte[n];
        rng.NextBytes(buf);
        if (dtype == ScalarType.Bool)
            for (int i = 0; i < buf.Length; i++) buf[i] &= 1;
        t.bytes = buf;
        return t;
    }

    // ---------------------------------------------------------------- round trip

    [Test]
    public void RoundTrip_EveryDType_IsBitExact_IncludingScalarEmptyAndNonContiguous()
    {
        var rng = new Random(1234);
        var tensors = new Dictionary<string, Tensor>();
        var expected = new Dictionary<string, (ScalarType DType, long[] Shape, byte[] Bytes)>();
        try
        {
            foreach (var dt in Supported)
            {
                var matrix = RandomTensor(rng, dt, 3, 5);
                var scalar = RandomTensor(rng, dt);
                var emptyT = RandomTensor(rng, dt, 0, 4);
                var cube = RandomTensor(rng, dt, 2, 3, 4);
                var transposed = cube.transpose(0, 2); // non-contiguous view, shape [4, 3, 2]
                var big = RandomTensor(rng, dt, 10, 7);
                var sliced = big.narrow(0, 3, 4); // contiguous view with a storage offset, shape [4, 7]
                Assert.That(transposed.is_contiguous(), Is.False);
                Assert.That(scalar.shape, Is.Empty);

                void Add(string name, Tensor t, byte[] bytes)
                {
                    tensors[name] = t;
                    expected[name] = (dt, t.shape, bytes);
                }
                Add($"{dt}.matrix", matrix, BytesOf(matrix));
                Add($"{dt}.scalar", scalar, BytesOf(scalar));
                Add($"{dt}.empty", emptyT, []);
                Add($"{dt}.transposed", transposed, BytesOf(transposed));
                Add($"{dt}.sliced", sliced, big.bytes.Slice(3 * 7 * (int)big.element_size(), 4 * 7 * (int)big.element_size()).ToArray());
                tensors[$"keep.{dt}.cube"] = cube; // the view's base, written too (and kept alive for it)
                expected[$"keep.{dt}.cube"] = (dt, cube.shape, BytesOf(cube));
                tensors[$"keep.{dt}.big"] = big;
                expected[$"keep.{dt}.big"] = (dt, big.shape, BytesOf(big));
            }
            // Sanity on the expectations themselves: the transposed bytes differ from the base's layout.
            Assert.That(expected["Float32.transposed"].Bytes, Is.Not.EqualTo(expected["keep.Float32.cube"].Bytes));

            var path = P("all.safetensors");
            SafetensorsWriter.Write(path, tensors);

            var f = SafetensorsFile.Open(path);
            Assert.That(f.Entries.Keys, Is.EquivalentTo(expected.Keys));
            Assert.That(f.Metadata, Is.Empty);
            foreach (var (name, (dt, shape, bytes)) in expected)
            {
                var e = f.Entries[name];
                Assert.That(e.DType, Is.EqualTo(SafetensorsWriter.DTypeOf(dt)), name);
                Assert.That(e.Shape, Is.EqualTo(shape), name);
                Assert.That(e.ByteLength, Is.EqualTo(bytes.Length), name);
                using var r = f.Read(name);
                Assert.That(r.dtype, Is.EqualTo(dt), name);
                Assert.That(r.shape, Is.EqualTo(shape), name);
                Assert.That(BytesOf(r), Is.EqualTo(bytes), name);
            }
            // The caller's tensors are still alive and unchanged (the writer disposes only what it creates).
            Assert.That(tensors.Values.All(t => !t.IsInvalid), Is.True);
            Assert.That(BytesOf(tensors["Int32.transposed"]), Is.EqualTo(expected["Int32.transposed"].Bytes));
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Test]
    public void RoundTrip_ValuesSurviveForEveryDType()
    {
        // Values (not just bytes) survive, checked against plain .NET arrays.
        var path = P("values.safetensors");
        using var f32 = tensor(new float[] { 1.5f, -2.25f, float.MaxValue, float.Epsilon });
        using var f64 = tensor(new double[] { Math.PI, -1e300 });
        using var i64 = tensor(new long[] { long.MinValue, long.MaxValue, -1 });
        using var i32 = tensor(new int[] { int.MinValue, 7 });
        using var i16 = tensor(new short[] { short.MinValue, short.MaxValue });
        using var i8 = tensor(new sbyte[] { sbyte.MinValue, -1, sbyte.MaxValue });
        using var u8 = tensor(new byte[] { 0, 200, 255 });
        using var b = tensor(new bool[] { true, false, true });
        SafetensorsWriter.Write(path, new Dictionary<string, Tensor>
        {
            ["f32"] = f32, ["f64"] = f64, ["i64"] = i64, ["i32"] = i32, ["i16"] = i16, ["i8"] = i8, ["u8"] = u8, ["b"] = b,
        });
        var f = SafetensorsFile.Open(path);
        using (var r = f.Read("f32")) Assert.That(r.data<float>().ToArray(), Is.EqualTo(new float[] { 1.5f, -2.25f, float.MaxValue, float.Epsilon }));
        using (var r = f.Read("f64")) Assert.That(r.data<double>().ToArray(), Is.EqualTo(new double[] { Math.PI, -1e300 }));
        using (var r = f.Read("i64")) Assert.That(r.data<long>().ToArray(), Is.EqualTo(new long[] { long.MinValue, long.MaxValue, -1 }));
        using (var r = f.Read("i32")) Assert.That(r.data<int>().ToArray(), Is.EqualTo(new int[] { int.MinValue, 7 }));
        using (var r = f.Read("i16")) Assert.That(r.data<short>().ToArray(), Is.EqualTo(new short[] { short.MinValue, short.MaxValue }));
        using (var r = f.Read("i8")) Assert.That(r.data<sbyte>().ToArray(), Is.EqualTo(new sbyte[] { sbyte.MinValue, -1, sbyte.MaxValue }));
        using (var r = f.Read("u8")) Assert.That(r.data<byte>().ToArray(), Is.EqualTo(new byte[] { 0, 200, 255 }));
        using (var r = f.Read("b")) Assert.That(r.data<bool>().ToArray(), Is.EqualTo(new[] { true, false, true }));
    }

    private static ushort Bf16RoundNearestEven(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    private static ushort[] U16(Tensor t) => MemoryMarshal.Cast<byte, ushort>(BytesOf(t)).ToArray();

    [Test]
    public void F32File_ReadAsBFloat16AndFloat16_ConvertsWithRoundToNearestEven()
    {
        var rng = new Random(7);
        var values = new List<float>
        {
            0f, -0f, 1f, -1f, 65504f, 65519f, 65520f, 1e5f, -1e5f, 6e-8f, 1e-7f, 3e-5f,
            1f + 1f / 256, 1f + 3f / 256, 1f + 1f / 2048, 1f + 3f / 2048, float.MaxValue, 1e-40f,
        };
        for (int i = 0; i < 2000; i++) values.Add((float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-8, 8))));
        var arr = values.ToArray();
        using var t = tensor(arr).reshape(2, arr.Length / 2);
        var path = P("f32.safetensors");
        using var ints = tensor(new int[] { 1, 2, 3 });
        SafetensorsWriter.Write(path, [new("w", t), new("ids", ints)]);

        var f = SafetensorsFile.Open(path);
        using (var bf = f.Read("w", ScalarType.BFloat16))
        {
            Assert.That(bf.dtype, Is.EqualTo(ScalarType.BFloat16));
            Assert.That(bf.shape, Is.EqualTo(new long[] { 2, arr.Length / 2 }));
            Assert.That(U16(bf), Is.EqualTo(arr.Select(Bf16RoundNearestEven).ToArray()));
        }
        using (var h = f.Read("w", ScalarType.Float16))
        {
            Assert.That(h.dtype, Is.EqualTo(ScalarType.Float16));
            Assert.That(U16(h), Is.EqualTo(arr.Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray()));
        }
        // Integer tensors keep their type when a float type is asked for.
        using (var i = f.Read("ids", ScalarType.BFloat16))
        {
            Assert.That(i.dtype, Is.EqualTo(ScalarType.Int32));
            Assert.That(i.data<int>().ToArray(), Is.EqualTo(new[] { 1, 2, 3 }));
        }
    }

    [Test]
    public void HalfFiles_ReadAsFloat32_WidenExactly()
    {
        var rng = new Random(11);
        var path = P("half.safetensors");
        using var h = RandomTensor(rng, ScalarType.Float16, 64);
        using var bf = RandomTensor(rng, ScalarType.BFloat16, 64);
        SafetensorsWriter.Write(path, [new("h", h), new("bf", bf)]);
        var f = SafetensorsFile.Open(path);
        var hBits = U16(h);
        var bfBits = U16(bf);
        using (var r = f.Read("h", ScalarType.Float32))
        {
            var got = r.data<float>().ToArray();
            for (int i = 0; i < hBits.Length; i++)
            {
                float want = (float)BitConverter.UInt16BitsToHalf(hBits[i]);
                if (float.IsNaN(want)) Assert.That(float.IsNaN(got[i]), $"h[{i}]");
                else Assert.That(BitConverter.SingleToUInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(want)), $"h[{i}]");
            }
        }
        using (var r = f.Read("bf", ScalarType.Float32))
        {
            var got = r.data<float>().ToArray();
            for (int i = 0; i < bfBits.Length; i++)
            {
                float want = BitConverter.UInt32BitsToSingle((uint)bfBits[i] << 16);
                if (float.IsNaN(want)) Assert.That(float.IsNaN(got[i]), $"bf[{i}]");
                else Assert.That(got[i], Is.EqualTo(want), $"bf[{i}]");
            }
        }
    }

    [Test]
    public void Metadata_RoundTrips()
    {
        var meta = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["note"] = "quotes \" backslash \\ newline \n unicode ünïcødé 模型",
            ["empty"] = "",
        };
        var path = P("meta.safetensors");
        using var t = ones(2, 2);
        SafetensorsWriter.Write(path, [new("w", t)], meta);
        var f = SafetensorsFile.Open(path);
        Assert.That(f.Metadata, Is.EquivalentTo(meta));
        Assert.That(f.Entries.Keys, Is.EqualTo(new[] { "w" }));
    }

    // ---------------------------------------------------------------- the writer's layout

    [Test]
    public void Writer_Layout_SortedNames_PaddedHeader_ContiguousOffsets_RawLittleEndianData()
    {
        var path = P("layout.safetensors");
        using var b = tensor(new int[] { 0x01020304, -2 });
        using var a = tensor(new short[] { 0x0506 });
        using var c = tensor(new double[] { 1.0 });
        using var z = zeros(new long[] { 0, 3 });
        SafetensorsWriter.Write(path, [new("b", b), new("c", c), new("a", a), new("Z", z)], new Dictionary<string, string> { ["k"] = "v" });

        var (n, header, dataStart) = RawSafetensors.ReadHeader(path);
        Assert.That(n % 8, Is.EqualTo(0UL), "header length is a multiple of 8");
        var text = Encoding.UTF8.GetString(header);
        Assert.That(text.TrimEnd(' ').Length, Is.GreaterThan(text.Length - 8), "padding is fewer than 8 spaces");
        using var doc = JsonDocument.Parse(header);
        var names = doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.That(names, Is.EqualTo(new[] { "__metadata__", "Z", "a", "b", "c" }), "metadata first, then names in ordinal order");
        Assert.That(doc.RootElement.GetProperty("__metadata__").GetProperty("k").GetString(), Is.EqualTo("v"));

        long expectBegin = 0;
        foreach (var name in names.Skip(1))
        {
            var e = doc.RootElement.GetProperty(name);
            var off = e.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            Assert.That(off[0], Is.EqualTo(expectBegin), $"{name} starts where the previous tensor ended");
            expectBegin = off[1];
        }
        Assert.That(doc.RootElement.GetProperty("b").GetProperty("dtype").GetString(), Is.EqualTo("I32"));
        Assert.That(doc.RootElement.GetProperty("Z").GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()), Is.EqualTo(new long[] { 0, 3 }));
        Assert.That(new FileInfo(path).Length, Is.EqualTo(dataStart + expectBegin), "nothing after the last tensor");

        var data = File.ReadAllBytes(path).AsSpan((int)dataStart).ToArray();
        // a: I16 0x0506; b: I32 0x01020304, -2; c: F64 1.0 — little-endian, in name order.
        Assert.That(data, Is.EqualTo(new byte[]
        {
            0x06, 0x05,
            0x04, 0x03, 0x02, 0x01, 0xFE, 0xFF, 0xFF, 0xFF,
            0, 0, 0, 0, 0, 0, 0xF0, 0x3F,
        }));
    }

    [Test]
    public void Writer_ReplacesAnExistingFile_AndLeavesNoTemporaryFiles()
    {
        var path = P("model.safetensors");
        File.WriteAllText(path, "old contents");
        using var t = arange(10, dtype: ScalarType.Int64);
        SafetensorsWriter.Write(path, [new("x", t)]);
        Assert.That(Directory.GetFiles(_dir).Select(Path.GetFileName), Is.EqualTo(new[] { "model.safetensors" }));
        using var r = SafetensorsFile.Open(path).Read("x");
        Assert.That(r.data<long>().ToArray(), Is.EqualTo(Enumerable.Range(0, 10).Select(i => (long)i).ToArray()));
    }

    [Test]
    public void Writer_FailureLeavesTheExistingFileUntouched()
    {
        var path = P("model.safetensors");
        File.WriteAllText(path, "old contents");
        using var ok = ones(3);
        using var complex = zeros(new long[] { 2 }, dtype: ScalarType.ComplexFloat32);
        var ex = Assert.Throws<NotSupportedException>(() => SafetensorsWriter.Write(path, [new("a", ok), new("b", complex)]));
        Assert.That(ex!.Message, Does.Contain("'b'").And.Contain("ComplexFloat32"));
        Assert.That(File.ReadAllText(path), Is.EqualTo("old contents"));
        Assert.That(Directory.GetFiles(_dir).Select(Path.GetFileName), Is.EqualTo(new[] { "model.safetensors" }));
    }

    [Test]
    public void Writer_RejectsDuplicateEmptyAndReservedNames()
    {
        var path = P("x.safetensors");
        using var t = ones(1);
        var dup = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new("w", t), new("w", t)]));
        Assert.That(dup!.Message, Does.Contain("'w' is given twice"));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new("", t)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new("__metadata__", t)]));
        Assert.That(File.Exists(path), Is.False);
        Assert.That(Directory.GetFiles(_dir), Is.Empty);
    }

    [Test]
    public void Writer_TensorLargerThan2GiB_IsWrittenInChunks()
    {
        // 2 GiB + 4099 bytes of U8 with byte i = i % 251, so a misplaced, repeated or dropped chunk shows.
        long n = (1L << 31) + 4099;
        var path = P("big.safetensors");
        using var pattern = arange(251, dtype: ScalarType.Byte);
        using var repeated = pattern.repeat(n / 251 + 1);
        using var big = repeated.narrow(0, 0, n);
        using var tail = tensor(new int[] { 11, 22, 33 });
        SafetensorsWriter.Write(path, [new("big", big), new("tail", tail)]);

        var f = SafetensorsFile.Open(path);
        Assert.That(f.Entries["big"].ByteLength, Is.EqualTo(n));
        Assert.That(f.Entries["tail"].Begin, Is.EqualTo(n));
        Assert.That(new FileInfo(path).Length, Is.EqualTo(f.DataStart + n + 12));
        using (var r = f.Read("tail")) Assert.That(r.data<int>().ToArray(), Is.EqualTo(new[] { 11, 22, 33 }));

        using var h = File.OpenHandle(path);
        var probes = new List<long> { 0, n - 64 };
        for (long c = SafetensorsWriter.ChunkBytes; c < n; c += SafetensorsWriter.ChunkBytes) probes.Add(c - 32);
        probes.Add(int.MaxValue - 32);
        var buf = new byte[64];
        foreach (var p in probes)
        {
            int got = RandomAccess.Read(h, buf, f.DataStart + p);
            Assert.That(got, Is.EqualTo(64));
            var want = Enumerable.Range(0, 64).Select(i => (byte)((p + i) % 251)).ToArray();
            Assert.That(buf, Is.EqualTo(want), $"bytes at data offset {p}");
        }
    }

    // ---------------------------------------------------------------- malformed files

    private static void AssertFormatError(string path, string? item, params string[] messageParts)
    {
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.That(ex!.FilePath, Is.EqualTo(path));
        Assert.That(ex.Item, Is.EqualTo(item));
        foreach (var m in messageParts) Assert.That(ex.Message, Does.Contain(m));
    }

    private const string F32x4 = "\"dtype\":\"F32\",\"shape\":[4]";

    public record BadHeader(string Json, long DataBytes, string? Item, string[] Message)
    {
        public override string ToString() => Json.Length > 70 ? Json[..70] + "…" : Json;
    }

    private static BadHeader Bad(string json, long data, string? item, params string[] message) => new(json, data, item, message);

    public static IEnumerable<TestCaseData> BadHeaders()
    {
        var cases = new (string Name, BadHeader Case)[]
        {
            ("BadJson", Bad("{\"w\": {\"dtype\": \"F32\",", 0, null, "not valid JSON")),
            ("EmptyHeader", Bad("", 0, null, "not valid JSON")),
            ("TrailingGarbage", Bad("{} x", 0, null, "not valid JSON")),
            ("HeaderIsArray", Bad("[1, 2, 3]", 0, null, "not a JSON object")),
            ("HeaderIsString", Bad("\"hello\"", 0, null, "not a JSON object")),
            ("UnknownDType_F7", Bad($"{{\"w\":{{\"dtype\":\"F7\",\"shape\":[4],\"data_offsets\":[0,16]}}}}", 16, "w", "unknown dtype 'F7'")),
            ("UnknownDType_Numeric", Bad($"{{\"w\":{{\"dtype\":\"3\",\"shape\":[4],\"data_offsets\":[0,16]}}}}", 16, "w", "unknown dtype '3'")),
            ("UnknownDType_Lowercase", Bad($"{{\"w\":{{\"dtype\":\"f32\",\"shape\":[4],\"data_offsets\":[0,16]}}}}", 16, "w", "unknown dtype 'f32'")),
            ("UnknownDType_FlagsCombination", Bad($"{{\"w\":{{\"dtype\":\"BF16,U8\",\"shape\":[4],\"data_offsets\":[0,16]}}}}", 16, "w", "unknown dtype 'BF16,U8'")),
            ("UnknownDType_Whitespace", Bad($"{{\"w\":{{\"dtype\":\" F32\",\"shape\":[4],\"data_offsets\":[0,16]}}}}", 16, "w", "unknown dtype ' F32'")),
            ("DTypeNotString", Bad($"{{\"w\":{{\"dtype\":11,\"shape\":[4],\"data_offsets\":[0,16]}}}}", 16, "w", "no string 'dtype'")),
            ("MissingDType", Bad($"{{\"w\":{{\"shape\":[4],\"data_offsets\":[0,16]}}}}", 16, "w", "no string 'dtype'")),
            ("MissingShape", Bad($"{{\"w\":{{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}}}", 16, "w", "no 'shape' array")),
            ("ShapeNotArray", Bad($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}}}", 16, "w", "no 'shape' array")),
            ("MissingOffsets", Bad($"{{\"w\":{{{F32x4}}}}}", 16, "w", "no 'data_offsets' pair")),
            ("OffsetsNotAPair", Bad($"{{\"w\":{{{F32x4},\"data_offsets\":[0,8,16]}}}}", 16, "w", "no 'data_offsets' pair")),
            ("OffsetsAreStrings", Bad($"{{\"w\":{{{F32x4},\"data_offsets\":[\"0\",\"16\"]}}}}", 16, "w", "data_offsets must be two non-negative integers")),
            ("OffsetsAreFractions", Bad($"{{\"w\":{{{F32x4},\"data_offsets\":[0,16.5]}}}}", 17, "w", "data_offsets must be two non-negative integers")),
            ("NegativeShape", Bad($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}}}", 0, "w", "shape[1] is not a non-negative integer")),
            ("FractionalShape", Bad($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,10]}}}}", 10, "w", "shape[0] is not a non-negative integer")),
            ("StringShape", Bad($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}}}", 16, "w", "shape[0] is not a non-negative integer")),
            ("ShapeOverflows", Bad($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}}}", 16, "w", "shape is too large")),
            ("EndPastData", Bad($"{{\"w\":{{{F32x4},\"data_offsets\":[0,16]}}}}", 8, "w", "run past the end of the data (8 bytes)")),
            ("BeginAfterEnd", Bad($"{{\"w\":{{{F32x4},\"data_offsets\":[16,0]}}}}", 16, "w", "begin <= end")),
            ("NegativeBegin", Bad($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}}}", 16, "w", "non-negative")),
            ("ShapeTimesDTypeMismatch", Bad($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}}}", 16, "w", "needs 12 bytes but data_offsets span 16")),
            ("BF16SizeMismatch", Bad($"{{\"w\":{{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,16]}}}}", 16, "w", "needs 8 bytes but data_offsets span 16")),
            ("Overlap", Bad($"{{\"a\":{{{F32x4},\"data_offsets\":[0,16]}},\"b\":{{{F32x4},\"data_offsets\":[8,24]}}}}", 24, "b", "overlaps tensor 'a'", "[8, 24)", "[0, 16)")),
            ("OverlapListedInReverse", Bad($"{{\"b\":{{{F32x4},\"data_offsets\":[8,24]}},\"a\":{{{F32x4},\"data_offsets\":[0,16]}}}}", 24, "b", "overlaps tensor 'a'")),
            ("OverlapIdentical", Bad($"{{\"a\":{{{F32x4},\"data_offsets\":[0,16]}},\"b\":{{{F32x4},\"data_offsets\":[0,16]}}}}", 16, "b", "overlaps tensor 'a'")),
            ("OverlapContained", Bad($"{{\"a\":{{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}},\"b\":{{{F32x4},\"data_offsets\":[32,48]}},\"c\":{{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}}}", 48, "c", "overlaps tensor 'a'")),
            ("DuplicateName", Bad($"{{\"w\":{{{F32x4},\"data_offsets\":[0,16]}},\"w\":{{{F32x4},\"data_offsets\":[16,32]}}}}", 32, "w", "listed twice")),
            ("EntryNotObject", Bad("{\"w\": 5}", 0, "w", "entry is not an object")),
            ("EmptyName", Bad($"{{\"\":{{{F32x4},\"data_offsets\":[0,16]}}}}", 16, "", "empty tensor name")),
            ("MetadataNotObject", Bad("{\"__metadata__\": 5}", 0, "__metadata__", "must be an object")),
            ("MetadataValueNotString", Bad("{\"__metadata__\": {\"k\": 1}}", 0, "__metadata__.k", "must be strings")),
        };
        foreach (var (name, c) in cases) yield return new TestCaseData(c).SetName($"Malformed_{name}");
    }

    [TestCaseSource(nameof(BadHeaders))]
    public void MalformedHeader_FailsAtOpen_NamingFileAndTensor(BadHeader c)
    {
        var path = RawSafetensors.Write(P("bad.safetensors"), c.Json, c.DataBytes);
        AssertFormatError(path, c.Item, c.Message);
    }

    [Test]
    public void MalformedHeaderCases_AreValidOnceTheDefectIsRemoved()
    {
        // The raw helper itself makes files the reader accepts: the same shapes with the defects fixed open cleanly.
        var ok = RawSafetensors.Write(P("ok.safetensors"),
            $"{{\"__metadata__\":{{\"k\":\"v\"}},\"a\":{{{F32x4},\"data_offsets\":[0,16]}},\"b\":{{{F32x4},\"data_offsets\":[16,32]}},\"e\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}}}}   ", 32);
        var f = SafetensorsFile.Open(ok);
        Assert.That(f.Entries.Keys, Is.EquivalentTo(new[] { "a", "b", "e" }));
        Assert.That(f.Metadata["k"], Is.EqualTo("v"));
        using var b = f.Read("b");
        Assert.That(b.data<float>().ToArray(), Is.EqualTo(new float[4]));
    }

    [Test]
    public void InvalidUtf8InHeader_FailsAtOpen()
    {
        var path = P("utf8.safetensors");
        var json = Encoding.UTF8.GetBytes($"{{\"w\u00FF\":{{{F32x4},\"data_offsets\":[0,16]}}}}");
        // Replace the U+00FF (2 UTF-8 bytes C3 BF) by a lone 0xFF byte: not UTF-8.
        int at = json.AsSpan().IndexOf(new byte[] { 0xC3, 0xBF });
        var bytes = json[..at].Concat(new byte[] { 0xFF }).Concat(json[(at + 2)..]).ToArray();
        var file = new byte[8 + bytes.Length + 16];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)bytes.Length);
        bytes.CopyTo(file, 8);
        File.WriteAllBytes(path, file);
        AssertFormatError(path, null, "not valid UTF-8");
    }

    [TestCase("{\"w\\ud800\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", TestName = "EscapedLoneSurrogate_InTensorName_FailsAtOpen")]
    [TestCase("{\"__metadata__\":{\"k\":\"\\udc00x\"},\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", TestName = "EscapedLoneSurrogate_InMetadataValue_FailsAtOpen")]
    public void EscapedLoneSurrogate_FailsAtOpen(string json)
    {
        // Valid UTF-8 bytes, but the escape decodes to half a surrogate pair: not a valid string.
        var path = RawSafetensors.Write(P("surrogate.safetensors"), json, 16);
        AssertFormatError(path, null, "invalid string");
    }

    [TestCase(0)]
    [TestCase(5)]
    [TestCase(7)]
    public void FileShorterThan8Bytes_IsTruncated(int length)
    {
        var path = P("short.safetensors");
        File.WriteAllBytes(path, new byte[length]);
        AssertFormatError(path, null, "truncated", $"{length} bytes");
    }

    [Test]
    public void HeaderLengthPastEndOfFile()
    {
        var path = RawSafetensors.WriteLengthField(P("hl.safetensors"), 100, 50);
        AssertFormatError(path, null, "header length field runs past the end of the file (58 bytes)");
    }

    [TestCase(100UL * 1024 * 1024 + 1)]
    [TestCase(1UL << 40)]
    [TestCase(ulong.MaxValue)]
    public void HugeHeaderLength_IsRejectedBeforeAllocating(ulong headerLength)
    {
        var path = RawSafetensors.WriteLengthField(P("huge.safetensors"), headerLength, 16);
        AssertFormatError(path, null, "header length field exceeds the limit");
    }

    [Test]
    public void MissingFile()
    {
        var path = P("nope.safetensors");
        AssertFormatError(path, null, "file not found");
    }

    [Test]
    public void DataTruncatedAfterValidHeader_FailsAtOpen_NamingTheTensorThatRunsPastTheEnd()
    {
        var path = P("trunc.safetensors");
        using var a = ones(8);              // data [0, 32)
        using var b = ones(16);             // data [32, 96)
        SafetensorsWriter.Write(path, [new("a", a), new("b", b)]);
        Assert.DoesNotThrow(() => SafetensorsFile.Open(path));
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(fs.Length - 10);
        AssertFormatError(path, "b", "data_offsets [32, 96) run past the end of the data (86 bytes)");
    }

    // ---------------------------------------------------------------- reading

    [Test]
    public void Read_UnknownName_Fails()
    {
        var path = P("r.safetensors");
        using var a = ones(2);
        SafetensorsWriter.Write(path, [new("a", a)]);
        var f = SafetensorsFile.Open(path);
        var ex = Assert.Throws<SafetensorsFormatException>(() => f.Read("b"));
        Assert.That(ex!.Item, Is.EqualTo("b"));
        Assert.That(ex.FilePath, Is.EqualTo(path));
        Assert.That(ex.Message, Does.Contain("no such tensor"));
    }

    [Test]
    public void Read_FileChangedSizeSinceOpen_Fails()
    {
        var path = P("r.safetensors");
        using var a = ones(2);
        SafetensorsWriter.Write(path, [new("a", a)]);
        var f = SafetensorsFile.Open(path);
        using (var fs = new FileStream(path, FileMode.Open)) fs.SetLength(fs.Length - 4);
        var ex = Assert.Throws<SafetensorsFormatException>(() => f.Read("a"));
        Assert.That(ex!.Item, Is.EqualTo("a"));
        Assert.That(ex.Message, Does.Contain("changed size"));
    }

    [Test]
    public void Read_Float8_OpensButReadingSaysUnsupported()
    {
        var path = RawSafetensors.Write(P("f8.safetensors"),
            "{\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]},\"r\":{\"dtype\":\"F8_E5M2\",\"shape\":[2],\"data_offsets\":[4,6]}}", 6);
        var f = SafetensorsFile.Open(path);
        Assert.That(f.Entries["q"].DType, Is.EqualTo(SafetensorsDType.F8_E4M3));
        var ex = Assert.Throws<SafetensorsFormatException>(() => f.Read("q"));
        Assert.That(ex!.Item, Is.EqualTo("q"));
        Assert.That(ex.Message, Does.Contain("F8_E4M3").And.Contain("not supported"));
    }

    [Test]
    public void Read_UnsignedTypesTorchSharpLacks_AreWidened()
    {
        var data = new List<byte>();
        foreach (ushort v in new ushort[] { 0, 1, 40000, 65535 }) data.AddRange(BitConverter.GetBytes(v));
        foreach (uint v in new uint[] { 0, 3_000_000_000, uint.MaxValue }) data.AddRange(BitConverter.GetBytes(v));
        foreach (ulong v in new ulong[] { 5, long.MaxValue }) data.AddRange(BitConverter.GetBytes(v));
        foreach (ulong v in new ulong[] { 1, (ulong)long.MaxValue + 1 }) data.AddRange(BitConverter.GetBytes(v));
        var path = RawSafetensors.Write(P("u.safetensors"),
            "{\"u16\":{\"dtype\":\"U16\",\"shape\":[2,2],\"data_offsets\":[0,8]}," +
            "\"u32\":{\"dtype\":\"U32\",\"shape\":[3],\"data_offsets\":[8,20]}," +
            "\"u64\":{\"dtype\":\"U64\",\"shape\":[2],\"data_offsets\":[20,36]}," +
            "\"u64big\":{\"dtype\":\"U64\",\"shape\":[2],\"data_offsets\":[36,52]}}", data.ToArray());
        var f = SafetensorsFile.Open(path);
        using (var r = f.Read("u16", ScalarType.BFloat16))
        {
            Assert.That(r.dtype, Is.EqualTo(ScalarType.Int32));
            Assert.That(r.shape, Is.EqualTo(new long[] { 2, 2 }));
            Assert.That(r.data<int>().ToArray(), Is.EqualTo(new[] { 0, 1, 40000, 65535 }));
        }
        using (var r = f.Read("u32"))
        {
            Assert.That(r.dtype, Is.EqualTo(ScalarType.Int64));
            Assert.That(r.data<long>().ToArray(), Is.EqualTo(new long[] { 0, 3_000_000_000, uint.MaxValue }));
        }
        using (var r = f.Read("u64")) Assert.That(r.data<long>().ToArray(), Is.EqualTo(new long[] { 5, long.MaxValue }));
        var ex = Assert.Throws<SafetensorsFormatException>(() => f.Read("u64big"));
        Assert.That(ex!.Item, Is.EqualTo("u64big"));
        Assert.That(ex.Message, Does.Contain("9223372036854775808"));
    }
}
