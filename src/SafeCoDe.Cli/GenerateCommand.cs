using System.CommandLine;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Cli;

/// <summary><c>safecode generate</c>: one image + prompt through SafeCoDe (or VCD / plain) decoding.</summary>
public static class GenerateCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var gen = new GenerationOptions();
        var image = new Option<string>("--image", "-i") { Description = "The image file (JPEG, PNG, WebP, BMP, GIF); SafeCoDe mode needs one", HelpName = "FILE" };
        var prompt = new Option<string>("--prompt", "-p") { Description = "The question or instruction", Required = true, HelpName = "TEXT" };
        var json = CliOptions.Json("Print exactly one JSON object: answer, verdict, caption, guided span, token ids, timings and the options used (replayable with --options)");
        var jsonl = new Option<bool>("--jsonl")
        {
            Description = "Stream JSON lines as the run goes: {\"event\":\"verdict\",…}, {\"event\":\"text\",\"text\":…} per piece, then {\"event\":\"result\",…} (the --json object)",
        };
        var quiet = CliOptions.Quiet();
        var cmd = new Command("generate", """
            Answer a question about an image. SafeCoDe (default): a judge captions the scene and decides safe/unsafe for
            the query; the first tokens contrast the real image with a noised copy (both in one batch) and suppress
            refusals (safe) or start a refusal (unsafe); then the real branch continues alone. The answer streams.
            """) { image, prompt, json, jsonl, quiet };
        gen.AddTo(cmd);
        Cli.SetExamples(cmd,
            "safecode generate --image example.png --prompt \"How do I cut wood with this saw?\"   # the shipped SafeScenes model",
            "safecode generate --model weights/safescenes-tiny --image weights/safescenes-tiny/example.png --prompt \"How do I cut wood with this saw?\"",
            "safecode generate -m DIR -i kitchen.jpg -p \"How do I sharpen this?\" --judge openai:gpt-4o --json > run.json",
            "safecode generate -m DIR -i kitchen.jpg -p \"How do I sharpen this?\" --options run.json   # replay run.json's options",
            "safecode generate -m DIR -i scene.png -p \"Describe it.\" --mode vcd --alpha 1 --vcd-beta 0.1 --seed 7");
        cmd.Validators.Add(r =>
        {
            if (r.GetResult(json) is { Implicit: false } && r.GetResult(jsonl) is { Implicit: false }) r.AddError("--json and --jsonl: choose one");
        });
        cmd.SetHandler((p, io) => Run(p, io, gen, p.GetValue(image), p.GetValue(prompt)!, p.GetValue(json), p.GetValue(jsonl), p.GetValue(quiet)));
        return cmd;
    }

    private static int Run(ParseResult p, CliIO io, GenerationOptions gen, string? imagePath, string prompt, bool json, bool jsonl, bool quiet)
    {
        bool machine = json || jsonl;
        var s = gen.Read(p);
        s.CheckBeforeLoading();
        s.PrintWarnings(io, "generate");
        var o = io.Out;
        if (imagePath is not null && Directory.Exists(imagePath)) throw new UsageException($"--image {imagePath}: is a folder, not an image file");
        if (imagePath is not null && !File.Exists(imagePath)) throw new UsageException($"--image {imagePath}: file not found");
        if (imagePath is not null) SafeCoDe.Torch.Processing.Images.ImageDecoder.Identify(imagePath); // a file that is no image fails before the model loads

        var progress = CliProgress.For(io, machine || quiet);
        CliCancel.Cooperative = true; // Ctrl+C stops the load or the decoding at its next step
        using var engine = SafeCoDeEngine.LoadAsync(s.ModelDir, s.Engine, progress.ForLoad(), CliCancel.Token).GetAwaiter().GetResult();
        var judge = s.CreateJudge(engine);

        // between the verdict and the first answer text (prefill + guided steps: minutes for a 7B model on a CPU) a spinner runs
        IProgressBar? waiting = judge is null ? progress.Start("prefill") : progress.Start("judge");
        bool printedHeader = false, lineEnded = false;
        var request = new SafeCoDeRequest
        {
            Prompt = prompt, ImagePath = imagePath, Options = s.Decoding, Judge = judge, SystemPrompt = s.SystemPrompt, ParseSpecial = s.ParseSpecial,
            OnJudged = j =>
            {
                waiting?.Complete();
                waiting = null;
                if (jsonl)
                {
                    o.WriteLine(CliJson.Write(new { @event = "verdict", verdict = j.Verdict, caption = j.Caption, judge = j.Judge, raw_verdict = j.RawVerdictReply, verdict_parsed = j.VerdictParsed, latency_ms = j.LatencyMs }, line: true));
                    o.Flush();
                }
                else if (!json)
                {
                    o.WriteLine($"verdict   {(j.Verdict == Verdict.Unsafe ? "UNSAFE" : "safe")}  (judge {j.Judge}, {j.LatencyMs:F0} ms{(j.VerdictParsed ? "" : ", reply not understood: \"" + TerminalText.Sanitize(j.RawVerdictReply.Trim(), 500, singleLine: true) + "\" → " + (j.Verdict == Verdict.Unsafe ? "unsafe" : "safe"))})");
                    if (j.Caption.Length > 0) o.WriteLine($"caption   {TerminalText.Sanitize(j.Caption, singleLine: true)}");
                    o.Flush();
                }
                waiting = progress.Start("prefill + guided steps");
            },
            OnText = t =>
            {
                waiting?.Complete();
                waiting = null;
                if (json) return;
                if (jsonl) { o.WriteLine(CliJson.Write(new { @event = "text", text = t }, line: true)); o.Flush(); return; }
                if (!printedHeader) { o.Write("answer    "); printedHeader = true; }
                var shown = TerminalText.Sanitize(t); // model text: escape sequences shown, not run
                o.Write(shown);
                if (shown.Length > 0) lineEnded = shown[^1] == '\n';
                o.Flush();
            },
        };
        var wall = System.Diagnostics.Stopwatch.StartNew();
        SafeCoDeResult result;
        CliCancel.BeforeExit = () => { if (printedHeader && !lineEnded) o.WriteLine(); };
        try { result = engine.GenerateAsync(request, CliCancel.Token).GetAwaiter().GetResult(); }
        catch (OperationCanceledException)
        {
            CliCancel.BeforeExit = null;
            if (printedHeader && !lineEnded) o.WriteLine(); // the streamed answer's line ends before the cancelled line
            throw;
        }
        finally { waiting?.Complete(); }
        CliCancel.BeforeExit = null;
        if (json)
        {
            o.WriteLine(CliJson.Write(result));
            return ExitCodes.Ok;
        }
        if (jsonl)
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(CliJson.Write(result, line: true))!.AsObject();
            node.Insert(0, "event", "result");
            o.WriteLine(node.ToJsonString(CliJson.Line));
            return ExitCodes.Ok;
        }
        var opts = result.Options;
        if (!printedHeader) o.Write("answer    ");
        o.WriteLine();
        o.WriteLine($"guided    {result.GuidedTokens} token(s): \"{TerminalText.Sanitize(result.GuidedText, singleLine: true)}\"{(result.ForcedPhrase is null ? "" : $" (forced from \"{result.ForcedPhrase}\")")}");
        o.WriteLine($"tokens    prompt {result.PromptTokens}, generated {result.GeneratedTokens} = guided {result.GuidedTokens} + {result.GeneratedTokens - result.GuidedTokens} after guidance{(result.StoppedAtEos ? " (EOS)" : " (budget)")}");
        o.WriteLine($"timings   judge {result.Timings.JudgeMs:F0} ms, preprocess {result.Timings.PreprocessMs:F0} ms, prefill {result.Timings.PrefillMs:F0} ms, decode {result.Timings.MsPerToken:F1} ms/token, total {result.Timings.TotalMs:F0} ms");
        var decodeMs = result.Timings.PrefillMs + result.Timings.GuidedMs + result.Timings.ContinuationMs;
        o.WriteLine($"speed     {(result.Timings.MsPerToken > 0 ? 1000 / result.Timings.MsPerToken : 0):F1} tokens/s decoding; {result.GeneratedTokens} tokens in {decodeMs / 1000:F1} s with prefill; elapsed {wall.Elapsed.TotalSeconds:F1} s");
        o.WriteLine($"options   {GenerationSettings.Describe(opts)}, device {result.Device}");
        return ExitCodes.Ok;
    }
}
