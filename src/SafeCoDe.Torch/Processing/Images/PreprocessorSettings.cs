using System.Text.Json;
using SafeCoDe.Torch.Checkpoints;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// A <c>size</c>-style field of preprocessor_config.json: one of HF's key sets {height, width}, {shortest_edge},
/// {shortest_edge, longest_edge}, {longest_edge}, {max_height, max_width}; an integer or a [height, width] list in
/// older files.
/// </summary>
public sealed record SizeSpec(int? Height = null, int? Width = null, int? ShortestEdge = null, int? LongestEdge = null,
    int? MaxHeight = null, int? MaxWidth = null)
{
    /// <summary>{height: side, width: side}.</summary>
    public static SizeSpec Square(int side) => new(Height: side, Width: side);

    /// <summary>The keys that are set, e.g. "{shortest_edge=224}".</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (Height is { } h) parts.Add($"height={h}");
        if (Width is { } w) parts.Add($"width={w}");
        if (ShortestEdge is { } s) parts.Add($"shortest_edge={s}");
        if (LongestEdge is { } l) parts.Add($"longest_edge={l}");
        if (MaxHeight is { } mh) parts.Add($"max_height={mh}");
        if (MaxWidth is { } mw) parts.Add($"max_width={mw}");
        return "{" + string.Join(", ", parts) + "}";
    }

    /// <summary>
    /// Reads <paramref name="key"/>; an integer means a square when <paramref name="defaultToSquare"/>, else the
    /// shortest edge (HF get_size_dict). <paramref name="extraKeys"/> are further accepted object keys (Qwen's
    /// min_pixels/max_pixels), returned in <paramref name="extras"/>.
    /// </summary>
    internal static SizeSpec? Read(JsonConfig c, string key, bool defaultToSquare, out Dictionary<string, int> extras, params string[] extraKeys)
    {
        extras = [];
        if (c.Raw(key) is not { } v) return null;
        switch (v.ValueKind)
        {
            case JsonValueKind.Number:
                int n = c.Int(key);
                Positive(c, key, n);
                return defaultToSquare ? Square(n) : new SizeSpec(ShortestEdge: n);
            case JsonValueKind.Array:
                var a = c.IntArray(key, []);
                if (a.Length == 1) { Positive(c, key, a[0]); return defaultToSquare ? Square(a[0]) : new SizeSpec(ShortestEdge: a[0]); }
                if (a.Length != 2) throw new ConfigException(c.File, c.PathOf(key), $"expected [height, width], found {a.Length} numbers");
                Positive(c, key, a[0]); Positive(c, key, a[1]);
                return new SizeSpec(Height: a[0], Width: a[1]);
            case JsonValueKind.Object:
                var o = c.Object(key)!;
                var keys = o.Keys.Where(o.Has).ToHashSet();
                var known = new[] { "height", "width", "shortest_edge", "longest_edge", "max_height", "max_width" };
                foreach (var k in keys)
                    if (!known.Contains(k) && !extraKeys.Contains(k))
                        throw new ConfigException(c.File, o.PathOf(k), $"unknown size key; expected one of {string.Join(", ", known.Concat(extraKeys))}");
                int? Get(string k)
                {
                    var x = o.IntOrNull(k);
                    if (x is { } xv) Positive(o, k, xv);
                    return x;
                }
                foreach (var k in extraKeys) if (Get(k) is { } e) extras[k] = e;
                var spec = new SizeSpec(Get("height"), Get("width"), Get("shortest_edge"), Get("longest_edge"), Get("max_height"), Get("max_width"));
                var core = keys.Where(k => !extraKeys.Contains(k)).Order().ToArray();
                string set = string.Join(",", core);
                if (core.Length > 0 && set is not ("height,width" or "shortest_edge" or "longest_edge,shortest_edge" or "longest_edge" or "max_height,max_width"))
                    throw new ConfigException(c.File, c.PathOf(key),
                        $"keys {{{string.Join(", ", core)}}} are not a valid size; use {{height, width}}, {{shortest_edge}}, {{shortest_edge, longest_edge}}, {{longest_edge}} or {{max_height, max_width}}");
                return spec;
            default:
                throw new ConfigException(c.File, c.PathOf(key), $"expected a size object, a number or [height, width], found {v.ValueKind}");
        }
    }

    private static void Positive(JsonConfig c, string key, int v)
    {
        if (v <= 0) throw new ConfigException(c.File, c.PathOf(key), $"must be positive, found {v}");
    }
}

/// <summary>
/// The settings every HF image processor shares, read from preprocessor_config.json over the class defaults
/// of each family. Fields a family does not use are ignored, as HF ignores them.
/// </summary>
public sealed record PreprocessorSettings
{
    /// <summary>Whether images are resized to <see cref="Size"/>.</summary>
    public bool DoResize { get; init; } = true;
    /// <summary>The resize target (key set depends on the family).</summary>
    public SizeSpec? Size { get; init; }
    /// <summary>The PIL code from the file (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming).</summary>
    public int ResampleCode { get; init; } = 3;
    /// <summary>Whether resized images are center-cropped to <see cref="CropSize"/>.</summary>
    public bool DoCenterCrop { get; init; }
    /// <summary>Height and width of the center crop.</summary>
    public SizeSpec? CropSize { get; init; }
    /// <summary>Whether 8-bit values are multiplied by <see cref="RescaleFactor"/>.</summary>
    public bool DoRescale { get; init; } = true;
    /// <summary>Scale applied to 8-bit values (1/255 by default).</summary>
    public double RescaleFactor { get; init; } = 1.0 / 255;
    /// <summary>Whether (x − mean) / std is applied per channel.</summary>
    public bool DoNormalize { get; init; } = true;
    /// <summary>Per-channel (R, G, B) mean; CLIP's by default.</summary>
    public double[] ImageMean { get; init; } = [0.48145466, 0.4578275, 0.40821073];
    /// <summary>Per-channel (R, G, B) standard deviation; CLIP's by default.</summary>
    public double[] ImageStd { get; init; } = [0.26862954, 0.26130258, 0.27577711];
    /// <summary>LLaVA: pad to a square in the mean color before resizing; LLaVA-NeXT: pad tiles (as the family's processor uses it).</summary>
    public bool DoPad { get; init; }

    /// <summary>The filter actually used: LANCZOS becomes BICUBIC as in the torchvision backend of transformers 5.17 with torchvision 0.26.</summary>
    public ResampleFilter Filter => ResampleCode switch
    {
        0 => ResampleFilter.Nearest,
        1 => ResampleFilter.Bicubic,
        2 => ResampleFilter.Bilinear,
        3 => ResampleFilter.Bicubic,
        _ => throw new InvalidOperationException($"resample {ResampleCode} is not supported"),
    };

    /// <summary>OpenAI CLIP's normalisation mean.</summary>
    public static readonly double[] ClipMean = [0.48145466, 0.4578275, 0.40821073];
    /// <summary>OpenAI CLIP's normalisation standard deviation.</summary>
    public static readonly double[] ClipStd = [0.26862954, 0.26130258, 0.27577711];
    /// <summary>0.5 per channel (the mean and std of SigLIP / IDEFICS-style processors).</summary>
    public static readonly double[] HalfMean = [0.5, 0.5, 0.5];

    /// <summary>Reads the shared fields of <paramref name="c"/> over <paramref name="defaults"/>.</summary>
    internal static PreprocessorSettings Read(JsonConfig c, PreprocessorSettings defaults, bool sizeDefaultsToSquare, params string[] sizeExtraKeys)
    {
        int resample = c.Int("resample", defaults.ResampleCode);
        if (resample is not (0 or 1 or 2 or 3))
            throw new ConfigException(c.File, "resample",
                $"resample {resample} ({(resample == 4 ? "box" : resample == 5 ? "hamming" : "unknown")}) is not supported; use 0 (nearest), 2 (bilinear), 3 (bicubic) or 1 (lanczos, run as bicubic)");
        var mean = Channels(c, "image_mean", defaults.ImageMean);
        var std = Channels(c, "image_std", defaults.ImageStd);
        foreach (var (s, i) in std.Select((s, i) => (s, i)))
            if (!(s > 0)) throw new ConfigException(c.File, $"image_std[{i}]", $"must be positive, found {s}");
        double rescale = c.Double("rescale_factor", defaults.RescaleFactor);
        if (!(rescale > 0)) throw new ConfigException(c.File, "rescale_factor", $"must be positive, found {rescale}");
        return defaults with
        {
            DoResize = c.Bool("do_resize", defaults.DoResize),
            Size = SizeSpec.Read(c, "size", sizeDefaultsToSquare, out _, sizeExtraKeys) ?? defaults.Size,
            ResampleCode = resample,
            DoCenterCrop = c.Bool("do_center_crop", defaults.DoCenterCrop),
            CropSize = SizeSpec.Read(c, "crop_size", true, out _) ?? defaults.CropSize,
            DoRescale = c.Bool("do_rescale", defaults.DoRescale),
            RescaleFactor = rescale,
            DoNormalize = c.Bool("do_normalize", defaults.DoNormalize),
            ImageMean = mean,
            ImageStd = std,
            DoPad = c.Bool("do_pad", defaults.DoPad),
        };
    }

    /// <summary>A per-channel list of 3, or one number for all channels.</summary>
    private static double[] Channels(JsonConfig c, string key, double[] fallback)
    {
        if (c.Raw(key) is not { } v) return fallback;
        if (v.ValueKind == JsonValueKind.Number) { double x = c.Double(key); return [x, x, x]; }
        var a = c.DoubleArray(key, fallback);
        if (a.Length != 3) throw new ConfigException(c.File, key, $"expected 3 values (R, G, B), found {a.Length}");
        return a;
    }
}
