using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Common;

/// <summary>Several requests' prompts prefilled as one batch, each request then decoding from its own state.</summary>
internal abstract partial class DecoderBackbone
{
    /// <summary>
    /// True when the prompts of several requests may run as one left-padded batch (<see cref="PrefillParts"/>):
    /// the family's embeddings and positions handle ragged rows and it keeps no per-row family state. Off by default;
    /// the LLaVA families turn it on.
    /// </summary>
    protected virtual bool BatchesPrefills => false;

    /// <summary>See <see cref="BatchesPrefills"/>.</summary>
    internal bool PrefillsTogether => BatchesPrefills;

    /// <summary>
    /// One prefill over the rows of several requests (<paramref name="batch"/>, left-padded to the longest prompt, as
    /// <see cref="BatchCollator.Collate"/> makes it), split into one state per request: part i owns the next
    /// <paramref name="rowCounts"/>[i] rows. A part's caches are views of the batch's cache storage (nothing is
    /// copied; the storage goes when the last part is disposed); its key mask and next positions are its own. Every
    /// part has the batch's length (its padding is masked) and room for <paramref name="maxNewTokens"/> more tokens.
    /// The states and logits are outside every dispose scope: the caller disposes them.
    /// </summary>
    /// <exception cref="ArgumentException">The row counts do not add up to the batch.</exception>
    /// <exception cref="InvalidOperationException">The family keeps per-row state of its own.</exception>
    internal IReadOnlyList<(DecodeState State, Tensor Logits)> PrefillParts(BackboneInputs batch, int maxNewTokens, IReadOnlyList<int> rowCounts)
    {
        if (rowCounts.Sum() != batch.BatchSize || rowCounts.Any(n => n <= 0))
            throw new ArgumentException($"row counts {string.Join("+", rowCounts)} do not split a batch of {batch.BatchSize}", nameof(rowCounts));
        var (s, logits) = Prefill(batch, maxNewTokens);
        var state = (CausalDecodeState)s;
        var parts = new List<(DecodeState, Tensor)>();
        try
        {
            if (state.FamilyState is not null) throw new InvalidOperationException($"{GetType().Name} keeps per-row state: its prompts are prefilled one request at a time");
            using var scope = NewDisposeScope();
            var shared = new object();
            long offset = 0;
            foreach (int n in rowCounts)
            {
                var caches = state.Caches.Select(c => new LayerCache(c.K.narrow(0, offset, n).DetachFromDisposeScope(), c.V.narrow(0, offset, n).DetachFromDisposeScope())).ToList();
                var part = new CausalDecodeState(caches, state.KeyValid.narrow(0, offset, n).clone().DetachFromDisposeScope(),
                    state.NextPosition.narrow(0, offset, n).clone().DetachFromDisposeScope(), state.Length, state.Capacity) { PromptLength = state.PromptLength, SharedCache = shared };
                parts.Add((part, logits.narrow(0, offset, n).DetachFromDisposeScope()));
                offset += n;
            }
            return parts;
        }
        catch
        {
            foreach (var (p, l) in parts) { p.Dispose(); l.Dispose(); }
            throw;
        }
        finally
        {
            state.Dispose(); // the parts' views keep the cache storage alive
            logits.Dispose();
        }
    }
}
