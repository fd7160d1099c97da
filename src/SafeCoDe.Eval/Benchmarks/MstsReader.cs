namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Reads msts (work in progress).</summary>
internal sealed class MstsReader : IBenchmarkReader
{
    /// <inheritdoc/>
    public string Name => "msts";
    /// <inheritdoc/>
    public string Layout => "msts";
    /// <inheritdoc/>
    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection) => throw new NotImplementedException("msts reader: not written yet");
}
