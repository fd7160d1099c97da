using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Generation;

/// <summary>Decoding settings. Temperature 0 means greedy; top-k 0 and top-p 1 switch those filters off.</summary>
public sealed record SamplingOptions
{
    /// <summary>Most tokens generated per row; also the extra cache capacity reserved at prefill.</summary>
    public int MaxNewTokens { get; init; } = 128;
    /// <summary>EOS ids are suppressed until this many tokens were generated.</summary>
    public int MinNewTokens { get; init; }
    /// <summary>Softmax temperature; ≤ 0 means greedy (argmax).</summary>
    public double Temperature { get; init; }
    /// <summary>Keep the k most likely tokens before sampling; 0 switches the filter off.</summary>
    public int TopK { get; init; }
    /// <summary>Nucleus threshold in (0, 1]; 1 switches the filter off.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Seed of the sampling generator (null: nondeterministic).</summary>
    public long? Seed { get; init; }
    /// <summary>Ids that end a row (the EOS token itself is included in the output).</summary>
    public IReadOnlyList<long> EosTokenIds { get; init; } = [];
    /// <summary>Id fed to rows that already finished (their output is ignored).</summary>
    public long PadTokenId { get; init; }

    /// <summary>True when <see cref="Temperature"/> ≤ 0.</summary>
    public bool Greedy => Temperature <= 0;

    /// <summary>Checks the ranges of every field.</summary>
    /// <exception cref="ArgumentException">A value is out of range (negative counts, min &gt; max, negative or NaN temperature, top-p outside (0, 1]).</exception>
    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException("max new tokens must be ≥ 0");
        if (MinNewTokens < 0 || MinNewTokens > MaxNewTokens) throw new ArgumentException("min new tokens must be between 0 and max new tokens");
        if (double.IsNaN(Temperature) || Temperature < 0) throw new ArgumentException("temperature must be ≥ 0");
        if (TopK < 0) throw new ArgumentException("top-k must be ≥ 0");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException("top-p must be in (0, 1]");
    }
}

/// <summary>The reference loop's token choice over [batch, vocab] logits (written on the library's <see cref="LogitsOps"/>).</summary>
public static class Sampler
{
    /// <summary>Argmax when greedy, else temperature → top-k → top-p → multinomial with a CPU generator (result on the CPU).</summary>
    public static Tensor Choose(Tensor logits, SamplingOptions o, Generator? gen)
    {
        using var scope = NewDisposeScope();
        if (o.Greedy) return logits.argmax(1).MoveToOuterDisposeScope();
        using var temperature = o.Temperature.ToScalar();
        var l = logits / temperature;
        l = LogitsOps.TopK(l, o.TopK);
        l = LogitsOps.TopP(l, o.TopP);
        var probs = l.softmax(1);
        return multinomial(probs.cpu(), 1, false, gen).squeeze(1).MoveToOuterDisposeScope();
    }
}
