namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Reads jsonl (work in progress).</summary>
internal sealed class JsonlReader : IBenchmarkReader
{
    /// <inheritdoc/>
    public string Name => "jsonl";
    /// <inheritdoc/>
    public string Layout => "jsonl";
    /// <inheritdoc/>
    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection) => throw new NotImplementedException("jsonl reader: not written yet");
}
