using SafeCoDe.Torch.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models;

/// <summary>
/// Combines single-row (or smaller) batches into one: token-aligned tensors are left-padded to the longest row,
/// image inputs are concatenated along their first axis in row order (HF's convention for every family here).
/// </summary>
public static class BatchCollator
{
    /// <summary>Image inputs laid out per token ([rows, seq, …]); these are left-padded with zeros like the attention mask.</summary>
    public static readonly IReadOnlySet<string> TokenAligned = new HashSet<string> { "mm_token_type_ids", "image_attention_mask" };

    /// <summary>
    /// Left-pads ids with <paramref name="padTokenId"/> and masks (and <see cref="TokenAligned"/> inputs) with 0 to the
    /// longest row and concatenates everything in row order. The returned tensors are new; the caller disposes them.
    /// </summary>
    /// <exception cref="ArgumentException">No rows, or rows with different image input names.</exception>
    public static BackboneInputs Collate(IReadOnlyList<BackboneInputs> rows, long padTokenId)
    {
        if (rows.Count == 0) throw new ArgumentException("nothing to collate");
        var keys = rows[0].Images.Keys.ToHashSet();
        if (rows.Any(r => !r.Images.Keys.ToHashSet().SetEquals(keys)))
            throw new ArgumentException("rows have different image inputs: " + string.Join(" | ", rows.Select(r => string.Join(",", r.Images.Keys.Order()))));
        long len = rows.Max(r => r.SeqLen);
        using var scope = NewDisposeScope();
        var ids = cat(rows.Select(r => LeftPad(r.InputIds, len, padTokenId)).ToList(), 0);
        var mask = cat(rows.Select(r => LeftPad((r.AttentionMask ?? ones_like(r.InputIds)).to(ScalarType.Int64), len, 0)).ToList(), 0);
        var images = new Dictionary<string, Tensor>();
        foreach (var k in keys)
            images[k] = TokenAligned.Contains(k)
                ? cat(rows.Select(r => LeftPad(r.Images[k], len, 0)).ToList(), 0)
                : cat(rows.Select(r => r.Images[k]).ToList(), 0);
        ids.MoveToOuterDisposeScope(); mask.MoveToOuterDisposeScope();
        foreach (var t in images.Values) t.MoveToOuterDisposeScope();
        return new BackboneInputs(ids, mask, images);
    }

    /// <summary>Pads axis 1 on the left to <paramref name="len"/>.</summary>
    public static Tensor LeftPad(Tensor t, long len, long value)
    {
        long have = t.shape[1];
        if (have == len) return t.alias();
        var shape = t.shape.ToArray();
        shape[1] = len - have;
        using var fill = value.ToScalar();
        using var pad = full(shape, fill, t.dtype, t.device);
        return cat([pad, t], 1);
    }
}
