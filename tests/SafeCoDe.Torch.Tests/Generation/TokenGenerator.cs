using System.Diagnostics;
using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Generation;

/// <summary>The tokens a batch produced, and how long it took.</summary>
public sealed record GenerationResult(long[][] Tokens, bool[] StoppedAtEos, double PrefillMs, double DecodeMs, int Steps)
{
    /// <summary>Decode time per step (excluding the prefill), in milliseconds; 0 when no step ran.</summary>
    public double MsPerToken => Steps == 0 ? 0 : DecodeMs / Steps;
}

/// <summary>
/// The parity tests' reference loop (kept here, outside the library, which decodes through its scheduler): the plain
/// decoding loop over any <see cref="IBackbone"/>: prefill once, then one step per token with the KV
/// cache. Each step runs in its own DisposeScope and synchronises with the host once (to read the chosen tokens).
/// </summary>
public static class TokenGenerator
{
    /// <param name="onStep">Called once per step with each row's new token (−1 for rows already finished).</param>
    public static GenerationResult Generate(IBackbone model, BackboneInputs inputs, SamplingOptions o, Action<long[]>? onStep = null,
        CancellationToken cancel = default)
    {
        o.Validate();
        // a CPU generator (draws happen on the host: the same seed gives the same tokens on every device)
        using var gen = o.Greedy ? null : new torch.Generator(o.Seed is { } s ? (ulong)s : (ulong)Random.Shared.NextInt64());
        using var eosIndex = LogitsOps.Index(o.EosTokenIds, model.Device);
        var sw = Stopwatch.StartNew();
        var (state, first) = model.Prefill(inputs, o.MaxNewTokens);
        using var _ = state;
        long b = state.BatchSize;
        var outTokens = Enumerable.Range(0, (int)b).Select(_ => new List<long>()).ToArray();
        var done = new bool[b];
        var eos = new bool[b];
        var eosSet = o.EosTokenIds.ToHashSet();
        double prefillMs = 0;
        var logits = first;
        int steps = 0;
        try
        {
            for (int step = 0; step < o.MaxNewTokens; step++)
            {
                cancel.ThrowIfCancellationRequested();
                long[] chosen;
                using (var scope = NewDisposeScope())
                {
                    var l = step < o.MinNewTokens ? LogitsOps.Suppress(logits, eosIndex) : logits;
                    var next = Sampler.Choose(l, o, gen);
                    chosen = next.cpu().data<long>().ToArray(); // the one host sync of this step
                }
                if (step == 0) prefillMs = sw.Elapsed.TotalMilliseconds;
                var report = new long[b];
                for (int r = 0; r < b; r++)
                {
                    if (done[r]) { report[r] = -1; chosen[r] = o.PadTokenId; continue; }
                    outTokens[r].Add(chosen[r]);
                    report[r] = chosen[r];
                    if (eosSet.Contains(chosen[r])) { done[r] = true; eos[r] = true; }
                }
                steps++;
                onStep?.Invoke(report);
                if (done.All(d => d) || step == o.MaxNewTokens - 1) break;
                logits.Dispose();
                using var cpuFeed = tensor(chosen, ScalarType.Int64);
                using var feed = cpuFeed.to(model.Device);
                logits = model.Step(state, feed);
            }
        }
        finally { logits.Dispose(); }
        double total = sw.Elapsed.TotalMilliseconds;
        return new GenerationResult(outTokens.Select(l => l.ToArray()).ToArray(), eos, prefillMs, total - prefillMs, steps);
    }
}
