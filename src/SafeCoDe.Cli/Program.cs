using SafeCoDe.Cli;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Runtime;

return Cli.Run(args);

namespace SafeCoDe.Cli
{
    public static class Cli
    {
        public const string Usage = """
            safecode — multimodal LLMs with context-aware safety decoding (SafeCoDe) on TorchSharp

            usage: safecode <command> [options]

            commands:
              generate  --model DIR --image FILE --prompt TEXT [--json]
                        [--mode safecode|vanilla|vcd] [--preset faithful|paper]
                        [--judge self|local:DIR|openai[:MODEL]|fixed:safe|fixed:unsafe|cache:FILE] [--judge-cache FILE]
                        [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--greedy]
                        [--alpha A] [--max-steps N] [--lambda-supp L] [--lambda-boost L] [--noise pixel|vcd] [--noise-std S]
                        [--prompt-style official|reference] [--system TEXT] [--device cpu|cuda|auto] [--dtype D]
                        Answer a question about an image. SafeCoDe (default): a judge captions the scene and
                        decides safe/unsafe for the query; the first tokens contrast the real image with a
                        noised copy (both in one batch) and suppress refusals (safe) or start a refusal (unsafe);
                        then the real branch continues alone. The answer streams; --json prints one object with
                        answer, verdict, caption, guided_tokens, timings and the options used.
              inspect   --model DIR [--json]
                        Describe a Hugging Face checkpoint folder (config.json + safetensors): family, config
                        summary, parameter counts per component, dtypes, files. Reads headers only; runs no model.
              verify    --model DIR [--reference FILE] [--device cpu|cuda] [--dtype float32|bfloat16]
                        Run the model on the inputs of a reference file (default DIR/reference.safetensors) and
                        compare logits, noised-image logits and greedy tokens with the reference. Last line:
                        verify: PASS|FAIL family=... logits_rel_err=... noised_rel_err=... greedy_match=k/n
              bench     [--shape llava-1.5-7b | --config FILE] [--device cuda] [--dtype bfloat16] [--steps 128] [--json] [--request]
                        Decode speed at real shapes with random weights: prefill, plain decode, SafeCoDe's two
                        branches as one batch, and as two separate passes, measured side by side. --request times
                        one whole SafeCoDe request at LLaVA-NeXT-7B shapes (5 tiles, 256-token answer).
              make-random --config FILE --out DIR [--tokenizer DIR] [--preprocessor FILE] [--seed 0]
                        [--dtype float32|bfloat16] [--shard-size 4GB] [--init-scale 1.5]
                        Write a random-weight checkpoint of any supported family for a config.json, in the Hub
                        layout, with generation/preprocessor configs and the tokenizer files of DIR.
              tokenize  --model DIR [--jsonl] [--add-special-tokens]
                        Read text from stdin, one line per input (with --jsonl: one JSON string literal per line), and
                        write one JSON array of token ids per line. DIR holds tokenizer.json, tokenizer.model,
                        vocab.json + merges.txt or vocab.txt (+ tokenizer_config.json). BOS etc. only with
                        --add-special-tokens.
              doctor    [--device cpu|cuda|auto] [--json]
                        Show the native runtime: backend, which libtorch was loaded and from where, whether the
                        libstdc++ compat path was used, CUDA devices and memory, or why CUDA is not usable.

            environment:
              SAFECODE_LIBTORCH       a CUDA libtorch folder (e.g. <python>/site-packages/torch/lib) for --device cuda/auto
              SAFECODE_STDCXX_COMPAT  auto (default) | off | force: the GCC 12 libstdc++ shim for TorchSharp's native library
              SAFECODE_NATIVE_CACHE   where the shim is built (default ~/.cache/safecode/native)
              SAFECODE_JUDGE_BASE_URL / OPENAI_BASE_URL   an OpenAI-compatible endpoint for --judge openai (default OpenAI's)
              SAFECODE_JUDGE_API_KEY / OPENAI_API_KEY     its key;  SAFECODE_JUDGE_MODEL  its model (default gpt-4o)

            examples:
              safecode generate --model weights/llava-next-tiny --image weights/llava-next-tiny/example.png --prompt "What is this?"
              safecode generate --model DIR --image kitchen.jpg --prompt "How do I sharpen this?" --judge openai:gpt-4o --json
              safecode inspect --model weights/fixtures/qwen2_5_vl/hub
              safecode verify --model weights/fixtures/llava_next/hub --dtype bfloat16
              echo 'USER: <image> Describe it.' | safecode tokenize --model path/to/llava-1.5-7b-hf --add-special-tokens
              safecode doctor --device auto
            """;

        public static int Run(string[] argv, TextWriter? stdout = null, TextWriter? stderr = null)
        {
            var o = stdout ?? Console.Out;
            var e = stderr ?? Console.Error;
            if (argv.Length == 0 || argv[0] is "-h" or "--help" or "help") { o.WriteLine(Usage); return argv.Length == 0 ? 2 : 0; }
            var command = argv[0];
            var rest = argv.Skip(1).ToArray();
            if (rest.Contains("--help") || rest.Contains("-h")) { o.WriteLine(Usage); return 0; }
            try
            {
                return command switch
                {
                    "inspect" => Inspect(new Args(rest, Set("json"), Set("model")), o),
                    "doctor" => Doctor(new Args(rest, Set("json"), Set("device")), o),
                    "bench" => BenchCommand.Run(new Args(rest, Set("json", "request"), Set("shape", "config", "device", "dtype", "steps", "text-tokens")), o),
                    "make-random" => MakeRandom(new Args(rest, Set(), Set("config", "out", "tokenizer", "preprocessor", "seed", "dtype", "shard-size", "init-scale")), o),
                    "generate" => GenerateCommand.Run(new Args(rest, GenerateCommand.Flags, GenerateCommand.Valued), o, e),
                    "verify" => VerifyCommand.Run(new Args(rest, Set(), Set("model", "reference", "device", "dtype")), o, e),
                    "tokenize" => TokenizeCommand.Run(new Args(rest, TokenizeCommand.Flags, Set("model")), Console.In, o, e),
                    _ => throw new UsageException($"unknown command '{command}'"),
                };
            }
            catch (UsageException ex)
            {
                e.WriteLine($"safecode {command}: {ex.Message}");
                e.WriteLine("run 'safecode --help' for usage");
                return 2;
            }
            catch (CheckpointException ex) { e.WriteLine($"safecode {command}: error: {ex.Message}"); return 1; }
            catch (SafeCoDe.Torch.Processing.Images.ImageDecodeException ex) { e.WriteLine($"safecode {command}: error: {ex.Message}"); return 1; }
            catch (NativeRuntimeException ex) { e.WriteLine($"safecode {command}: runtime error: {ex.Message}"); return 1; }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or NotSupportedException or IOException or FormatException)
            {
                e.WriteLine($"safecode {command}: error: {ex.Message}");
                if (Environment.GetEnvironmentVariable("SAFECODE_DEBUG") == "1") e.WriteLine(ex);
                return 1;
            }
        }

        private static HashSet<string> Set(params string[] names) => new(names, StringComparer.Ordinal);

        private static int MakeRandom(Args a, TextWriter o)
        {
            var config = a.Require("config");
            var outDir = a.Require("out");
            var opts = new RandomCheckpointOptions
            {
                TokenizerDir = a.Get("tokenizer"),
                PreprocessorConfig = a.Get("preprocessor"),
                Seed = long.Parse(a.Get("seed") ?? "0", System.Globalization.CultureInfo.InvariantCulture),
                DType = SafeCoDe.Torch.Models.Backbones.ParseDType(a.Get("dtype") ?? "float32"),
                ShardBytes = a.Get("shard-size") is { } s ? ParseBytes(s) : 0,
                InitScale = double.Parse(a.Get("init-scale") ?? "1.5", System.Globalization.CultureInfo.InvariantCulture),
            };
            a.RejectUnknown();
            NativeRuntime.Initialize(new RuntimeOptions { Device = DeviceRequest.Cpu });
            var sw = System.Diagnostics.Stopwatch.StartNew();
            RandomCheckpoint.Write(config, outDir, opts);
            var report = InspectReport.From(ModelDirectory.Open(outDir));
            o.WriteLine($"wrote {report.Family} with {report.ParameterCount:N0} random parameters ({InspectReport.HumanBytes(report.TotalBytes)}, {report.Files.Count} file(s)) to {Path.GetFullPath(outDir)} in {sw.Elapsed.TotalSeconds:F1} s");
            return 0;
        }

        private static long ParseBytes(string s)
        {
            s = s.Trim().ToUpperInvariant();
            long mult = s.EndsWith("GB") ? 1L << 30 : s.EndsWith("MB") ? 1L << 20 : s.EndsWith("KB") ? 1L << 10 : 1;
            var num = s.TrimEnd('B', 'G', 'M', 'K');
            if (!double.TryParse(num, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) || v <= 0)
                throw new UsageException($"--shard-size '{s}': expected a size such as 4GB or 500MB");
            return (long)(v * mult);
        }

        private static int Inspect(Args a, TextWriter o)
        {
            var dir = a.Require("model");
            bool json = a.Flag("json");
            a.RejectUnknown();
            var report = InspectReport.From(ModelDirectory.Open(dir));
            o.WriteLine(json ? report.ToJson() : report.ToText());
            return 0;
        }

        private static int Doctor(Args a, TextWriter o)
        {
            var device = RuntimeOptions.ParseDevice(a.Get("device") ?? "auto");
            bool json = a.Flag("json");
            a.RejectUnknown();
            var r = NativeRuntime.Initialize(new RuntimeOptions { Device = device });
            var ok = RuntimeSmokeTest(r);
            if (json)
            {
                o.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
                {
                    backend = r.Backend, libtorch_dir = r.LibTorchDir, libtorch_source = r.LibTorchSource, libtorchsharp = r.LibTorchSharpPath,
                    compat_used = r.CompatUsed, compat_library = r.CompatLibrary, compat_reason = r.CompatReason,
                    cuda_unavailable_reason = r.CudaUnavailableReason, torchsharp_libtorch = TorchSharp.torch.__version__,
                    cuda_devices = r.CudaDevices.Select(d => new { index = d.Index, name = d.Name, total_bytes = d.TotalBytes, free_bytes = d.FreeBytes }),
                    smoke_test = ok,
                }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                o.WriteLine($"backend        {r.Backend}");
                o.WriteLine($"libtorch       {r.LibTorchDir}");
                o.WriteLine($"  from         {r.LibTorchSource} (TorchSharp built for libtorch {TorchSharp.torch.__version__})");
                o.WriteLine($"LibTorchSharp  {r.LibTorchSharpPath}");
                o.WriteLine($"compat path    {(r.CompatUsed ? "used" : "not used")}: {r.CompatReason}");
                if (r.CompatLibrary is not null) o.WriteLine($"  shim         {r.CompatLibrary}");
                if (r.CudaDevices.Count == 0) o.WriteLine($"cuda           not usable: {r.CudaUnavailableReason ?? "unknown"}");
                foreach (var d in r.CudaDevices)
                    o.WriteLine($"cuda:{d.Index}         {d.Name}  {(d.TotalBytes < 0 ? "memory unknown" : $"{InspectReport.HumanBytes(d.FreeBytes)} free of {InspectReport.HumanBytes(d.TotalBytes)}")}");
                o.WriteLine($"smoke test     {ok}");
            }
            return ok.StartsWith("ok") ? 0 : 1;
        }

        /// <summary>A matmul on every available device, so "doctor" proves the kernels run, not only that libraries loaded.</summary>
        private static string RuntimeSmokeTest(RuntimeReport r)
        {
            try
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                var devices = new List<TorchSharp.torch.Device> { TorchSharp.torch.CPU };
                if (r.Backend == "cuda") devices.Add(TorchSharp.torch.CUDA);
                foreach (var d in devices)
                {
                    var x = TorchSharp.torch.ones(64, 64, device: d);
                    var s = x.matmul(x).sum().item<float>();
                    if (s != 64f * 64 * 64) return $"FAILED on {d}: matmul sum {s}";
                }
                return "ok (matmul on " + string.Join(", ", devices.Select(d => d.ToString())) + ")";
            }
            catch (Exception ex) { return "FAILED: " + ex.Message; }
        }
    }
}
