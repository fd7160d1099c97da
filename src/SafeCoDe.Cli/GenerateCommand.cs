using System.Globalization;
using System.Text.Json;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Cli;

/// <summary><c>safecode generate</c>: one image + prompt through SafeCoDe (or VCD / plain) decoding.</summary>
internal static class GenerateCommand
{
    public static readonly IReadOnlySet<string> Flags = new HashSet<string> { "json", "greedy" };
    public static readonly IReadOnlySet<string> Valued = new HashSet<string>
    {
        "model", "image", "prompt", "max-new-tokens", "temperature", "top-p", "top-k", "seed", "device", "dtype", "mode", "preset",
        "judge", "judge-cache", "alpha", "max-steps", "lambda-supp", "lambda-boost", "noise-std", "noise", "prompt-style", "system",
    };

    private static double D(string s, string name) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw new UsageException($"--{name} '{s}' is not a number");
    private static int I(string s, string name) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new UsageException($"--{name} '{s}' is not an integer");

    public static int Run(Args a, TextWriter o, TextWriter e)
    {
        var dir = a.Require("model");
        var imagePath = a.Get("image");
        var prompt = a.Require("prompt");
        bool json = a.Flag("json");
        var mode = (a.Get("mode") ?? "safecode").ToLowerInvariant() switch
        {
            "safecode" => DecodeMode.SafeCoDe, "vcd" => DecodeMode.Vcd, "vanilla" => DecodeMode.Vanilla,
            var m => throw new UsageException($"--mode '{m}': expected safecode, vanilla or vcd"),
        };
        var preset = (a.Get("preset") ?? "faithful").ToLowerInvariant() switch
        {
            "faithful" => SafeCoDePreset.Faithful, "paper" => SafeCoDePreset.Paper,
            var p => throw new UsageException($"--preset '{p}': expected faithful or paper"),
        };
        var o2 = SafeCoDeOptions.For(preset, mode);
        if (a.Get("max-new-tokens") is { } mnt) o2 = o2 with { MaxNewTokens = I(mnt, "max-new-tokens") };
        if (a.Get("temperature") is { } temp) { var t = D(temp, "temperature"); o2 = o2 with { TemperatureSafe = t, TemperatureUnsafe = t, Greedy = t <= 0 }; }
        if (a.Get("top-p") is { } tp) { var p = D(tp, "top-p"); o2 = o2 with { TopPSafe = p, TopPUnsafe = p }; }
        if (a.Get("top-k") is { } tk) o2 = o2 with { TopKSampling = I(tk, "top-k") };
        if (a.Get("seed") is { } seed) o2 = o2 with { Seed = long.Parse(seed, CultureInfo.InvariantCulture) };
        if (a.Get("alpha") is { } al) o2 = o2 with { Alpha = D(al, "alpha") };
        if (a.Get("max-steps") is { } ms) o2 = o2 with { MaxSteps = I(ms, "max-steps") };
        if (a.Get("lambda-supp") is { } ls) o2 = o2 with { LambdaSupp = D(ls, "lambda-supp") };
        if (a.Get("lambda-boost") is { } lb) o2 = o2 with { LambdaBoost = D(lb, "lambda-boost") };
        if (a.Get("noise-std") is { } ns) o2 = o2 with { NoiseStd = D(ns, "noise-std") };
        if (a.Get("noise") is { } nk) o2 = o2 with { Noise = nk.ToLowerInvariant() switch { "pixel" => NoiseKind.Pixel, "vcd" => NoiseKind.VcdDiffusion, _ => throw new UsageException($"--noise '{nk}': expected pixel or vcd") } };
        if (a.Flag("greedy")) o2 = o2 with { Greedy = true };
        var style = (a.Get("prompt-style") ?? "official").ToLowerInvariant() switch
        {
            "official" => PromptStyle.Official, "reference" => PromptStyle.Reference,
            var s => throw new UsageException($"--prompt-style '{s}': expected official or reference"),
        };
        var device = RuntimeOptions.ParseDevice(a.Get("device") ?? "auto");
        var dtype = a.Get("dtype") is { } dt ? Backbones.ParseDType(dt) : (TorchSharp.torch.ScalarType?)null;
        var judgeSpec = a.Get("judge") ?? "self";
        var judgeCache = a.Get("judge-cache");
        var system = a.Get("system");
        a.RejectUnknown();
        if (imagePath is not null && !File.Exists(imagePath)) throw new UsageException($"--image {imagePath}: file not found");
        if (imagePath is not null) SafeCoDe.Torch.Processing.Images.ImageDecoder.Identify(imagePath); // a file that is no image fails before the model loads
        o2.Validate();

        var progress = new Progress<string>(s => { if (!json) e.WriteLine("· " + s); });
        using var engine = SafeCoDeEngine.Load(dir, new EngineOptions { Device = device, DType = dtype, PromptStyle = style }, progress);
        ISafetyJudge? judge = mode == DecodeMode.SafeCoDe ? MakeJudge(judgeSpec, engine, device) : null;
        if (judge is not null && judgeCache is not null) judge = new CachedJudge(judgeCache, judge);

        bool printedHeader = false;
        var request = new SafeCoDeRequest
        {
            Prompt = prompt, ImagePath = imagePath, Options = o2, Judge = judge, SystemPrompt = system,
            OnJudged = json ? null : j =>
            {
                o.WriteLine($"verdict   {(j.Verdict == Verdict.Unsafe ? "UNSAFE" : "safe")}  (judge {j.Judge}, {j.LatencyMs:F0} ms{(j.VerdictParsed ? "" : ", reply not understood: \"" + j.RawVerdictReply.Trim() + "\" → safe")})");
                if (j.Caption.Length > 0) o.WriteLine($"caption   {j.Caption}");
            },
            OnText = json ? null : s => { if (!printedHeader) { o.Write("answer    "); printedHeader = true; } o.Write(s); o.Flush(); },
        };
        var result = engine.GenerateAsync(request).GetAwaiter().GetResult();
        if (json)
        {
            o.WriteLine(JsonSerializer.Serialize(result, JsonOpts));
            return 0;
        }
        if (!printedHeader) o.Write("answer    ");
        o.WriteLine();
        o.WriteLine($"guided    {result.GuidedTokens} token(s): \"{result.GuidedText}\"{(result.ForcedPhrase is null ? "" : $" (forced from \"{result.ForcedPhrase}\")")}");
        o.WriteLine($"tokens    prompt {result.PromptTokens}, generated {result.GeneratedTokens}{(result.StoppedAtEos ? " (EOS)" : " (budget)")}");
        o.WriteLine($"timings   judge {result.Timings.JudgeMs:F0} ms, preprocess {result.Timings.PreprocessMs:F0} ms, prefill {result.Timings.PrefillMs:F0} ms, decode {result.Timings.MsPerToken:F1} ms/token, total {result.Timings.TotalMs:F0} ms");
        o.WriteLine($"options   mode {o2.Mode}, preset {o2.Preset}, alpha {o2.Alpha}, max-steps {o2.MaxSteps}, seed {result.Options.Seed}, device {result.Device}");
        return 0;
    }

    internal static readonly JsonSerializerOptions JsonOpts = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    private static ISafetyJudge MakeJudge(string spec, SafeCoDeEngine engine, DeviceRequest device)
    {
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon], arg = colon < 0 ? "" : spec[(colon + 1)..];
        return kind switch
        {
            "self" => new ModelJudge(engine),
            "local" when arg.Length > 0 => ModelJudge.Local(arg, new EngineOptions { Device = device }),
            "openai" => new EndpointJudge(new EndpointJudgeOptions { Model = arg.Length > 0 ? arg : null }),
            "fixed" when arg is "safe" => new FixedJudge(Verdict.Safe),
            "fixed" when arg is "unsafe" => new FixedJudge(Verdict.Unsafe),
            "cache" when arg.Length > 0 => new CachedJudge(arg),
            _ => throw new UsageException($"--judge '{spec}': expected self, local:DIR, openai[:MODEL], fixed:safe, fixed:unsafe or cache:FILE"),
        };
    }
}
