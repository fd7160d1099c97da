namespace SafeCoDe.Torch.Models.Qwen;

/// <summary>
/// M-RoPE position ids of a prompt batch (HF's <c>get_rope_index</c> for images), computed on the host. Only the
/// attended tokens of a row count (left padding is skipped and gets position 1, as in HF). Text tokens take one
/// running position on all three axes; an image's tokens take (start + t, start + row, start + column) over its merged
/// grid, and the text after it resumes one past the largest of them. A row's next position (what its first generated
/// token gets) is one past its largest position: HF's rope delta plus the cache length, carried per row in the decode state.
/// </summary>
internal static class MRopeIndex
{
    /// <param name="valid">[B·T] attention mask, row-major.</param>
    /// <param name="isImage">[B·T] image placeholder tokens, row-major.</param>
    /// <param name="grids">(t, h, w) in patches of every image of the batch, in row order, then left to right within a row; null when the batch has no image input.</param>
    /// <param name="temporalIndex">Qwen2-VL numbers the frames of an image 0..t−1 on the temporal axis; Qwen2.5-VL scales them by
    /// seconds-per-grid, which is 0 for images, so all frames of an image sit at its start.</param>
    /// <returns>positions [3·B·T] (axis-major, then row-major) and each row's next position [B].</returns>
    public static (long[] positions, long[] next) Compute(long batch, long seq, bool[] valid, bool[] isImage,
        IReadOnlyList<(long t, long h, long w)>? grids, int mergeSize, bool temporalIndex)
    {
        if (valid.Length != batch * seq || isImage.Length != batch * seq)
            throw new ArgumentException($"mask/image-token arrays must hold {batch}x{seq} entries");
        long plane = batch * seq;
        var pos = new long[3 * plane];
        Array.Fill(pos, 1L);
        var next = new long[batch];
        int image = 0;
        for (long r = 0; r < batch; r++)
        {
            long p = 0;
            bool padded = false;
            long j = 0;
            while (j < seq)
            {
                long at = r * seq + j;
                if (!valid[at]) { padded = true; j++; continue; }
                if (!isImage[at]) { Set(pos, plane, at, p, p, p); p++; j++; continue; }
                if (grids is null || image >= grids.Count)
                    throw new ArgumentException($"row {r} has image tokens at position {j} beyond the {grids?.Count ?? 0} image(s) of image_grid_thw");
                var (gt, gh, gw) = grids[image];
                long lh = gh / mergeSize, lw = gw / mergeSize, count = gt * lh * lw;
                long k = 0;
                while (k < count)
                {
                    if (j >= seq)
                        throw new ArgumentException($"image {image} (grid {gt}x{gh}x{gw}) needs {count} image tokens but row {r} ends after {k}");
                    at = r * seq + j;
                    if (!valid[at]) { j++; continue; }
                    if (!isImage[at])
                        throw new ArgumentException($"image {image} (grid {gt}x{gh}x{gw}) needs {count} consecutive image tokens but row {r} has {k} at position {j - k}");
                    long ti = k / (lh * lw), hi = k / lw % lh, wi = k % lw;
                    Set(pos, plane, at, p + (temporalIndex ? ti : 0), p + hi, p + wi);
                    k++; j++;
                }
                p += Math.Max(temporalIndex ? gt - 1 : 0, Math.Max(lh - 1, lw - 1)) + 1;
                image++;
            }
            // Without any image input HF takes the row maximum over the padding's position 1 too.
            next[r] = grids is null && padded ? Math.Max(p, 2) : p;
        }
        if (grids is not null && image != grids.Count)
            throw new ArgumentException($"image_grid_thw describes {grids.Count} image(s) but the prompts hold image tokens for {image}");
        return (pos, next);
    }

    private static void Set(long[] pos, long plane, long at, long t, long h, long w)
    {
        pos[at] = t; pos[plane + at] = h; pos[2 * plane + at] = w;
    }
}
