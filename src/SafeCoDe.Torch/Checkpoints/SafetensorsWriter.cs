using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Checkpoints;

/// <summary>Name, dtype and shape of a tensor to be written.</summary>
public sealed record TensorSpec(string Name, ScalarType DType, long[] Shape);

/// <summary>
/// Writes safetensors files: 8-byte little-endian header length, a JSON header (tensors sorted by name, each with
/// dtype, shape and data_offsets; optional <c>__metadata__</c>) padded with spaces to a multiple of 8 bytes, then the
/// raw little-endian data in the same order. Tensors are streamed one at a time and in bounded chunks, so writing
/// needs no more host memory than one chunk (plus one tensor's contiguous copy when a tensor is not contiguous).
/// The file is written under a temporary name next to <c>path</c> and renamed into place when complete.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>Largest slice handed to one write call (and, for tensors off the CPU, copied to the host at once).</summary>
    internal const long ChunkBytes = 256L * 1024 * 1024;

    /// <summary>Writes <paramref name="tensors"/> (and <paramref name="metadata"/>, when given) to <paramref name="path"/>.</summary>
    /// <exception cref="ArgumentException">A name is empty, reserved (<c>__metadata__</c>) or repeated; a tensor is disposed.</exception>
    /// <exception cref="NotSupportedException">A tensor's dtype has no safetensors equivalent handled here.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var given = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var specs = new List<TensorSpec>();
        foreach (var (name, t) in tensors)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("tensor names must be non-empty", nameof(tensors));
            if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor", nameof(tensors));
            if (!given.TryAdd(name, t)) throw new ArgumentException($"tensor '{name}' is given twice", nameof(tensors));
            if (t is null || t.IsInvalid) throw new ArgumentException($"tensor '{name}' is null or disposed", nameof(tensors));
            specs.Add(new TensorSpec(name, t.dtype, t.shape));
        }
        WriteCore(path, specs, s => (given[s.Name], false), metadata);
    }

    /// <summary>
    /// Writes tensors produced one at a time by <paramref name="produce"/> (each disposed right after it is written):
    /// checkpoints larger than host memory can be written with memory bounded by one tensor.
    /// </summary>
    public static void WriteStreaming(string path, IReadOnlyList<TensorSpec> specs, Func<TensorSpec, Tensor> produce, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in specs)
        {
            if (string.IsNullOrEmpty(s.Name) || s.Name == "__metadata__") throw new ArgumentException($"invalid tensor name '{s.Name}'", nameof(specs));
            if (!seen.Add(s.Name)) throw new ArgumentException($"tensor '{s.Name}' is given twice", nameof(specs));
        }
        WriteCore(path, specs, s =>
        {
            var t = produce(s);
            if (t.dtype != s.DType || !t.shape.SequenceEqual(s.Shape))
            {
                t.Dispose();
                throw new InvalidOperationException($"tensor '{s.Name}' was produced as {t.dtype} [{string.Join(",", t.shape)}], declared {s.DType} [{string.Join(",", s.Shape)}]");
            }
            return (t, true);
        }, metadata);
    }

    private static void WriteCore(string path, IReadOnlyList<TensorSpec> specs, Func<TensorSpec, (Tensor t, bool dispose)> get, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; writing from a big-endian host is not supported");

        var items = specs.Select(s => (Spec: s, DType: DTypeOf(s.DType, s.Name), Begin: 0L, End: 0L)).ToList();
        items.Sort((a, b) => string.CompareOrdinal(a.Spec.Name, b.Spec.Name));

        long offset = 0;
        for (int i = 0; i < items.Count; i++)
        {
            var it = items[i];
            long bytes = checked(it.Spec.Shape.Aggregate(1L, (a, b) => checked(a * b)) * SafetensorsFile.ElementSize(it.DType));
            items[i] = it with { Begin = offset, End = offset + bytes };
            offset = checked(offset + bytes);
        }

        byte[] header = BuildHeader(items.Select(i => (i.Spec.Name, i.DType, i.Spec.Shape, i.Begin, i.End)), metadata);
        if (header.Length > SafetensorsFile.MaxHeaderBytes)
            throw new ArgumentException($"the header would take {header.Length} bytes, over the limit of {SafetensorsFile.MaxHeaderBytes}", nameof(specs));

        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
                fs.Write(len);
                fs.Write(header);
                foreach (var it in items)
                {
                    long before = fs.Position;
                    var (tensor, dispose) = get(it.Spec);
                    try { WriteData(fs, tensor); }
                    finally { if (dispose) tensor.Dispose(); }
                    if (fs.Position - before != it.End - it.Begin)
                        throw new InvalidOperationException($"tensor '{it.Spec.Name}' wrote {fs.Position - before} bytes, expected {it.End - it.Begin}");
                }
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The safetensors dtype that holds a TorchSharp type unchanged.</summary>
    public static SafetensorsDType DTypeOf(ScalarType t) => DTypeOf(t, null);

    private static SafetensorsDType DTypeOf(ScalarType t, string? name) => t switch
    {
        ScalarType.Float32 => SafetensorsDType.F32,
        ScalarType.Float16 => SafetensorsDType.F16,
        ScalarType.BFloat16 => SafetensorsDType.BF16,
        ScalarType.Float64 => SafetensorsDType.F64,
        ScalarType.Int64 => SafetensorsDType.I64,
        ScalarType.Int32 => SafetensorsDType.I32,
        ScalarType.Int16 => SafetensorsDType.I16,
        ScalarType.Int8 => SafetensorsDType.I8,
        ScalarType.Byte => SafetensorsDType.U8,
        ScalarType.Bool => SafetensorsDType.BOOL,
        _ => throw new NotSupportedException(name is null
            ? $"dtype {t} cannot be written to safetensors"
            : $"tensor '{name}': dtype {t} cannot be written to safetensors"),
    };

    private static byte[] BuildHeader(IEnumerable<(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)> items,
        IReadOnlyDictionary<string, string>? metadata)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    ArgumentNullException.ThrowIfNull(v, $"metadata['{k}']");
                    w.WriteString(k, v);
                }
                w.WriteEndObject();
            }
            foreach (var (name, dtype, shape, begin, end) in items)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype.ToString());
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(begin);
                w.WriteNumberValue(end);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        int pad = (int)((8 - ms.Length % 8) % 8);
        for (int i = 0; i < pad; i++) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    /// <summary>Writes one tensor's elements in row-major order, in slices of at most <see cref="ChunkBytes"/>.</summary>
    private static void WriteData(Stream fs, Tensor t)
    {
        long total = t.numel();
        if (total == 0) return;
        // Views made here are disposed here; the caller's tensor never is.
        Tensor contiguous = t.is_contiguous() ? t : t.contiguous();
        try
        {
            using var flat = contiguous.view(-1);
            long elemSize = flat.element_size();
            long chunkElems = Math.Max(1, ChunkBytes / elemSize);
            bool onCpu = flat.device_type == DeviceType.CPU;
            for (long start = 0; start < total; start += chunkElems)
            {
                long n = Math.Min(chunkElems, total - start);
                using var slice = flat.narrow(0, start, n);
                if (onCpu)
                {
                    fs.Write(slice.bytes);
                }
                else
                {
                    using var host = slice.cpu();
                    fs.Write(host.bytes);
                }
            }
        }
        finally
        {
            if (!ReferenceEquals(contiguous, t)) contiguous.Dispose();
        }
    }
}
