using System.Text.Json.Serialization;
using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using TorchSharp;
using static SafeCoDe.Torch.Decoding.Methods.SharedOptions;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>Visual contrastive decoding's options: the contrast weight α, the plausibility cut-off β and the noised view.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record VcdOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => VcdMethod.MethodName;
    /// <summary>Weight of the noised branch in (1+α)·z_r − α·z_n.</summary>
    public double Alpha { get; init; } = 1.0;
    /// <summary>The plausibility cut-off β: tokens with p_r &lt; β·max p_r are dropped.</summary>
    public double Beta { get; init; } = 0.1;
    /// <summary>How the noised branch's image is made.</summary>
    public NoiseKind Noise { get; init; } = NoiseKind.Pixel;
    /// <summary>σ of the pixel noise.</summary>
    public double NoiseStd { get; init; } = 0.1;
    /// <summary>Step t of the diffusion noise, in [0, 1000).</summary>
    public int DiffusionStep { get; init; } = 500;

    /// <inheritdoc/>
    public override void Validate()
    {
        Checks.Finite("alpha", Alpha, 0, 1000);
        Checks.Finite("noise std", NoiseStd, 0, 100);
        Checks.Finite("VCD β", Beta, 0, 1);
        base.Validate();
        if (Beta <= 0 || Beta > 1) throw new ArgumentException("VCD β must be in (0, 1]");
        if (DiffusionStep is < 0 or >= DiffusionNoise.Steps) throw new ArgumentException($"VCD noise step must be in [0, {DiffusionNoise.Steps})");
    }
}

/// <summary>
/// Visual contrastive decoding (Leng et al.): every token from (1+α)·z_r − α·z_n of the real and noised rows, with
/// tokens whose real logit is below log β + max z_r set to −∞ (the adaptive plausibility constraint); no judge.
/// </summary>
public sealed class VcdMethod : DecodingMethod<VcdOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "vcd";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "visual contrastive decoding on every token";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        new MethodOption<VcdOptions, double>
        {
            Name = "alpha", HelpName = "A", Codec = OptionCodecs.Double, Get = o => o.Alpha, With = (o, v) => o with { Alpha = v },
            Help = "α, weight of the noised branch in the contrast [default: 0.3; vcd: 1]",
        },
        .. NoiseOptions.For<VcdOptions>(o => o.Noise, (o, v) => o with { Noise = v }, o => o.NoiseStd, (o, v) => o with { NoiseStd = v },
            o => o.DiffusionStep, (o, v) => o with { DiffusionStep = v }),
        new MethodOption<VcdOptions, double>
        {
            Name = "vcd-beta", HelpName = "B", Codec = OptionCodecs.Double, Get = o => o.Beta, With = (o, v) => o with { Beta = v },
            Help = "VCD plausibility cut-off β, in (0, 1]" + Default(0.1),
        },
    ];

    /// <inheritdoc/>
    protected override VcdOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override MethodNeeds Needs(VcdOptions o) => new(Image: true, new NoisedView(o.Noise, o.NoiseStd, o.DiffusionStep), Judge: false);
    /// <inheritdoc/>
    protected override DecodePhase Plan(DecodeContext context, DecodeSession session, VcdOptions o)
    {
        session.ContrastWeight = o.Alpha;
        return Continuation.Phase(context, session, Math.Min(context.Budget, context.Cap), o.Greedy ? 0 : o.TemperatureSafe, o.TopPSafe, o.TopKSampling,
            new VcdContrast(o.Alpha, o.Beta));
    }
}

/// <summary>VCD's contrast of each session's [real, noised] rows with the β plausibility cut-off: one row out.</summary>
public sealed class VcdContrast(double alpha, double beta) : LogitsRule
{
    /// <summary>α and β (rows with equal settings run as one operation).</summary>
    public (double Alpha, double Beta) Settings => (alpha, beta);

    /// <inheritdoc/>
    public override int RowsOut(int rowsIn) => rowsIn is 1 or 2 ? 1 : throw new InvalidOperationException($"VCD's contrast needs a [real, noised] pair, not {rowsIn} rows");

    /// <inheritdoc/>
    /// <remarks>A session whose noised row is gone passes its real row through.</remarks>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        if (rows.RowsPerSession == 1) return scores;
        if (!Agree<VcdContrast, (double, double)>(members, m => m.Settings)) return PerSession(scores, rows, members);
        using var pairs = scores.reshape(rows.Sessions, 2, -1);
        using var real = pairs.select(1, 0);
        using var noised = pairs.select(1, 1);
        return Contrast(real, noised, alpha, beta);
    }

    /// <summary>(1+α)·z_r − α·z_n, with tokens whose real logit is below log β + max z_r set to −∞ (p_r &lt; β·max p_r).</summary>
    public static Tensor Contrast(Tensor real, Tensor noised, double alpha, double beta)
    {
        using var scope = NewDisposeScope();
        using var onePlusAlpha = (1 + alpha).ToScalar();
        using var a = alpha.ToScalar();
        using var logBeta = Math.Log(beta).ToScalar();
        var cd = real * onePlusAlpha - noised * a;
        var cutoff = real.max(-1, keepdim: true).values.Plus(logBeta);
        return cd.masked_fill(real.lt(cutoff), Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }
}
