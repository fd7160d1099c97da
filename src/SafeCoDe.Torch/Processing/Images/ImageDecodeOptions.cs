namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// Limits and choices for <see cref="ImageDecoder"/>. The limits are checked before any pixel is decoded (file size,
/// then the dimensions the header declares), and the decoder's allocator refuses any single buffer above
/// <see cref="MaxBufferMegabytes"/>, so crafted files cannot make decoding use unbounded memory.
/// </summary>
public sealed record ImageDecodeOptions
{
    /// <summary>The default: 64 megapixels, 32768 pixels a side, 256 MiB files.</summary>
    public static ImageDecodeOptions Default { get; } = new();

    /// <summary>Largest accepted <c>width * height</c> (default 64,000,000).</summary>
    public long MaxPixels { get; init; } = 64_000_000;

    /// <summary>Largest accepted width or height (default 32768).</summary>
    public int MaxSide { get; init; } = 32_768;

    /// <summary>
    /// Largest decoded image in bytes, counted as the decoder's RGBA buffer (4 bytes a pixel; default 192 MiB, about
    /// 50 megapixels). Checked from the header before decoding: a tiny, highly compressed file (an all-black
    /// 8000×8000 PNG) is refused here instead of expanding to gigabytes downstream.
    /// </summary>
    public long MaxDecodedBytes { get; init; } = 192L * 1024 * 1024;

    /// <summary>Largest accepted encoded file (default 256 MiB).</summary>
    public long MaxFileBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>
    /// Largest single buffer the decoder may allocate, in MiB. Null: derived from <see cref="MaxPixels"/> (8 bytes a
    /// pixel, at least 64 MiB), enough for every supported format at the pixel limit.
    /// </summary>
    public int? MaxBufferMegabytes { get; init; }

    /// <summary>Apply the EXIF orientation tag (default true), as viewers and cameras intend.</summary>
    public bool ApplyExifOrientation { get; init; } = true;

    /// <summary>Background that transparent pixels are composited over (default white).</summary>
    public (byte R, byte G, byte B) Background { get; init; } = (255, 255, 255);

    internal int EffectiveBufferMegabytes =>
        MaxBufferMegabytes ?? (int)Math.Clamp(MaxPixels * 8 / (1024 * 1024) + 1, 64, int.MaxValue);

    internal void Validate()
    {
        if (MaxPixels <= 0) throw new ArgumentOutOfRangeException(nameof(MaxPixels), "must be positive");
        if (MaxSide <= 0) throw new ArgumentOutOfRangeException(nameof(MaxSide), "must be positive");
        if (MaxDecodedBytes <= 0) throw new ArgumentOutOfRangeException(nameof(MaxDecodedBytes), "must be positive");
        if (MaxFileBytes <= 0) throw new ArgumentOutOfRangeException(nameof(MaxFileBytes), "must be positive");
        if (MaxBufferMegabytes is <= 0) throw new ArgumentOutOfRangeException(nameof(MaxBufferMegabytes), "must be positive");
    }
}
