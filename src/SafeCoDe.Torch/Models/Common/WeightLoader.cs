using System.Text.RegularExpressions;
using SafeCoDe.Torch.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Models.Common;

/// <summary>
/// Fills a module's parameters from a <see cref="ModelDirectory"/>: parameter paths are the canonical tensor names,
/// so loading is a lookup. Strict: any missing, unexpected or mis-shaped tensor is an error listing all of them.
/// Tensors are read one at a time and converted on the way (host memory bounded by one tensor).
/// </summary>
internal static class WeightLoader
{
    /// <summary>Tensors some checkpoints carry that no model computes with (buffers saved by old code).</summary>
    private static readonly Regex Ignorable = new(@"(\.rotary_emb\.inv_freq|\.position_ids|\.num_batches_tracked)$");

    /// <param name="tied">Parameters allowed to be absent and copied from another (target → source), e.g. a tied lm_head.</param>
    public static void Load(nn.Module module, ModelDirectory dir, IReadOnlyDictionary<string, string>? tied = null, IProgress<(int done, int total)>? progress = null)
    {
        var parameters = module.named_parameters().ToList();
        var missing = new List<string>();
        var wrongShape = new List<string>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var deferred = new List<(string target, Parameter p, string source)>();
        using var noGrad = no_grad();
        int done = 0;
        foreach (var (name, p) in parameters)
        {
            if (!dir.Tensors.TryGetValue(name, out var src))
            {
                if (tied is not null && tied.TryGetValue(name, out var from)) deferred.Add((name, p, from));
                else missing.Add(name);
                continue;
            }
            used.Add(name);
            if (!src.Shape.SequenceEqual(p.shape))
            {
                wrongShape.Add($"{name} (file [{string.Join(",", src.Shape)}], model [{string.Join(",", p.shape)}])");
                continue;
            }
            if (missing.Count > 0 || wrongShape.Count > 0) continue; // already failing: keep collecting names, skip the I/O
            using var t = src.Read(p.dtype, p.device);
            p.copy_(t);
            progress?.Report((++done, parameters.Count));
        }
        var unexpected = dir.Tensors.Keys.Where(k => !used.Contains(k) && !Ignorable.IsMatch(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (missing.Count > 0 || unexpected.Count > 0 || wrongShape.Count > 0)
            throw new TensorMismatchException(dir.IndexPath ?? dir.Files[0].Path, missing, unexpected, wrongShape);
        var byName = parameters.ToDictionary(x => x.name, x => x.parameter);
        var modules = module.named_modules().ToDictionary(m => m.name, m => m.module);
        foreach (var (target, p, source) in deferred)
        {
            int dot = target.LastIndexOf('.');
            if (dot > 0 && target[(dot + 1)..] == "weight" && modules.TryGetValue(target[..dot], out var owner) && owner is Linear linear)
                linear.ShareWeight(byName[source]); // one tensor for both (no second vocab × hidden copy)
            else p.copy_(byName[source]);
        }
    }
}
