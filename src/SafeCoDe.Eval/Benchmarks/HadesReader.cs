namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Reads hades (work in progress).</summary>
internal sealed class HadesReader : IBenchmarkReader
{
    /// <inheritdoc/>
    public string Name => "hades";
    /// <inheritdoc/>
    public string Layout => "hades";
    /// <inheritdoc/>
    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection) => throw new NotImplementedException("hades reader: not written yet");
}
