namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Reads mossbench (work in progress).</summary>
internal sealed class MossBenchReader : IBenchmarkReader
{
    /// <inheritdoc/>
    public string Name => "mossbench";
    /// <inheritdoc/>
    public string Layout => "mossbench";
    /// <inheritdoc/>
    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection) => throw new NotImplementedException("mossbench reader: not written yet");
}
