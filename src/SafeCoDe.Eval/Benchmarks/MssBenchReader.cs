namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Reads mssbench (work in progress).</summary>
internal sealed class MssBenchReader : IBenchmarkReader
{
    /// <inheritdoc/>
    public string Name => "mssbench";
    /// <inheritdoc/>
    public string Layout => "mssbench";
    /// <inheritdoc/>
    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection) => throw new NotImplementedException("mssbench reader: not written yet");
}
