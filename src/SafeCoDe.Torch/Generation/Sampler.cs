using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Generation;

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

/// <summary>Pure steps on float32 [batch, vocab] logits, all on the logits' device (no host synchronisation).</summary>
public static class Sampler
{
    /// <summary>Sets the ids in <paramref name="index"/> (int64, on the logits' device, built once per request) to −∞.</summary>
    public static Tensor Suppress(Tensor logits, Tensor? index) =>
        index is null || index.numel() == 0 ? logits.alias() : logits.index_fill(logits.dim() - 1, index, Scalars.NegativeInfinity);

    /// <summary>An int64 index of <paramref name="ids"/> on <paramref name="device"/> for <see cref="Suppress(Tensor, Tensor?)"/> (null when empty).</summary>
    public static Tensor? Index(IReadOnlyList<long> ids, Device device)
    {
        if (ids.Count == 0) return null;
        using var cpu = tensor(ids.ToArray(), ScalarType.Int64);
        return cpu.to(device).DetachFromDisposeScope();
    }

    /// <summary>Sets the given token ids to −∞ (uploads the ids; in loops prefer an <see cref="Index"/> built once).</summary>
    public static Tensor Suppress(Tensor logits, IReadOnlyList<long> ids)
    {
        if (ids.Count == 0) return logits.alias();
        using var cpu = tensor(ids.ToArray(), ScalarType.Int64);
        using var idx = cpu.to(logits.device);
        return logits.index_fill(logits.dim() - 1, idx, Scalars.NegativeInfinity);
    }

    /// <summary>Keeps the k largest logits per row (ties at the k-th value kept, as HF does).</summary>
    public static Tensor TopK(Tensor logits, int k)
    {
        if (k <= 0 || k >= logits.shape[1]) return logits.alias();
        using var scope = NewDisposeScope();
        var kth = logits.topk(k, 1).values.narrow(1, k - 1, 1);
        return logits.masked_fill(logits.lt(kth), Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>Nucleus filter: keeps the smallest set of top tokens whose probability reaches p (at least one).</summary>
    public static Tensor TopP(Tensor logits, double p)
    {
        if (p >= 1) return logits.alias();
        using var scope = NewDisposeScope();
        // HF's rule: sort ascending, drop tokens whose cumulative probability is ≤ 1 − p, always keep the last.
        var (sorted, order) = logits.sort(1, descending: false);
        var cum = sorted.softmax(1).cumsum(1);
        using var cut = (1 - p).ToScalar();
        var remove = cum.le(cut);
        remove.narrow(1, remove.shape[1] - 1, 1).fill_(Scalars.False);
        var mask = zeros_like(remove).scatter(1, order, remove);
        return logits.masked_fill(mask, Scalars.NegativeInfinity).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Picks one token per row: argmax when greedy, else temperature → top-k → top-p → multinomial. The draw runs on the
    /// CPU with a CPU <paramref name="gen"/> (the probabilities are copied: [rows, vocab] floats), so a seed reproduces
    /// the same tokens on every device; the result is on the CPU then.
    /// </summary>
    public static Tensor Choose(Tensor logits, SamplingOptions o, Generator? gen)
    {
        using var scope = NewDisposeScope();
        if (o.Greedy) return logits.argmax(1).MoveToOuterDisposeScope();
        using var temperature = o.Temperature.ToScalar();
        var l = logits / temperature;
        l = TopK(l, o.TopK);
        l = TopP(l, o.TopP);
        var probs = l.softmax(1);
        return multinomial(probs.cpu(), 1, false, gen).squeeze(1).MoveToOuterDisposeScope();
    }
}
