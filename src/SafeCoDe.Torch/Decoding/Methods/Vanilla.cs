using System.Text.Json.Serialization;
using SafeCoDe.Torch.Decoding.Sessions;
using static SafeCoDe.Torch.Decoding.Methods.SharedOptions;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>Plain decoding's options: only the shared length and sampling settings.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record VanillaOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => VanillaMethod.MethodName;
}

/// <summary>Plain decoding of the model on the real image (or none): no judge, no second branch.</summary>
public sealed class VanillaMethod : DecodingMethod<VanillaOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "vanilla";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "plain decoding";
    /// <inheritdoc/>
    public override bool FramesAsMethod => false;
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } = [MaxNewTokens, MaxTotalTokens, UniformMaxNewTokens, Temperature, TemperatureSafe, TopP, TopPSafe, TopK, Seed, Greedy];

    /// <inheritdoc/>
    protected override VanillaOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override MethodNeeds Needs(VanillaOptions o) => new(Image: false, Noised: null, Judge: false);
    /// <inheritdoc/>
    protected override DecodePhase Plan(DecodeContext context, DecodeSession session, VanillaOptions o)
    {
        session.DropNoised(); // prefilled with a noised branch by a caller that made both: the real one decodes alone
        return Continuation.Phase(context, session, Math.Min(context.Budget, context.Cap), o.Greedy ? 0 : o.TemperatureSafe, o.TopPSafe, o.TopKSampling);
    }
}
