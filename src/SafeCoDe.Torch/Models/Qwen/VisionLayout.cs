using SafeCoDe.Torch.Checkpoints;

namespace SafeCoDe.Torch.Models.Qwen;

/// <summary>
/// Host-side bookkeeping of one vision forward over a stack of images (their patch rows concatenated in image order):
/// each patch's (row, column) for the 2-D rotary embedding, the attention segments, and for Qwen2.5-VL the window
/// permutation of merge units with its inverse. Patch rows arrive in merge-window order: for every frame, 2×2 (merge
/// size²) blocks row by row, the patches of a block consecutive.
/// </summary>
internal sealed class VisionLayout
{
    /// <summary>Patch rows in the order the blocks see them (window order for Qwen2.5-VL).</summary>
    public long[] Rows { get; }
    /// <summary>Patch columns, aligned with <see cref="Rows"/>.</summary>
    public long[] Cols { get; }
    /// <summary>Lengths of the consecutive segments attended to as a whole: one per frame of each image.</summary>
    public long[] FullSegments { get; }
    /// <summary>Qwen2.5-VL: lengths of the windows (window order); null for Qwen2-VL.</summary>
    public long[]? WindowSegments { get; }
    /// <summary>Qwen2.5-VL: merge unit taken at each window-order slot; null for Qwen2-VL.</summary>
    public long[]? WindowIndex { get; }
    /// <summary>Qwen2.5-VL: slot holding each merge unit (the inverse permutation); null for Qwen2-VL.</summary>
    public long[]? InverseWindowIndex { get; }
    /// <summary>Patch rows over all images.</summary>
    public long NumPatches => Rows.Length;
    /// <summary>Tokens after the merger (patches / merge size²) over all images.</summary>
    public long NumMergedTokens { get; }
    /// <summary>Merged tokens per image, in image order.</summary>
    public long[] TokensPerImage { get; }

    private VisionLayout(long[] rows, long[] cols, long[] full, long[]? windows, long[]? index, long[]? inverse, long merged, long[] perImage)
    {
        Rows = rows; Cols = cols; FullSegments = full; WindowSegments = windows; WindowIndex = index; InverseWindowIndex = inverse;
        NumMergedTokens = merged; TokensPerImage = perImage;
    }

    /// <param name="grids">(t, h, w) in patches per image.</param>
    /// <param name="windowed">Qwen2.5-VL window attention (window index and window segments).</param>
    public static VisionLayout Build(IReadOnlyList<(long t, long h, long w)> grids, QwenVisionConfig cfg, bool windowed)
    {
        int m = cfg.SpatialMergeSize, unit = m * m;
        var rows = new List<long>(); var cols = new List<long>(); var full = new List<long>();
        var perImage = new long[grids.Count];
        for (int i = 0; i < grids.Count; i++)
        {
            var (t, h, w) = grids[i];
            if (t <= 0 || h <= 0 || w <= 0 || h % m != 0 || w % m != 0)
                throw new ArgumentException($"image_grid_thw row {i} = ({t}, {h}, {w}): every entry must be positive and h, w multiples of spatial_merge_size {m}");
            perImage[i] = t * h * w / unit;
            for (long f = 0; f < t; f++)
            {
                for (long bh = 0; bh < h / m; bh++)
                    for (long bw = 0; bw < w / m; bw++)
                        for (long ih = 0; ih < m; ih++)
                            for (long iw = 0; iw < m; iw++) { rows.Add(bh * m + ih); cols.Add(bw * m + iw); }
                full.Add(h * w);
            }
        }
        long merged = perImage.Sum();
        if (!windowed) return new VisionLayout(rows.ToArray(), cols.ToArray(), full.ToArray(), null, null, null, merged, perImage);

        // Windows of ws×ws merge units, taken row by row over each frame's merged grid (cut at the right and bottom edges).
        int ws = cfg.WindowSize / m / cfg.PatchSize;
        var index = new List<long>((int)merged);
        var windows = new List<long>();
        long baseId = 0;
        foreach (var (t, h, w) in grids)
        {
            long lh = h / m, lw = w / m;
            for (long f = 0; f < t; f++)
                for (long wr = 0; wr < lh; wr += ws)
                    for (long wc = 0; wc < lw; wc += ws)
                    {
                        long n = 0;
                        for (long r = wr; r < Math.Min(wr + ws, lh); r++)
                            for (long c = wc; c < Math.Min(wc + ws, lw); c++) { index.Add(baseId + f * lh * lw + r * lw + c); n++; }
                        windows.Add(n * unit);
                    }
            baseId += t * lh * lw;
        }
        var idx = index.ToArray();
        var inverse = new long[idx.Length];
        for (int s = 0; s < idx.Length; s++) inverse[idx[s]] = s;
        // The blocks see patches with their merge units permuted into window order.
        var pr = new long[rows.Count]; var pc = new long[cols.Count];
        for (int s = 0; s < idx.Length; s++)
            for (int k = 0; k < unit; k++) { pr[s * unit + k] = rows[(int)(idx[s] * unit + k)]; pc[s * unit + k] = cols[(int)(idx[s] * unit + k)]; }
        return new VisionLayout(pr, pc, full.ToArray(), windows.ToArray(), idx, inverse, merged, perImage);
    }
}
