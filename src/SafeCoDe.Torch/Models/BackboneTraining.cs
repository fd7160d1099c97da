using SafeCoDe.Torch.Models.Common;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models;

/// <summary>
/// What training a backbone needs from the engine: a forward pass with autograd, and its trainable parameters.
/// Supported for the decoder-only families (LLaVA, LLaVA-NeXT, InstructBLIP, Idefics3, Qwen-VL).
/// </summary>
public static class BackboneTraining
{
    /// <summary>
    /// Logits [B, T, vocab] at every position (in the model's dtype) with gradients flowing to the parameters;
    /// rows may be right-padded (attention mask 0 on padding).
    /// </summary>
    /// <exception cref="NotSupportedException">The backbone is not a decoder-only family.</exception>
    public static Tensor Logits(IBackbone model, BackboneInputs inputs) => model is DecoderBackbone d
        ? d.TrainingLogits(inputs)
        : throw new NotSupportedException($"training is not supported for {model.Family}");

    /// <summary>
    /// Makes every tied parameter (a tied lm_head) share its source's tensor instead of holding a loaded copy, so
    /// training updates one table and a checkpoint written without the tied tensor reloads to the same model.
    /// Returns the names of the tied parameters.
    /// </summary>
    public static IReadOnlyList<string> TieWeights(IBackbone model)
    {
        var module = model as nn.Module ?? throw new NotSupportedException($"{model.Family} is not a module");
        var (meta, tied) = Backbones.Create(model.Config, new ParamFactory(META, model.DType));
        meta.Dispose();
        var modules = module.named_modules().ToDictionary(m => m.name, m => m.module);
        var parameters = module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (target, source) in tied)
        {
            int dot = target.LastIndexOf('.');
            if (dot < 0 || target[(dot + 1)..] != "weight" || !modules.TryGetValue(target[..dot], out var owner) || owner is not SafeCoDe.Torch.Models.Common.Linear linear)
                throw new NotSupportedException($"cannot tie '{target}': only a linear layer's weight can share a tensor");
            linear.ShareWeight(parameters[source]);
        }
        return tied.Keys.ToList();
    }

    /// <summary>The distinct parameters of the backbone (a tied lm_head shares the embedding table and is listed once), by their module names.</summary>
    public static IReadOnlyList<(string Name, Parameter Parameter)> Parameters(IBackbone model)
    {
        var module = model as nn.Module ?? throw new NotSupportedException($"{model.Family} is not a module");
        var seen = new HashSet<IntPtr>();
        var list = new List<(string, Parameter)>();
        foreach (var (name, p) in module.named_parameters())
            if (seen.Add(p.Handle)) list.Add((name, p));
        return list;
    }
}
