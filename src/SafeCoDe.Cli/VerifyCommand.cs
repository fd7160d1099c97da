using System.CommandLine;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Verification;

namespace SafeCoDe.Cli;

/// <summary><c>safecode verify</c>: parity of a backbone with a reference file made by HF transformers.</summary>
public static class VerifyCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = CliOptions.Model("Checkpoint folder to check");
        var reference = new Option<string>("--reference") { Description = "Reference file made with HF transformers [default: DIR/reference.safetensors]", HelpName = "FILE" };
        // plain strings: a bad value ends in verify's one-line FAIL form like every other verify error
        var device = new Option<string>("--device") { Description = "cpu or cuda", HelpName = "cpu|cuda", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "float32 (exact tolerance) or bfloat16/float16 (loose tolerance)", HelpName = "float32|bfloat16|float16", DefaultValueFactory = _ => "float32" };
        var cmd = new Command("verify", """
            Run the model on the inputs of a reference file and compare logits, noised-image logits and greedy tokens
            with the reference. Last line: verify: PASS|FAIL family=... logits_rel_err=... noised_rel_err=... greedy_match=k/n
            (errors also end in that one-line FAIL form, exit code 1).
            """) { model, reference, device, dtype };
        Cli.SetExamples(cmd, "safecode verify --model weights/fixtures/llava_next/hub", "safecode verify --model weights/fixtures/llava/v5 --dtype bfloat16");
        cmd.SetHandler((p, io) => Run(p.GetValue(model)!, p.GetValue(reference), p.GetValue(device)!, p.GetValue(dtype)!, io.Out));
        return cmd;
    }

    private static int Run(string dir, string? reference, string deviceText, string dtypeText, TextWriter o)
    {

        string family = "unknown";
        try
        {
            family = TryFamily(dir) ?? "unknown";
            var dtype = Backbones.ParseDType(dtypeText);
            var request = RuntimeOptions.ParseDevice(deviceText);
            if (request == DeviceRequest.Auto) throw new ArgumentException("verify needs an explicit --device cpu or cuda");
            var device = NativeRuntime.SelectDevice(request);
            var r = Verifier.Run(dir, reference, device, dtype);
            o.WriteLine($"model        {Path.GetFullPath(dir)}");
            o.WriteLine($"reference    {reference ?? Path.Combine(Path.GetFullPath(dir), "reference.safetensors")}");
            o.WriteLine($"device       {r.Device}  dtype {r.DType}  load {r.LoadMs:F0} ms  run {r.RunMs:F0} ms");
            o.WriteLine();
            o.WriteLine($"  {"check",-16} {"rel err",10} {"max abs err",12}  {"limit",8}");
            double limit = r.DType == "float32" ? 1e-4 : 3e-2;
            o.WriteLine($"  {"logits",-16} {VerifyResult.Sci(r.LogitsRelErr),10} {VerifyResult.Sci(r.LogitsMaxAbsErr),12}  {VerifyResult.Sci(limit),8}  {(r.LogitsRelErr <= limit ? "ok" : "FAIL")}");
            if (r.NoisedRelErr is { } n)
                o.WriteLine($"  {"logits_noised",-16} {VerifyResult.Sci(n),10} {VerifyResult.Sci(r.NoisedMaxAbsErr!.Value),12}  {VerifyResult.Sci(limit),8}  {(n <= limit ? "ok" : "FAIL")}");
            else
                o.WriteLine($"  {"logits_noised",-16} {"n/a",10}   (no pixel_values_noised/logits_noised in the reference)");
            o.WriteLine($"  {"greedy",-16} {r.GreedyMatch}/{r.GreedyTotal} tokens match{(r.DType == "float32" ? "" : " (reported, not required below float32)")}");
            o.WriteLine($"    ours       {string.Join(' ', r.GreedyOurs)}");
            o.WriteLine($"    reference  {string.Join(' ', r.GreedyReference)}");
            o.WriteLine(r.SummaryLine());
            return r.Pass ? 0 : 1;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            o.WriteLine($"verify: FAIL family={family} error={OneLine(ex)}");
            return 1;
        }
    }

    private static string? TryFamily(string dir)
    {
        try { return JsonConfig.Load(Path.Combine(dir, "config.json")).StringOrNull("model_type"); }
        catch (CheckpointException) { return null; }
    }

    private static string OneLine(Exception ex)
    {
        // libtorch's text carries a C++ backtrace: its one meaningful line only
        if (NativeErrors.IsNative(ex) || ex is OutOfMemoryException) return NativeErrors.Summarize(ex);
        var msg = ex is NotSupportedException or CheckpointException or ArgumentException or NativeRuntimeException or InvalidOperationException or IOException
            ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";
        return SafeCoDe.Torch.Safety.TerminalText.Sanitize(string.Join(' ', msg.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries)).Trim(), 2000, singleLine: true);
    }
}
