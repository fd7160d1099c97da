using System.Runtime.InteropServices;

namespace SafeCoDe.Cli;

/// <summary>
/// Ctrl+C (SIGINT) in the <c>safecode</c> executable: one "cancelled" line on stderr and exit code 130.
/// <para>A command that observes <see cref="Token"/> (<see cref="Cooperative"/>, e.g. <c>generate</c>) gets
/// <see cref="Grace"/> to stop by itself and report through <see cref="CliErrors"/> (its streamed answer ends with
/// its newline); any other command, or one that does not stop in time, is ended here after
/// <see cref="BeforeExit"/> ran. A command whose host handles the signal itself (<c>serve</c> drains its requests)
/// sets <see cref="HostHandles"/>. A second Ctrl+C ends the process at once.</para>
/// </summary>
public static class CliCancel
{
    private static readonly CancellationTokenSource Source = new();
    private static int _reported;

    /// <summary>Cancelled on Ctrl+C.</summary>
    public static CancellationToken Token => Source.Token;

    /// <summary>True once Ctrl+C was pressed.</summary>
    public static bool Requested => Source.IsCancellationRequested;

    /// <summary>The running command observes <see cref="Token"/> and stops by itself.</summary>
    public static bool Cooperative { get; set; }

    /// <summary>The running command's host handles SIGINT itself (nothing is done here).</summary>
    public static bool HostHandles { get; set; }

    /// <summary>Run before the process is ended here (e.g. ending a streamed answer's line).</summary>
    public static Action? BeforeExit { get; set; }

    /// <summary>The command path for the message ("generate", "eval run").</summary>
    public static string Command { get; set; } = "";

    /// <summary>How long a cooperative command has to stop before the process is ended.</summary>
    public static TimeSpan Grace { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>The one line written on cancellation.</summary>
    public static string Line(string command) => $"safecode{(command.Length > 0 ? " " + command : "")}: cancelled (Ctrl+C)";

    /// <summary>True for the first caller only: the cancelled line is written once, by whoever ends the command.</summary>
    public static bool ClaimReport() => Interlocked.Exchange(ref _reported, 1) == 0;

    /// <summary>Installs the SIGINT handler; only the executable's entry point calls this (tests run commands in-process).</summary>
    public static IDisposable Install(TextWriter stdout, TextWriter stderr) =>
        PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx =>
        {
            if (HostHandles) return;
            ctx.Cancel = true;
            if (Requested || !Cooperative) { End(stdout, stderr); return; }
            Source.Cancel();
            _ = Task.Delay(Grace).ContinueWith(_ => End(stdout, stderr), TaskScheduler.Default);
        });

    private static void End(TextWriter stdout, TextWriter stderr)
    {
        if (ClaimReport())
        {
            try { BeforeExit?.Invoke(); stdout.Flush(); } catch (Exception) { /* the streams may be closed; the exit code still says it */ }
            stderr.WriteLine(Line(Command));
            stderr.Flush();
        }
        Environment.Exit(ExitCodes.Cancelled);
    }
}
