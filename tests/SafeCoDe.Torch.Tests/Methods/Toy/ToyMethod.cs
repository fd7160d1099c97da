using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Methods.Toy;

/// <summary>The toy method's options: the shared settings, a bias and the token it is added to.</summary>
public sealed record ToyOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => ToyMethod.MethodName;
    /// <summary>Added to the logit of <see cref="Token"/> at every step.</summary>
    public double Bias { get; init; }
    /// <summary>The token the bias goes to.</summary>
    public long Token { get; init; } = 1000;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (!double.IsFinite(Bias)) throw new ArgumentException("toy bias must be finite");
        if (Token < 0) throw new ArgumentException("toy token must be ≥ 0");
    }
}

/// <summary>
/// A decoding method that exists only in this test project (as the toy family does): its own rule (a bias on one
/// token's logit, per row), its own options (<c>--toy-bias</c>, <c>--toy-token</c>) and one request-level step (it
/// appends a sentence to the prompt and records what it did). Registered at run time; no file under src/ knows it.
/// </summary>
public sealed class ToyMethod : DecodingMethod<ToyOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "toy";
    /// <summary>What the toy step appends to the prompt.</summary>
    public const string Suffix = " Answer in one word.";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "the test project's toy method (a logit bias on one token)";
    /// <inheritdoc/>
    public override bool FramesAsMethod => false;
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        new MethodOption<ToyOptions, double>
        {
            Name = "toy-bias", HelpName = "B", Codec = OptionCodecs.Double, Get = o => o.Bias, With = (o, v) => o with { Bias = v },
            Help = "The toy method's bias on --toy-token's logit [default: 0]",
        },
        new MethodOption<ToyOptions, long?>
        {
            Name = "toy-token", HelpName = "ID", Codec = OptionCodecs.OptionalLong, Get = o => o.Token, With = (o, v) => o with { Token = v ?? 1000 },
            Help = "The token the toy bias goes to [default: 1000]",
        },
    ];

    /// <inheritdoc/>
    protected override ToyOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override MethodNeeds Needs(ToyOptions o) => new(Image: false, Noised: null, Judge: false);
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(ToyOptions o) => [new ToyPromptStep()];
    /// <inheritdoc/>
    protected override DecodePhase Plan(DecodeContext context, DecodeSession session, ToyOptions o) => new()
    {
        Name = "toy", Chain = new RuleChain(new RealRow(), context.Ban(), new ToyBias(o.Token, o.Bias)), Selector = new Argmax(),
        Budget = Math.Min(context.Budget, context.Cap), Eos = context.Eos,
    };
}

/// <summary>The toy rule: + bias at one token's column of every row (per-row biases, one operation for all rows).</summary>
public sealed class ToyBias(long token, double bias) : LogitsRule
{
    /// <summary>The bias.</summary>
    public double Bias => bias;
    /// <summary>The token.</summary>
    public long Token => token;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        using var add = zeros_like(scores);
        for (int i = 0; i < rows.Sessions; i++)
        {
            var m = (ToyBias)members[i];
            using var b = m.Bias.ToScalar();
            using var cell = add.narrow(0, i, 1).narrow(1, m.Token, 1);
            cell.fill_(b);
        }
        return scores.Plus(add);
    }
}

/// <summary>The toy request step: appends <see cref="ToyMethod.Suffix"/> to the prompt before decoding.</summary>
public sealed class ToyPromptStep : IRequestStep
{
    /// <inheritdoc/>
    public string Name => "toy_prompt";

    /// <inheritdoc/>
    public Task ExecuteAsync(RequestContext request, CancellationToken cancel)
    {
        var before = request.Prompt;
        request.Prompt = before + ToyMethod.Suffix;
        request.RecordIo(before, request.Prompt);
        return Task.CompletedTask;
    }
}
