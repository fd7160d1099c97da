using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Rules;

/// <summary>SafeCoDe's contrast of each session's [real, noised] rows: z_r − α·z_n, one row out (α per session).</summary>
public sealed class SafeCoDeContrast(double alpha) : LogitsRule
{
    /// <summary>α, the weight of the noised branch.</summary>
    public double Alpha => alpha;

    /// <inheritdoc/>
    public override int RowsOut(int rowsIn) => rowsIn == 2 ? 1 : throw new InvalidOperationException($"the contrast needs a [real, noised] pair, not {rowsIn} row(s)");

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        int n = rows.Sessions;
        using var pairs = scores.reshape(n, 2, -1);
        using var noised = pairs.select(1, 1);
        using var real = pairs.select(1, 0);
        Tensor scaled;
        if (Agree<SafeCoDeContrast, double>(members, m => m.Alpha))
        {
            using var a = alpha.ToScalar();
            scaled = noised * a;
        }
        else
        {
            // a float32 column: a float32 tensor times a double scalar computes with the scalar in float32 too
            using var host = tensor(members.Select(m => (float)((SafeCoDeContrast)m).Alpha).ToArray(), ScalarType.Float32);
            using var column = host.to(scores.device).view(n, 1);
            scaled = noised * column;
        }
        // −(α·z_n) + z_r in place on the one temporary, as LogitsOps.SafeCoDeContrast
        return scaled.neg_().PlusInPlace(real);
    }
}

/// <summary>The first row of each session (the real branch): [rows, vocab] → [1, vocab] per session, a view.</summary>
public sealed class RealRow : LogitsRule
{
    /// <inheritdoc/>
    public override int RowsOut(int rowsIn) => 1;

    /// <inheritdoc/>
    public override bool ReturnsView => true;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        if (rows.RowsPerSession == 1) return scores;
        using var grouped = scores.view(rows.Sessions, rows.RowsPerSession, -1);
        return grouped.select(1, 0);
    }
}

/// <summary>Bans token ids (image placeholders): their scores become −∞. The index is built once per request.</summary>
public sealed class BanTokens(Tensor? index, IReadOnlyList<long> ids) : LogitsRule
{
    /// <summary>A ban of the ids in <paramref name="index"/> (read back once; the caller owns the index).</summary>
    public BanTokens(Tensor? index) : this(index, index is null ? [] : index.cpu().data<long>().ToArray()) { }

    /// <summary>The banned ids.</summary>
    public IReadOnlyList<long> Ids => ids;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        if (members.All(m => ((BanTokens)m).Ids.SequenceEqual(ids)))
        {
            if (index is null || index.numel() == 0) return scores;
            return rows.Owned ? scores.index_fill_(1, index, Scalars.NegativeInfinity) : scores.index_fill(1, index, Scalars.NegativeInfinity);
        }
        var result = rows.Owned ? scores : scores.clone();
        for (int i = 0; i < rows.Sessions; i++)
            if (((BanTokens)members[i]).Index is { } idx && idx.numel() > 0)
            {
                using var own = result.narrow(0, (long)i * rows.RowsPerSession, rows.RowsPerSession);
                own.index_fill_(1, idx, Scalars.NegativeInfinity);
            }
        return result;
    }

    private Tensor? Index => index;
}

/// <summary>Logits → probabilities over the vocabulary.</summary>
public sealed class Softmax : LogitsRule
{
    /// <inheritdoc/>
    public override ScoreKind Output(ScoreKind input) => ScoreKind.Probabilities;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members) => scores.softmax(-1);
}

/// <summary>
/// Refusal-token modulation on probabilities: × a per-request factor at the refusal ids — (1 − 0.5·λ_supp) on a safe
/// verdict (<see cref="Suppress"/>), (1 + λ_boost) on an unsafe one (<see cref="Boost"/>) — then renormalised. Sessions
/// whose <see cref="Key"/>s agree share one scale vector; otherwise the vectors are stacked, one per row.
/// </summary>
public sealed class RefusalScale(Tensor refusalIds, double factor, object key) : LogitsRule, IDisposable
{
    private Tensor? _scale;

    /// <summary>The factor applied to refusal-token probabilities.</summary>
    public double Factor => factor;
    /// <summary>Equal keys mean equal scale vectors (the factor and the refusal token set).</summary>
    public object Key { get; } = (factor, key);

    /// <inheritdoc/>
    public override ScoreKind Output(ScoreKind input) => ScoreKind.Probabilities;

    /// <summary>Safe verdict: the reference code's suppression.</summary>
    public static RefusalScale Suppress(Tensor ids, double lambdaSupp, object? set = null) => new(ids, LogitsOps.SuppressFactor(lambdaSupp), set ?? ids);
    /// <summary>Unsafe verdict, soft form: the paper's boost.</summary>
    public static RefusalScale Boost(Tensor ids, double lambdaBoost, object? set = null) => new(ids, LogitsOps.BoostFactor(lambdaBoost), set ?? ids);

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        long vocab = scores.shape[^1];
        if (Agree<RefusalScale, object>(members, m => m.Key)) return LogitsOps.ScaleAndRenormalize(scores, Vector(vocab, scores.device));
        if (rows.RowsPerSession != 1) return PerSession(scores, rows, members);
        using var stacked = stack(members.Select(m => ((RefusalScale)m).Vector(vocab, scores.device)).ToArray(), 0);
        return LogitsOps.ScaleAndRenormalize(scores, stacked);
    }

    /// <summary>The float32 [<paramref name="vocab"/>] scale vector, made at the first call and kept until <see cref="Dispose"/> (no per-step ones(vocab)).</summary>
    public Tensor Vector(long vocab, Device device)
    {
        if (_scale is null || _scale.shape[0] != vocab || _scale.device.type != device.type || _scale.device.index != device.index)
        {
            _scale?.Dispose();
            _scale = LogitsOps.RefusalScaleVector(vocab, refusalIds, factor, device).DetachFromDisposeScope();
        }
        return _scale;
    }

    /// <summary>Frees the scale vector.</summary>
    public void Dispose() { _scale?.Dispose(); _scale = null; }
}

/// <summary>Logits divided by the temperature (sampling only; greedy decoding skips it).</summary>
public sealed class Temperature(double t) : LogitsRule
{
    private readonly Scalar _t = t.ToScalar(); // held for the rule's lifetime (see Runtime/Scalars.cs)

    /// <summary>The temperature.</summary>
    public double Value => t;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members) =>
        Agree<Temperature, double>(members, m => m.Value) ? scores / _t : PerSession(scores, rows, members);
}

/// <summary>Keeps the k largest logits per row (0: off).</summary>
public sealed class TopK(int k) : LogitsRule
{
    /// <summary>k.</summary>
    public int K => k;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        if (!Agree<TopK, int>(members, m => m.K)) return PerSession(scores, rows, members);
        return k <= 0 || k >= scores.shape[1] ? scores : LogitsOps.TopK(scores, k);
    }
}

/// <summary>Nucleus filter on logits (1: off).</summary>
public sealed class TopP(double p) : LogitsRule
{
    /// <summary>p.</summary>
    public double P => p;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members)
    {
        if (!Agree<TopP, double>(members, m => m.P)) return PerSession(scores, rows, members);
        return p >= 1 ? scores : LogitsOps.TopP(scores, p);
    }
}

/// <summary>The reference's temperature on probabilities: softmax(log(p + 1e-10) / T).</summary>
public sealed class TemperedDistribution(double t) : LogitsRule
{
    /// <summary>T.</summary>
    public double T => t;

    /// <inheritdoc/>
    public override ScoreKind Output(ScoreKind input) => ScoreKind.Probabilities;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor scores, RuleRows rows, IReadOnlyList<LogitsRule> members) =>
        Agree<TemperedDistribution, double>(members, m => m.T) ? LogitsOps.TemperedDistribution(scores, t) : PerSession(scores, rows, members);
}
