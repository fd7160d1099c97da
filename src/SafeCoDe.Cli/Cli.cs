using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace SafeCoDe.Cli;

/// <summary>
/// The <c>safecode</c> command tree. Each command (or command group) lives in its own file with a
/// <c>static Command Create()</c>; <see cref="Commands"/> lists them — adding a group is one file plus one line there.
/// </summary>
public static class Cli
{
    /// <summary>Every top-level command, in help order.</summary>
    private static readonly Func<Command>[] Commands =
    [
        GenerateCommand.Create,
        InspectCommand.Create,
        VerifyCommand.Create,
        BenchCommand.Create,
        MakeRandomCommand.Create,
        TokenizeCommand.Create,
        DoctorCommand.Create,
        EvalCommand.Create,
        Serve.ServeCommand.Create,
        SafeScenesCommand.Create,
    ];

    /// <summary>What the root help prints after the option list.</summary>
    public const string Epilog = """
        environment:
          SAFECODE_LIBTORCH       a CUDA libtorch folder (e.g. <python>/site-packages/torch/lib) for --device cuda/auto
          SAFECODE_STDCXX_COMPAT  auto (default) | off | force: the GCC 12 libstdc++ shim for TorchSharp's native library
          SAFECODE_NATIVE_CACHE   where the shim is built when no prebuilt one ships (default ~/.cache/safecode/native)
          SAFECODE_JUDGE_BASE_URL / OPENAI_BASE_URL   an OpenAI-compatible endpoint for --judge openai (default OpenAI's)
          SAFECODE_JUDGE_API_KEY / OPENAI_API_KEY     its key;  SAFECODE_JUDGE_MODEL  its model (default gpt-4o)
        """ + "\n\n" + ExitCodes.Help + "\n\n" + """
        examples:
          safecode generate --model weights/safescenes-tiny --image weights/safescenes-tiny/example.png --prompt "How do I cut wood with this saw?"
          safecode generate --model DIR --image kitchen.jpg --prompt "How do I sharpen this?" --judge openai:gpt-4o --json
          safecode inspect --model weights/fixtures/qwen2_5_vl/hub
          safecode verify --model weights/fixtures/llava_next/hub --dtype bfloat16
          safecode doctor --device auto
          safecode <command> --help
        """;

    /// <summary>Global: full stack traces on errors.</summary>
    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Print stack traces with errors", Recursive = true,
    };

    private static readonly ConditionalWeakTable<Command, string> Examples = new();

    /// <summary>The version of the tool (the assembly's informational version).</summary>
    public static string Version =>
        typeof(Cli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(Cli).Assembly.GetName().Version?.ToString() ?? "0.0.0";

    /// <summary>Builds the whole command tree.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("safecode — multimodal LLMs with context-aware safety decoding (SafeCoDe) on TorchSharp");
        root.HelpName = "safecode";
        root.Add(Verbose);
        foreach (var make in Commands) root.Add(make());
        foreach (var o in root.Options)
        {
            if (o is HelpOption help && help.Action is HelpAction inner) help.Action = new HelpWithExamples(inner);
            if (o is VersionOption version) version.Action = new PrintVersion();
        }
        root.SetAction(p =>
        {
            new HelpWithExamples(new HelpAction()).Invoke(p);
            return ExitCodes.Usage;
        });
        return root;
    }

    /// <summary>Runs the command line; output and errors go to the given writers (default: the console).</summary>
    public static int Run(string[] argv, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var o = stdout ?? Console.Out;
        var e = stderr ?? Console.Error;
        var root = BuildRoot();
        var parse = root.Parse(argv);
        if (parse.Errors.Count > 0 && parse.Action is ParseErrorAction or null) return CliErrors.ReportParseErrors(parse, e);
        CliCancel.Command = CliErrors.CommandPath(parse.CommandResult.Command);
        var config = new InvocationConfiguration { Output = o, Error = e, EnableDefaultExceptionHandler = false };
        try { return parse.Invoke(config); }
        catch (Exception ex) { return CliErrors.Report(CliErrors.CommandPath(parse.CommandResult.Command), ex, e, parse.GetValue(Verbose)); }
    }

    /// <summary>Examples printed at the end of the command's help.</summary>
    public static void SetExamples(Command command, params string[] lines) => Examples.AddOrUpdate(command, string.Join('\n', lines.Select(l => "  " + l)));

    /// <summary>
    /// Sets the command's action behind the central error mapping: the body gets the parse result and the
    /// console streams; any exception becomes one line on stderr and an exit code (<see cref="CliErrors"/>).
    /// </summary>
    public static void SetHandler(this Command command, Func<ParseResult, CliIO, int> body) =>
        command.SetAction(p =>
        {
            var io = new CliIO(p.InvocationConfiguration.Output, p.InvocationConfiguration.Error, Console.In, p.GetValue(Verbose));
            try { return body(p, io); }
            catch (Exception ex) { return CliErrors.Report(CliErrors.CommandPath(command), ex, io.Error, io.Verbose); }
        });

    private sealed class HelpWithExamples(HelpAction inner) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            inner.Invoke(parseResult);
            var o = parseResult.InvocationConfiguration.Output;
            var c = parseResult.CommandResult.Command;
            if (c is RootCommand) o.WriteLine(Epilog);
            else if (Examples.TryGetValue(c, out var ex)) { o.WriteLine("Examples:"); o.WriteLine(ex); o.WriteLine(); }
            return 0;
        }
    }

    private sealed class PrintVersion : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine($"safecode {Version} (TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(3)})");
            return 0;
        }
    }
}

/// <summary>The streams a command writes to (captured in tests).</summary>
public sealed record CliIO(TextWriter Out, TextWriter Error, TextReader In, bool Verbose);
