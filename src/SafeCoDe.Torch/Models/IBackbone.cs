using SafeCoDe.Torch.Checkpoints;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models;

/// <summary>
/// The model inputs of one batch, named as HF processors name them. <see cref="InputIds"/> and
/// <see cref="AttentionMask"/> are [batch, seq] and left-padded when rows differ in length. Image inputs keep HF's
/// layout: images of all rows in row order (e.g. <c>pixel_values</c>, <c>image_sizes</c>, <c>image_grid_thw</c>,
/// <c>pixel_attention_mask</c>, <c>qformer_input_ids</c>, <c>qformer_attention_mask</c>, <c>image_attention_mask</c>,
/// <c>mm_token_type_ids</c>). The batch does not own the tensors.
/// </summary>
public sealed record BackboneInputs(Tensor InputIds, Tensor? AttentionMask, IReadOnlyDictionary<string, Tensor> Images)
{
    /// <summary>Rows of <see cref="InputIds"/>.</summary>
    public long BatchSize => InputIds.shape[0];
    /// <summary>Columns of <see cref="InputIds"/> (the padded prompt length).</summary>
    public long SeqLen => InputIds.shape[1];
    /// <summary>The image input named <paramref name="name"/>, or null.</summary>
    public Tensor? Image(string name) => Images.TryGetValue(name, out var t) ? t : null;
}

/// <summary>
/// Everything that belongs to one batch of sequences while it decodes: KV caches, per-row positions (and M-RoPE
/// deltas), the padding mask, per-request cross-attention K/V. Modules hold no per-sequence state, so two branches
/// and many requests never interfere. Disposing it frees its device memory.
/// </summary>
public abstract class DecodeState : IDisposable
{
    /// <summary>Rows in the batch.</summary>
    public abstract long BatchSize { get; }

    /// <summary>Positions filled in the cache (prompt plus generated tokens; the same for all rows thanks to left padding).</summary>
    public abstract long Length { get; }

    /// <summary>Cache capacity.</summary>
    public abstract long Capacity { get; }

    /// <summary>
    /// Keeps only the rows <paramref name="keep"/> (in that order). A leading run of rows (0, 1, …, n−1: dropping
    /// the noised branch) is kept as views of the same storage, without copying the cache; the dropped rows' memory
    /// is then released with the state. Any other selection is copied into fresh tensors and the old storage freed.
    /// </summary>
    public abstract void KeepRows(IReadOnlyList<long> keep);

    /// <summary>
    /// Forgets everything after the first <paramref name="length"/> positions (e.g. to roll back guided tokens); the
    /// next step overwrites them. Length may not go below the prompt.
    /// </summary>
    public abstract void Truncate(long length);

    /// <summary>Frees the caches and every tensor the state holds.</summary>
    public abstract void Dispose();
}

/// <summary>The contract every family implements: prefill a batch, step it one token at a time, drop rows.</summary>
public interface IBackbone : IDisposable
{
    /// <summary>The checkpoint's config.</summary>
    ModelConfig Config { get; }
    /// <summary>The config's <c>model_type</c>.</summary>
    string Family { get; }
    /// <summary>Where the weights live and the model runs.</summary>
    Device Device { get; }
    /// <summary>Weight and activation dtype (logits are returned as float32 regardless).</summary>
    ScalarType DType { get; }

    /// <summary>Width of the logits (the lm head's rows; IDEFICS adds its extra vocabulary).</summary>
    long VocabSize { get; }

    /// <summary>
    /// Runs the prompt of every row (images encoded and merged), allocating caches for
    /// <paramref name="maxNewTokens"/> more tokens. Returns float32 logits: [batch, vocab] for the last position, or
    /// [batch, seq, vocab] for every position when <paramref name="allLogits"/> is set.
    /// </summary>
    (DecodeState State, Tensor Logits) Prefill(BackboneInputs inputs, int maxNewTokens, bool allLogits = false);

    /// <summary>Feeds one token per row ([batch] int64) and returns float32 logits [batch, vocab].</summary>
    Tensor Step(DecodeState state, Tensor tokens);
}
