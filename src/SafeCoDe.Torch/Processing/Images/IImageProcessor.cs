using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// Turns the images of one prompt into the model's image inputs, as the family's HF image processor does, and says
/// how many placeholder tokens each image needs in the prompt.
/// </summary>
public interface IImageProcessor
{
    /// <summary>The model_type this processor serves (e.g. <c>llava_next</c>).</summary>
    string Family { get; }

    /// <summary>The HF image-processor class it reproduces (e.g. <c>LlavaNextImageProcessor</c>).</summary>
    string ProcessorClass { get; }

    /// <summary>The settings read from preprocessor_config.json.</summary>
    PreprocessorSettings Settings { get; }

    /// <summary>
    /// Processes the images of one prompt, in order. Tensors are named and shaped as HF returns them for a single
    /// sample with these images (see <see cref="ProcessedImages"/>).
    /// </summary>
    ProcessedImages Process(IReadOnlyList<RgbImage> images);

    /// <summary>The layout (tiles, token count) of an image of this size, computed without its pixels.</summary>
    ImageLayout Layout(int width, int height);
}

/// <summary>
/// What the prompt builder needs to expand one image's placeholder: the number of image tokens and, per family,
/// how they are organised.
/// </summary>
/// <param name="Width">Width of the image given to the processor.</param>
/// <param name="Height">Height of the image given to the processor.</param>
/// <param name="NumImageTokens">
/// Image tokens the model consumes for this image: LLaVA (patches, +1 with the "full" feature strategy),
/// LLaVA-NeXT (base tile + the unpadded grid with one newline per row, from the vision config and the image size),
/// Qwen2-VL (t·h·w / merge²), InstructBLIP (query tokens), IDEFICS (one <c>&lt;image&gt;</c> token; the features enter
/// through cross-attention), Idefics3 (tokens per tile × tiles).
/// </param>
/// <param name="Tiles">Images the vision tower sees for it (LLaVA-NeXT base + grid, Idefics3 grid + global, else 1).</param>
/// <param name="Rows">Idefics3 / LLaVA-NeXT grid rows (0 when the image is not split).</param>
/// <param name="Cols">Idefics3 / LLaVA-NeXT grid columns (0 when the image is not split).</param>
/// <param name="TokensPerTile">Idefics3: image tokens per tile (image_seq_len); others 0.</param>
/// <param name="GridThw">Qwen2-VL: (t, h, w) patch grid; others null.</param>
public sealed record ImageLayout(int Width, int Height, int NumImageTokens, int Tiles = 1, int Rows = 0, int Cols = 0,
    int TokensPerTile = 0, (int T, int H, int W)? GridThw = null);

/// <summary>
/// The processed images of one prompt: CPU tensors named as HF names them, and one layout per image.
/// <list type="bullet">
/// <item>llava, instructblip: <c>pixel_values</c> float32 [n, 3, H, W]</item>
/// <item>llava_next: <c>pixel_values</c> float32 [n, max tiles, 3, H, W] (images with fewer tiles are zero-padded),
/// <c>image_sizes</c> int64 [n, 2] (height, width)</item>
/// <item>qwen2_vl, qwen2_5_vl: <c>pixel_values</c> float32 [Σ t·h·w, 3·T·P·P], <c>image_grid_thw</c> int64 [n, 3]</item>
/// <item>idefics: <c>pixel_values</c> float32 [1, n, 3, H, W]</item>
/// <item>idefics3: <c>pixel_values</c> float32 [1, Σ tiles, 3, H, W], <c>pixel_attention_mask</c> float32 [1, Σ tiles, H, W]</item>
/// </list>
/// Disposing it disposes the tensors.
/// </summary>
public sealed class ProcessedImages : IDisposable
{
    /// <summary>The image inputs by HF name (see the class summary for shapes).</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }
    /// <summary>One layout per image, in order.</summary>
    public IReadOnlyList<ImageLayout> Images { get; }

    /// <summary>Takes ownership of <paramref name="tensors"/>.</summary>
    public ProcessedImages(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyList<ImageLayout> images)
    {
        Tensors = tensors;
        Images = images;
    }

    /// <summary>The tensor named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">There is no such input.</exception>
    public Tensor this[string name] => Tensors.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"no '{name}' among the processed image inputs ({string.Join(", ", Tensors.Keys)})");

    /// <summary>Image tokens over all images.</summary>
    public int TotalImageTokens => Images.Sum(i => i.NumImageTokens);

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }

    /// <summary>A zeroed float32 CPU tensor, to be filled through <see cref="Span"/>.</summary>
    internal static Tensor Floats(params long[] shape) => zeros(shape, ScalarType.Float32);

    /// <summary>The memory of a contiguous float32 CPU tensor.</summary>
    internal static Span<float> Span(Tensor t) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.bytes);
    internal static Tensor Longs(long[] data, params long[] shape) => tensor(data, shape, ScalarType.Int64);
}
