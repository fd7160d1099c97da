namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Reads mm-safetybench (work in progress).</summary>
internal sealed class MmSafetyBenchReader : IBenchmarkReader
{
    /// <inheritdoc/>
    public string Name => "mm-safetybench";
    /// <inheritdoc/>
    public string Layout => "mm-safetybench";
    /// <inheritdoc/>
    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection) => throw new NotImplementedException("mm-safetybench reader: not written yet");
}
