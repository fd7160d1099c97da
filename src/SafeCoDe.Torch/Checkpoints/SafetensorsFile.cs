using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Checkpoints;

#pragma warning disable CS1591 // the members are the format's own dtype names, spelled as in the header
/// <summary>The element types of the safetensors format.</summary>
public enum SafetensorsDType { BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2 }
#pragma warning restore CS1591

/// <summary>One tensor's header entry.</summary>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements.</summary>
    public long Elements => Shape.Aggregate(1L, (a, b) => checked(a * b));

    /// <summary>Bytes in the file.</summary>
    public long ByteLength => End - Begin;
}

/// <summary>
/// A validated safetensors file: 8-byte little-endian header length, a JSON header, then the raw data. The header is
/// checked in full when the file is opened (size limit, JSON shape, dtype, shape×dtype = byte length, offsets inside
/// the data, no overlaps), so a malformed file fails at open with the file and tensor named. Tensors are read one at
/// a time straight into tensor memory: host memory during a load is bounded by one tensor.
/// </summary>
public sealed class SafetensorsFile
{
    /// <summary>Largest header accepted (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private static readonly Dictionary<string, SafetensorsDType> DTypeNames =
        Enum.GetValues<SafetensorsDType>().ToDictionary(d => d.ToString(), StringComparer.Ordinal);

    /// <summary>Path of the file as opened.</summary>
    public string Path { get; }
    /// <summary>Size of the file in bytes.</summary>
    public long FileLength { get; }
    /// <summary>Byte offset of the data section (8 + header length); entry offsets are relative to it.</summary>
    public long DataStart { get; }
    /// <summary>The tensors by name (the <c>__metadata__</c> key excluded).</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    /// <summary>The header's <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsFile(string path, long fileLength, long dataStart, Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path; FileLength = fileLength; DataStart = dataStart; Entries = entries; Metadata = metadata;
    }

    /// <summary>Bytes per element of a dtype.</summary>
    public static int ElementSize(SafetensorsDType d) => d switch
    {
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8 or SafetensorsDType.F8_E4M3 or SafetensorsDType.F8_E5M2 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        _ => 8,
    };

    /// <summary>True for floating-point dtypes (these are converted to the requested dtype on load).</summary>
    public static bool IsFloating(SafetensorsDType d) => d is SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F32
        or SafetensorsDType.F64 or SafetensorsDType.F8_E4M3 or SafetensorsDType.F8_E5M2;

    /// <summary>Opens and validates <paramref name="path"/>; throws <see cref="SafetensorsFormatException"/> on any defect.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new SafetensorsFormatException(path, null, "file not found");
        try { Runtime.BoundedFile.EnsureRegularFile(path, "safetensors file"); }
        catch (Runtime.InputFileException e) { throw new SafetensorsFormatException(path, null, e.Reason, e); }
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = RandomAccess.GetLength(handle);
        if (length < 8) throw new SafetensorsFormatException(path, null, $"truncated: {length} bytes, fewer than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        RandomAccess.Read(handle, lenBytes, 0);
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > MaxHeaderBytes)
            // the number is not shown: in a file that is not safetensors at all it would be 8 bytes of its content
            throw new SafetensorsFormatException(path, null, $"not a safetensors file: the header length field exceeds the limit of {MaxHeaderBytes} bytes");
        if ((long)headerLen > length - 8)
            throw new SafetensorsFormatException(path, null, $"not a safetensors file, or truncated: the header length field runs past the end of the file ({length} bytes)");
        var header = new byte[headerLen];
        ReadExactly(handle, header, 8, path, null);
        long dataStart = 8 + (long)headerLen;
        return Parse(path, header, length, dataStart);
    }

    private static SafetensorsFile Parse(string path, byte[] header, long fileLength, long dataStart)
    {
        long dataLength = fileLength - dataStart;
        // Strings with invalid UTF-8 pass JsonDocument.Parse and only fail later, in GetString, with InvalidOperationException.
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new SafetensorsFormatException(path, null, "header is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(path, null, $"header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(path, null, "header is not a JSON object");
            RefuseDuplicateKeys(path, doc.RootElement);
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            try
            {
                foreach (var prop in doc.RootElement.EnumerateObject())
                {
                    if (prop.Name == "__metadata__")
                    {
                        if (prop.Value.ValueKind != JsonValueKind.Object)
                            throw new SafetensorsFormatException(path, "__metadata__", "must be an object of strings");
                        foreach (var m in prop.Value.EnumerateObject())
                        {
                            if (m.Value.ValueKind != JsonValueKind.String)
                                throw new SafetensorsFormatException(path, "__metadata__." + m.Name, "metadata values must be strings");
                            metadata[m.Name] = m.Value.GetString()!;
                        }
                        continue;
                    }
                    if (entries.ContainsKey(prop.Name))
                        throw new SafetensorsFormatException(path, prop.Name, "tensor is listed twice in the header");
                    entries[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
                }
            }
            catch (InvalidOperationException e)
            {
                // A name or string whose escapes do not decode (e.g. "\ud800", half a surrogate pair).
                throw new SafetensorsFormatException(path, null, $"header holds an invalid string: {e.Message}", e);
            }
            RefuseOverlaps(path, entries.Values);
            return new SafetensorsFile(path, fileLength, dataStart, entries, metadata);
        }
    }

    /// <summary>The format says JSON with unique keys: System.Text.Json keeps duplicates and lookups would pick one.</summary>
    private static void RefuseDuplicateKeys(string path, JsonElement root)
    {
        string? dup;
        try { dup = JsonStrict.FindDuplicateKey(root); }
        catch (InvalidOperationException e) { throw new SafetensorsFormatException(path, null, $"header holds an invalid string: {e.Message}", e); }
        if (dup is not null)
            throw new SafetensorsFormatException(path, dup, dup.Contains('.') ? "key appears twice in the header" : "tensor is listed twice in the header");
    }

    /// <summary>No two tensors may share bytes.</summary>
    private static void RefuseOverlaps(string path, IEnumerable<SafetensorsEntry> entries)
    {
        SafetensorsEntry? prev = null;
        foreach (var e in entries.Where(e => e.ByteLength > 0).OrderBy(e => e.Begin))
        {
            if (prev is not null && e.Begin < prev.End)
                throw new SafetensorsFormatException(path, e.Name,
                    $"data [{e.Begin}, {e.End}) overlaps tensor '{prev.Name}' [{prev.Begin}, {prev.End})");
            prev = e;
        }
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonElement v, long dataLength)
    {
        if (name.Length == 0) throw new SafetensorsFormatException(path, name, "empty tensor name");
        if (v.ValueKind != JsonValueKind.Object) throw new SafetensorsFormatException(path, name, "entry is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(path, name, "entry has no string 'dtype'");
        var dtypeText = dt.GetString()!;
        // Exact names only: Enum.TryParse also takes numbers, surrounding spaces and comma-joined names ("BF16,U8" → F32).
        if (!DTypeNames.TryGetValue(dtypeText, out var dtype))
            throw new SafetensorsFormatException(path, name, $"unknown dtype '{dtypeText}'");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(path, name, "entry has no 'shape' array");
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var n) || n < 0)
                throw new SafetensorsFormatException(path, name, $"shape[{i}] is not a non-negative integer");
            shape[i++] = n;
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafetensorsFormatException(path, name, "entry has no 'data_offsets' pair");
        var o = off.EnumerateArray().ToArray();
        if (o[0].ValueKind != JsonValueKind.Number || o[1].ValueKind != JsonValueKind.Number
            || !o[0].TryGetInt64(out var begin) || !o[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw new SafetensorsFormatException(path, name, "data_offsets must be two non-negative integers with begin <= end");
        if (end > dataLength)
            throw new SafetensorsFormatException(path, name, $"data_offsets [{begin}, {end}) run past the end of the data ({dataLength} bytes)");
        long expected;
        try { expected = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * ElementSize(dtype)); }
        catch (OverflowException) { throw new SafetensorsFormatException(path, name, "shape is too large"); }
        if (expected != end - begin)
            throw new SafetensorsFormatException(path, name,
                $"shape [{string.Join(", ", shape)}] of {dtype} needs {expected} bytes but data_offsets span {end - begin}");
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    /// <summary>
    /// Reads one tensor onto <paramref name="device"/>. Floating tensors become <paramref name="floatType"/> when given;
    /// integer and bool tensors keep an integer/bool type (unsigned 16/32-bit widen to the next signed type).
    /// </summary>
    public Tensor Read(string name, ScalarType? floatType = null, Device? device = null)
    {
        if (!Entries.TryGetValue(name, out var e)) throw new SafetensorsFormatException(Path, name, "no such tensor in this file");
        return Read(e, floatType, device);
    }

    /// <inheritdoc cref="Read(string, ScalarType?, Device?)"/>
    public Tensor Read(SafetensorsEntry e, ScalarType? floatType = null, Device? device = null)
    {
        device ??= CPU;
        using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (RandomAccess.GetLength(handle) != FileLength)
            throw new SafetensorsFormatException(Path, e.Name, "file changed size since it was opened");
        Tensor host = e.DType switch
        {
            SafetensorsDType.U16 => ReadWidened(handle, e, ScalarType.Int32),
            SafetensorsDType.U32 => ReadWidened(handle, e, ScalarType.Int64),
            SafetensorsDType.U64 => ReadWidened(handle, e, ScalarType.Int64),
            SafetensorsDType.F8_E4M3 or SafetensorsDType.F8_E5M2 =>
                throw new SafetensorsFormatException(Path, e.Name, $"dtype {e.DType} is valid safetensors but not supported by this engine (TorchSharp 0.107 has no float8 type)"),
            _ => ReadRaw(handle, e),
        };
        var target = IsFloating(e.DType) && floatType is { } ft ? ft : host.dtype;
        if (target == host.dtype && device.type == DeviceType.CPU) return host;
        using (host) return host.to(target, device);
    }

    private Tensor ReadRaw(SafeFileHandle handle, SafetensorsEntry e)
    {
        var t = torch.empty(e.Shape, TorchType(e.DType));
        try
        {
            FillFromFile(handle, t, DataStart + e.Begin, e.ByteLength, e.Name);
            return t;
        }
        catch { t.Dispose(); throw; }
    }

    private Tensor ReadWidened(SafeFileHandle handle, SafetensorsEntry e, ScalarType target)
    {
        // Unsigned types TorchSharp lacks: converted element by element through a bounded buffer.
        var t = torch.empty(e.Shape, target);
        try
        {
            int es = ElementSize(e.DType);
            long n = e.Elements;
            var buf = new byte[Math.Min(n * es, 1 << 20) / es * es + es];
            using var flat = t.view(-1);
            long done = 0;
            while (done < n)
            {
                int count = (int)Math.Min(n - done, buf.Length / es);
                ReadExactly(handle, buf.AsSpan(0, count * es), DataStart + e.Begin + done * es, Path, e.Name);
                if (target == ScalarType.Int32)
                {
                    var vals = new int[count];
                    for (int i = 0; i < count; i++) vals[i] = BinaryPrimitives.ReadUInt16LittleEndian(buf.AsSpan(i * 2));
                    using var src = torch.tensor(vals);
                    flat.narrow(0, done, count).copy_(src);
                }
                else
                {
                    var vals = new long[count];
                    for (int i = 0; i < count; i++)
                    {
                        ulong u = es == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(i * 4)) : BinaryPrimitives.ReadUInt64LittleEndian(buf.AsSpan(i * 8));
                        if (u > long.MaxValue) throw new SafetensorsFormatException(Path, e.Name, $"U64 value {u} does not fit a signed 64-bit tensor");
                        vals[i] = (long)u;
                    }
                    using var src = torch.tensor(vals);
                    flat.narrow(0, done, count).copy_(src);
                }
                done += count;
            }
            return t;
        }
        catch { t.Dispose(); throw; }
    }

    /// <summary>Reads bytes straight into a contiguous CPU tensor's memory, in slices of at most 1 GiB.</summary>
    private void FillFromFile(SafeFileHandle handle, Tensor t, long fileOffset, long byteLength, string name)
    {
        if (byteLength == 0) return;
        long elemSize = byteLength / Math.Max(1, t.numel());
        const long chunkBytes = 1L << 30;
        long chunkElems = Math.Max(1, chunkBytes / elemSize);
        using var flat = t.view(-1);
        long total = t.numel();
        for (long start = 0; start < total; start += chunkElems)
        {
            long n = Math.Min(chunkElems, total - start);
            using var slice = flat.narrow(0, start, n);
            var span = slice.bytes; // view over the tensor's own memory (no copy)
            ReadExactly(handle, span, fileOffset + start * elemSize, Path, name);
        }
    }

    private static void ReadExactly(SafeFileHandle handle, Span<byte> dest, long offset, string path, string? name)
    {
        while (dest.Length > 0)
        {
            int n = RandomAccess.Read(handle, dest, offset);
            if (n <= 0) throw new SafetensorsFormatException(path, name, $"unexpected end of file at byte {offset}");
            dest = dest[n..];
            offset += n;
        }
    }

    /// <summary>The TorchSharp type that holds a safetensors dtype unchanged.</summary>
    public static ScalarType TorchType(SafetensorsDType d) => d switch
    {
        SafetensorsDType.BOOL => ScalarType.Bool,
        SafetensorsDType.U8 => ScalarType.Byte,
        SafetensorsDType.I8 => ScalarType.Int8,
        SafetensorsDType.I16 => ScalarType.Int16,
        SafetensorsDType.I32 => ScalarType.Int32,
        SafetensorsDType.I64 => ScalarType.Int64,
        SafetensorsDType.F16 => ScalarType.Float16,
        SafetensorsDType.BF16 => ScalarType.BFloat16,
        SafetensorsDType.F32 => ScalarType.Float32,
        SafetensorsDType.F64 => ScalarType.Float64,
        SafetensorsDType.U16 => ScalarType.Int32,
        SafetensorsDType.U32 or SafetensorsDType.U64 => ScalarType.Int64,
        _ => throw new NotSupportedException($"dtype {d} has no TorchSharp type"),
    };
}
