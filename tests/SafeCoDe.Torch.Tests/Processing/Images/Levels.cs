namespace SafeCoDe.Torch.Tests.Processing.Images;

/// <summary>
/// Differences between two normalised pixel tensors measured in 8-bit levels: |a − b| · std_c · 255 undoes the
/// normalisation of channel c, so 1.0 is one step of the 8-bit input.
/// </summary>
public sealed record LevelStats(long Count, double MaxLevels, double FractionWithinOne, long OverOne, double MaxAbs, long Identical)
{
    public static LevelStats Compare(ReadOnlySpan<float> ours, ReadOnlySpan<float> reference, Func<long, int> channelOf, double[] std)
    {
        if (ours.Length != reference.Length) throw new ArgumentException($"lengths differ: {ours.Length} vs {reference.Length}");
        double max = 0, maxAbs = 0;
        long over = 0, identical = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            double abs = Math.Abs((double)ours[i] - reference[i]);
            if (ours[i] == reference[i]) identical++;
            maxAbs = Math.Max(maxAbs, abs);
            double d = abs * std[channelOf(i)] * 255.0;
            if (double.IsNaN(d)) d = double.PositiveInfinity;
            if (d > max) max = d;
            if (d > 1.0 + 1e-3) over++;
        }
        return new LevelStats(ours.Length, max, ours.Length == 0 ? 1 : 1.0 - (double)over / ours.Length, over, maxAbs, identical);
    }

    /// <summary>Channel of element i of a [..., 3, H, W] tensor.</summary>
    public static Func<long, int> Chw(int height, int width) => i => (int)(i / ((long)height * width) % 3);

    /// <summary>Channel of element i of Qwen's [patches, 3·T·P·P] rows.</summary>
    public static Func<long, int> QwenRows(int rowLength) => i => (int)(i % rowLength / (rowLength / 3));

    public override string ToString() =>
        $"max {MaxLevels:F3} levels, {100 * FractionWithinOne:F3}% within one level, max |Δ| {MaxAbs:G3}, {Identical}/{Count} bit-identical";
}
