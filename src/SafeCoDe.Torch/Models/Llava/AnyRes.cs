namespace SafeCoDe.Torch.Models.Llava;

/// <summary>LLaVA-NeXT "anyres" geometry, shared by the model (feature packing) and the image processor (tiling).</summary>
public static class AnyRes
{
    /// <summary>
    /// The candidate resolution ([height, width]) that keeps the most of the original image's pixels after an
    /// aspect-preserving downscale, ties broken by the least wasted area (HF select_best_resolution).
    /// </summary>
    public static (int Height, int Width) SelectBestResolution(int origHeight, int origWidth, IReadOnlyList<int[]> pinpoints)
    {
        (int, int) best = (0, 0);
        long maxEffective = -1, minWasted = long.MaxValue;
        foreach (var p in pinpoints)
        {
            int h = p[0], w = p[1];
            double scale = Math.Min((double)w / origWidth, (double)h / origHeight);
            long dw = (long)(origWidth * scale), dh = (long)(origHeight * scale);
            long effective = Math.Min(dw * dh, (long)origWidth * origHeight);
            long wasted = (long)w * h - effective;
            if (effective > maxEffective || (effective == maxEffective && wasted < minWasted))
            {
                maxEffective = effective; minWasted = wasted; best = (h, w);
            }
        }
        return best;
    }

    /// <summary>Tiles along (height, width) for an image, given the tower's tile size.</summary>
    public static (int Rows, int Cols) GridShape(int origHeight, int origWidth, IReadOnlyList<int[]> pinpoints, int tileSize)
    {
        var (h, w) = SelectBestResolution(origHeight, origWidth, pinpoints);
        return (h / tileSize, w / tileSize);
    }

    /// <summary>Number of tiles the processor produces: the grid plus one base image.</summary>
    public static int NumPatches(int origHeight, int origWidth, IReadOnlyList<int[]> pinpoints, int tileSize)
    {
        var (r, c) = GridShape(origHeight, origWidth, pinpoints, tileSize);
        return r * c + 1;
    }

    /// <summary>
    /// The rows/columns of a [C, H, W] feature grid that remain after removing the padding the processor added around
    /// the image (HF unpad_image). Returns (top, height, left, width).
    /// </summary>
    public static (int Top, int Height, int Left, int Width) UnpadRegion(int curHeight, int curWidth, int origHeight, int origWidth)
    {
        double originalAspect = (double)origWidth / origHeight;
        double currentAspect = (double)curWidth / curHeight;
        if (originalAspect > currentAspect)
        {
            double scale = (double)curWidth / origWidth;
            int newHeight = (int)Math.Round(origHeight * scale, 7, MidpointRounding.ToEven);
            int pad = (curHeight - newHeight) / 2;
            return (pad, curHeight - 2 * pad, 0, curWidth);
        }
        else
        {
            double scale = (double)curHeight / origHeight;
            int newWidth = (int)Math.Round(origWidth * scale, 7, MidpointRounding.ToEven);
            int pad = (curWidth - newWidth) / 2;
            return (0, curHeight, pad, curWidth - 2 * pad);
        }
    }
}
