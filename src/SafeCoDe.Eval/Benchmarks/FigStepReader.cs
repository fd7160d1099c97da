namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Reads figstep (work in progress).</summary>
internal sealed class FigStepReader : IBenchmarkReader
{
    /// <inheritdoc/>
    public string Name => "figstep";
    /// <inheritdoc/>
    public string Layout => "figstep";
    /// <inheritdoc/>
    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection) => throw new NotImplementedException("figstep reader: not written yet");
}
