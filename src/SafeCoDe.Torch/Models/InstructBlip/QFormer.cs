using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using Linear = SafeCoDe.Torch.Models.Common.Linear;
using LayerNorm = SafeCoDe.Torch.Models.Common.LayerNorm;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SafeCoDe.Torch.Models.InstructBlip;

/// <summary>BERT-style multi-head attention (<c>query</c>/<c>key</c>/<c>value</c>); keys and values come from the encoder for cross-attention.</summary>
internal sealed class QFormerMultiHeadAttention : Block
{
#pragma warning disable IDE1006
    public readonly Linear query, key, value;
#pragma warning restore IDE1006
    private readonly long _heads, _headDim;

    public QFormerMultiHeadAttention(ParamFactory f, QFormerConfig c, bool cross) : base(nameof(QFormerMultiHeadAttention))
    {
        if (c.HiddenSize % c.NumHeads != 0)
            throw new ArgumentException($"qformer hidden_size {c.HiddenSize} is not divisible by num_attention_heads {c.NumHeads}");
        _heads = c.NumHeads; _headDim = c.HiddenSize / c.NumHeads;
        long kvIn = cross ? c.EncoderHiddenSize : c.HiddenSize;
        query = new Linear(f, c.HiddenSize, c.HiddenSize, true);
        key = new Linear(f, kvIn, c.HiddenSize, true);
        value = new Linear(f, kvIn, c.HiddenSize, true);
        RegisterComponents();
    }

    /// <summary>x [B, S, H] attends to <paramref name="kv"/> [B, L, ·] (x itself when null); mask bool [B,1,1,L] or null.</summary>
    public Tensor Forward(Tensor x, Tensor? kv, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        var src = kv ?? x;
        long b = x.shape[0], s = x.shape[1], l = src.shape[1];
        var q = query.Forward(x).view(b, s, _heads, _headDim).transpose(1, 2);
        var k = key.Forward(src).view(b, l, _heads, _headDim).transpose(1, 2);
        var v = value.Forward(src).view(b, l, _heads, _headDim).transpose(1, 2);
        var o = F.scaled_dot_product_attention(q, k, v, mask, 0.0, false);
        return o.transpose(1, 2).reshape(b, s, _heads * _headDim).MoveToOuterDisposeScope();
    }
}

/// <summary>dense → LayerNorm(· + residual): BERT's SelfOutput and Output.</summary>
internal sealed class QFormerResidualOutput : Block
{
#pragma warning disable IDE1006
    public readonly Linear dense;
    public readonly LayerNorm LayerNorm;
#pragma warning restore IDE1006

    public QFormerResidualOutput(ParamFactory f, long inFeatures, QFormerConfig c) : base(nameof(QFormerResidualOutput))
    {
        dense = new Linear(f, inFeatures, c.HiddenSize, true);
        LayerNorm = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    public Tensor Forward(Tensor h, Tensor residual)
    {
        using var scope = NewDisposeScope();
        return LayerNorm.Forward(dense.Forward(h).Plus(residual)).MoveToOuterDisposeScope();
    }
}

/// <summary><c>attention</c> (multi-head) + <c>output</c> (dense, residual LayerNorm).</summary>
internal sealed class QFormerAttention : Block
{
#pragma warning disable IDE1006
    public readonly QFormerMultiHeadAttention attention;
    public readonly QFormerResidualOutput output;
#pragma warning restore IDE1006

    public QFormerAttention(ParamFactory f, QFormerConfig c, bool cross) : base(nameof(QFormerAttention))
    {
        attention = new QFormerMultiHeadAttention(f, c, cross);
        output = new QFormerResidualOutput(f, c.HiddenSize, c);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, Tensor? kv, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        return output.Forward(attention.Forward(x, kv, mask), x).MoveToOuterDisposeScope();
    }
}

/// <summary>dense → act (BERT's Intermediate).</summary>
internal sealed class QFormerIntermediate : Block
{
#pragma warning disable IDE1006
    public readonly Linear dense;
#pragma warning restore IDE1006
    private readonly Func<Tensor, Tensor> _act;

    public QFormerIntermediate(ParamFactory f, QFormerConfig c) : base(nameof(QFormerIntermediate))
    {
        dense = new Linear(f, c.HiddenSize, c.IntermediateSize, true);
        _act = Activations.Get(c.HiddenAct);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return _act(dense.Forward(x)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One Q-Former layer. Self-attention runs over queries and instruction tokens together; only the query positions
/// then cross-attend to the image (on layers with <c>crossattention</c>) and go through the query feed-forward
/// (<c>intermediate_query</c>/<c>output_query</c>); the instruction positions use <c>intermediate</c>/<c>output</c>.
/// </summary>
internal sealed class QFormerLayer : Block
{
#pragma warning disable IDE1006
    public readonly QFormerAttention attention;
    public readonly QFormerAttention? crossattention;
    public readonly QFormerIntermediate intermediate, intermediate_query;
    public readonly QFormerResidualOutput output, output_query;
#pragma warning restore IDE1006

    public QFormerLayer(ParamFactory f, QFormerConfig c, int index) : base(nameof(QFormerLayer))
    {
        attention = new QFormerAttention(f, c, cross: false);
        if (c.CrossAttentionFrequency > 0 && index % c.CrossAttentionFrequency == 0)
            crossattention = new QFormerAttention(f, c, cross: true);
        intermediate = new QFormerIntermediate(f, c);
        output = new QFormerResidualOutput(f, c.IntermediateSize, c);
        intermediate_query = new QFormerIntermediate(f, c);
        output_query = new QFormerResidualOutput(f, c.IntermediateSize, c);
        RegisterComponents();
    }

    /// <param name="x">[B, Q + T, H]: the queries first.</param>
    /// <param name="mask">bool [B, 1, 1, Q + T] over the self-attention keys.</param>
    /// <param name="image">[B, patches, encoder_hidden] for cross-attention.</param>
    public Tensor Forward(Tensor x, Tensor mask, Tensor image, long queryLength)
    {
        using var scope = NewDisposeScope();
        var a = attention.Forward(x, null, mask);
        var q = a.narrow(1, 0, queryLength);
        if (crossattention is not null) q = crossattention.Forward(q, image, null);
        var outQ = output_query.Forward(intermediate_query.Forward(q), q);
        long textLen = a.shape[1] - queryLength;
        if (textLen == 0) return outQ.MoveToOuterDisposeScope();
        var t = a.narrow(1, queryLength, textLen);
        var outT = output.Forward(intermediate.Forward(t), t);
        return cat([outQ, outT], 1).MoveToOuterDisposeScope();
    }
}

/// <summary>encoder.layer.N.</summary>
internal sealed class QFormerEncoder : Block
{
#pragma warning disable IDE1006
    public readonly ModuleList<QFormerLayer> layer;
#pragma warning restore IDE1006

    public QFormerEncoder(ParamFactory f, QFormerConfig c) : base(nameof(QFormerEncoder))
    {
        layer = new ModuleList<QFormerLayer>(Enumerable.Range(0, c.NumLayers).Select(i => new QFormerLayer(f, c, i)).ToArray());
        RegisterComponents();
    }
}

/// <summary>Word + absolute position embeddings of the instruction, prefixed by the query embeddings, then layernorm.</summary>
internal sealed class QFormerEmbeddings : Block
{
#pragma warning disable IDE1006
    public readonly EmbeddingHolder word_embeddings, position_embeddings;
    public readonly LayerNorm layernorm;
#pragma warning restore IDE1006
    private readonly QFormerConfig _c;

    public QFormerEmbeddings(ParamFactory f, QFormerConfig c) : base(nameof(QFormerEmbeddings))
    {
        _c = c;
        word_embeddings = new EmbeddingHolder(f, c.VocabSize, c.HiddenSize);
        position_embeddings = new EmbeddingHolder(f, c.MaxPositions, c.HiddenSize);
        layernorm = new LayerNorm(f, c.HiddenSize, c.LayerNormEps);
        RegisterComponents();
    }

    /// <param name="ids">[B, T] instruction ids (positions 0..T-1 whatever the mask, as HF does) or null.</param>
    /// <param name="queries">[B, Q, H].</param>
    public Tensor Forward(Tensor? ids, Tensor queries)
    {
        using var scope = NewDisposeScope();
        var x = queries;
        if (ids is not null && ids.shape[1] > 0)
        {
            long t = ids.shape[1];
            if (t > _c.MaxPositions)
                throw new ArgumentException($"qformer_input_ids has {t} tokens; the Q-Former has {_c.MaxPositions} positions");
            long max = ids.max().item<long>(), min = ids.min().item<long>();
            if (min < 0 || max >= _c.VocabSize)
                throw new ArgumentException($"qformer_input_ids holds ids in [{min}, {max}] outside the Q-Former vocabulary of {_c.VocabSize}");
            var pos = Scalars.Arange(0, t, ScalarType.Int64, ids.device);
            var text = word_embeddings.Forward(ids).Plus(position_embeddings.Forward(pos).unsqueeze(0));
            x = cat([queries, text.to(queries.dtype)], 1);
        }
        return layernorm.Forward(x.to(layernorm.weight.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>The InstructBLIP Q-Former (<c>qformer</c>): embeddings and encoder.</summary>
internal sealed class QFormerModel : Block
{
#pragma warning disable IDE1006
    public readonly QFormerEmbeddings embeddings;
    public readonly QFormerEncoder encoder;
#pragma warning restore IDE1006

    public QFormerModel(ParamFactory f, QFormerConfig c) : base(nameof(QFormerModel))
    {
        embeddings = new QFormerEmbeddings(f, c);
        encoder = new QFormerEncoder(f, c);
        RegisterComponents();
    }

    /// <summary>
    /// Runs the learned queries [B, Q, H] together with the instruction (ids [B, T], mask [B, T] or null) against the
    /// image features [B, patches, encoder_hidden]; returns the query outputs [B, Q, H].
    /// </summary>
    public Tensor Forward(Tensor queries, Tensor? ids, Tensor? idsMask, Tensor image)
    {
        using var scope = NewDisposeScope();
        long b = queries.shape[0], q = queries.shape[1];
        var x = embeddings.Forward(ids, queries);
        long total = x.shape[1];
        var keyValid = ones(b, q, dtype: ScalarType.Bool, device: x.device);
        if (total > q)
        {
            var textValid = idsMask is null ? ones(b, total - q, dtype: ScalarType.Bool, device: x.device) : idsMask.to(x.device).ne(Scalars.Zero);
            keyValid = cat([keyValid, textValid], 1);
        }
        var mask = keyValid.view(b, 1, 1, total);
        foreach (var layer in encoder.layer) x = layer.Forward(x, mask, image, q);
        return x.narrow(1, 0, q).MoveToOuterDisposeScope();
    }
}
