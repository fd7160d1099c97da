using SafeCoDe.Torch.Decoding.Noise;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>The options of a method with a noised branch (<c>noise</c>, <c>noise-std</c>, <c>vcd-noise-step</c>), for its own options record.</summary>
public static class NoiseOptions
{
    /// <summary>The noise kinds as the command line and JSON spell them (<c>vcd</c>: the diffusion noise of visual contrastive decoding).</summary>
    public static OptionCodec<NoiseKind> Kinds { get; } = OptionCodecs.Choice((NoiseKind.Pixel, "pixel"), (NoiseKind.Diffusion, "vcd"));

    /// <summary>The three options over the fields of <typeparamref name="T"/>.</summary>
    public static MethodOption[] For<T>(Func<T, NoiseKind> kind, Func<T, NoiseKind, T> withKind, Func<T, double> std, Func<T, double, T> withStd,
        Func<T, int> step, Func<T, int, T> withStep) where T : DecodingOptions =>
    [
        new MethodOption<T, NoiseKind>
        {
            Name = "noise", Codec = Kinds, Get = kind, With = withKind,
            Help = "How the noised image is made: pixel (Gaussian noise on the RGB image) or vcd (VCD's diffusion noise on the pixel tensor)" + SharedOptions.Default("pixel"),
        },
        new MethodOption<T, double>
        {
            Name = "noise-std", HelpName = "S", Codec = OptionCodecs.Double, Get = std, With = withStd,
            Help = "σ of the pixel noise, on pixel values in [0, 1]" + SharedOptions.Default(0.1),
        },
        new MethodOption<T, int>
        {
            Name = "vcd-noise-step", HelpName = "T", Codec = OptionCodecs.Int, Get = step, With = withStep,
            Help = $"Diffusion step t of --noise vcd, in [0, {DiffusionNoise.Steps})" + SharedOptions.Default(500),
        },
    ];
}
