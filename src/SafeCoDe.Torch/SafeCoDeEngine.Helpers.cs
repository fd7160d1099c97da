using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using static TorchSharp.torch;

namespace SafeCoDe.Torch;

/// <summary>The engine's helper models (the roles a method's steps ask: a paraphraser, a perplexity model, a checker) and its perplexity.</summary>
public sealed partial class SafeCoDeEngine
{
    /// <summary>The name of the perplexity calibration a model folder may carry (written by <c>safecode eval calibrate ppl --write</c>).</summary>
    public const string PerplexityCalibrationFile = "safecode-ppl.json";

    private HelperModels? _helpers;

    /// <summary>The checkpoint as records name it: its folder's name.</summary>
    public string ModelName => Path.GetFileName(Path.GetFullPath(Directory.Dir).TrimEnd('/', '\\'));

    internal HelperModels Helpers => LazyInitializer.EnsureInitialized(ref _helpers, () => new HelperModels(this));

    /// <summary>Checks this model can serve requests with <paramref name="options"/> (e.g. the calibration a perplexity filter needs), before any request work.</summary>
    /// <exception cref="InvalidOperationException">It cannot; the message says what to do.</exception>
    public void CheckMethod(DecodingOptions options) =>
        DecodingMethods.Of(options).CheckModel(options, new ModelFacts(Helpers.CalibratedThreshold));

    /// <summary>
    /// The perplexity of <paramref name="text"/> under this model's language model: the raw text (no chat template, no
    /// image; special-token strings are plain text), exp of the mean negative log-likelihood of every token after the
    /// first. NaN for fewer than two tokens (nothing to predict).
    /// </summary>
    /// <exception cref="InvalidOperationException">The family cannot run text without an image.</exception>
    public double Perplexity(string text, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        OptionChecks.CheckPromptChars(text, null);
        if (!SupportsTextOnly) throw new InvalidOperationException($"{Family} cannot run text without an image, so it cannot score a perplexity");
        var ids = Tokenizer.Encode(text, true, [Range.All]);
        if (ids.Length < 2) return double.NaN;
        OptionChecks.CheckContext(ids.Length, null, Directory.Config.Text.MaxPositions);
        using var scope = NewDisposeScope();
        var input = tensor(ids.Select(i => (long)i).ToArray(), ScalarType.Int64).view(1, -1).to(Model.Device);
        (DecodeState state, Tensor logits) prefilled;
        _prefillGate.Wait(cancel);
        try { prefilled = Model.Prefill(new BackboneInputs(input, null, new Dictionary<string, Tensor>()), 0, allLogits: true); }
        finally { _prefillGate.Release(); }
        prefilled.state.Dispose();
        var logp = prefilled.logits[0].narrow(0, 0, ids.Length - 1).log_softmax(-1);
        var next = input[0].narrow(0, 1, ids.Length - 1).unsqueeze(1);
        double nll = -logp.gather(1, next).mean().item<float>();
        return Math.Exp(nll);
    }

    /// <summary>Helper models by spec, loaded once per engine and disposed with it.</summary>
    internal sealed class HelperModels(SafeCoDeEngine owner) : IDisposable
    {
        private readonly ConcurrentDictionary<string, Lazy<SafeCoDeEngine>> _local = new();
        private readonly ConcurrentDictionary<string, Lazy<EndpointJudge>> _endpoints = new();

        private SafeCoDeEngine Local(string dir) =>
            _local.GetOrAdd(Path.GetFullPath(dir), d => new Lazy<SafeCoDeEngine>(() => Load(d, new EngineOptions { Device = owner._options.Device }))).Value;

        private EndpointJudge Endpoint(string model) =>
            _endpoints.GetOrAdd(model, m => new Lazy<EndpointJudge>(() => new EndpointJudge(new EndpointJudgeOptions { Model = m.Length > 0 ? m : null }))).Value;

        /// <summary>The helper's completion of <paramref name="call"/>; <c>self</c> goes through the request's own services (a nested generation).</summary>
        public async Task<string> CompleteAsync(ModelSpec spec, HelperCall call, IRequestServices self, CancellationToken cancel)
        {
            var plain = DecodingMethods.Rebase(call.Options, DecodingMethods.Plain);
            switch (spec.Kind)
            {
                case ModelSpecKind.Self:
                    return await self.GenerateAsync(new GenerationCall(call.Prompt, null, call.SystemPrompt, plain), cancel).ConfigureAwait(false);
                case ModelSpecKind.Local:
                    var r = await Local(spec.Argument).GenerateAsync(new SafeCoDeRequest { Prompt = call.Prompt, SystemPrompt = call.SystemPrompt, Options = plain }, cancel).ConfigureAwait(false);
                    return r.Answer;
                case ModelSpecKind.OpenAi:
                    return await Endpoint(spec.Argument).ChatAsync(call.Prompt, call.SystemPrompt, call.EndpointTemperature, call.EndpointSeed, call.EndpointMaxTokens, cancel).ConfigureAwait(false);
                case ModelSpecKind.Fixed:
                    return spec.Argument;
                default:
                    throw new ArgumentException($"helper '{spec}': expected {ModelSpec.Forms(ModelRole.Helper)}");
            }
        }

        /// <summary>The perplexity of <paramref name="text"/> under the helper (<c>fixed:NUMBER</c> answers that number).</summary>
        public Task<double> PerplexityAsync(ModelSpec spec, string text, CancellationToken cancel) => spec.Kind switch
        {
            ModelSpecKind.Self => Task.FromResult(owner.Perplexity(text, cancel)),
            ModelSpecKind.Local => Task.FromResult(Local(spec.Argument).Perplexity(text, cancel)),
            ModelSpecKind.Fixed when double.TryParse(spec.Argument, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) => Task.FromResult(v),
            _ => throw new ArgumentException($"perplexity model '{spec}': a perplexity needs self, local:DIR or fixed:NUMBER (an endpoint gives no token probabilities here)"),
        };

        /// <summary>The threshold stored in the helper's model folder (<see cref="PerplexityCalibrationFile"/>), or null.</summary>
        public double? CalibratedThreshold(ModelSpec spec)
        {
            var dir = spec.Kind switch { ModelSpecKind.Self => owner.Directory.Dir, ModelSpecKind.Local => spec.Argument, _ => null };
            return dir is null ? null : ReadCalibration(dir);
        }

        public void Dispose()
        {
            foreach (var e in _local.Values.Where(l => l.IsValueCreated)) e.Value.Dispose();
            foreach (var e in _endpoints.Values.Where(l => l.IsValueCreated)) e.Value.Dispose();
        }
    }

    /// <summary>The perplexity threshold in a model folder's <see cref="PerplexityCalibrationFile"/>, or null when there is none.</summary>
    /// <exception cref="InvalidDataException">The file is there but unreadable or has no finite threshold.</exception>
    public static double? ReadCalibration(string modelDir)
    {
        var path = Path.Combine(modelDir, PerplexityCalibrationFile);
        if (!File.Exists(path)) return null;
        JsonNode? node;
        try { node = JsonNode.Parse(BoundedFile.ReadAllText(path, InputLimits.Current.MaxConfigFileBytes, "perplexity calibration")); }
        catch (System.Text.Json.JsonException ex) { throw new InvalidDataException($"{path}: not JSON ({ex.Message})", ex); }
        if (node?["threshold"] is JsonValue v && v.TryGetValue<double>(out var t) && double.IsFinite(t)) return t;
        throw new InvalidDataException($"{path}: expected {{\"threshold\": <number>, ...}}");
    }
}
