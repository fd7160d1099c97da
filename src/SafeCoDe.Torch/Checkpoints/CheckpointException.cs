namespace SafeCoDe.Torch.Checkpoints;

/// <summary>Base of every error about a model directory: names the file and, where there is one, the tensor or field.</summary>
public class CheckpointException : Exception
{
    /// <summary>The file the problem is in.</summary>
    public string FilePath { get; }

    /// <summary>The tensor or config field concerned, when there is one.</summary>
    public string? Item { get; }

    /// <summary>Creates the error; the message becomes "FILE: 'ITEM': MESSAGE" (or "FILE: MESSAGE" without an item).</summary>
    public CheckpointException(string filePath, string? item, string message, Exception? inner = null)
        : base(Compose(filePath, item, message), inner)
    {
        FilePath = filePath;
        Item = item;
    }

    private static string Compose(string file, string? item, string message) =>
        item is null ? $"{file}: {message}" : $"{file}: '{item}': {message}";
}

/// <summary>A safetensors file is malformed (truncated, bad header, bad offsets, wrong sizes, unknown dtype).</summary>
public sealed class SafetensorsFormatException(string filePath, string? tensor, string message, Exception? inner = null)
    : CheckpointException(filePath, tensor, message, inner);

/// <summary>The checkpoint's tensors do not match what the model expects (missing, unexpected, wrong shape).</summary>
public sealed class TensorMismatchException : CheckpointException
{
    /// <summary>Canonical names the model expects but the checkpoint lacks.</summary>
    public IReadOnlyList<string> Missing { get; }
    /// <summary>Canonical names in the checkpoint that the model has no parameter for.</summary>
    public IReadOnlyList<string> Unexpected { get; }
    /// <summary>Tensors present under the right name with the wrong shape (each entry describes both shapes).</summary>
    public IReadOnlyList<string> WrongShape { get; }

    /// <summary>Creates the error; the message lists up to 20 names per kind.</summary>
    public TensorMismatchException(string filePath, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> wrongShape)
        : base(filePath, null, Describe(missing, unexpected, wrongShape))
    {
        Missing = missing;
        Unexpected = unexpected;
        WrongShape = wrongShape;
    }

    private static string Describe(IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> wrongShape)
    {
        var parts = new List<string>();
        static string List(IReadOnlyList<string> xs) => string.Join(", ", xs.Take(20)) + (xs.Count > 20 ? $", … ({xs.Count} in all)" : "");
        if (missing.Count > 0) parts.Add($"missing tensors: {List(missing)}");
        if (unexpected.Count > 0) parts.Add($"unexpected tensors: {List(unexpected)}");
        if (wrongShape.Count > 0) parts.Add($"wrong shapes: {List(wrongShape)}");
        return string.Join("; ", parts);
    }
}

/// <summary>config.json (or another JSON config) lacks a field, has a mistyped one, or names an unsupported model.</summary>
public sealed class ConfigException(string filePath, string? field, string message, Exception? inner = null)
    : CheckpointException(filePath, field, message, inner);
