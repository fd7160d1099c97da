using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace SafeCoDe.Cli;

/// <summary>One piece of long work being shown: a bar with a total, or a spinner without one.</summary>
public interface IProgressBar : IDisposable
{
    /// <summary>Sets how much is done (in the bar's unit) and an optional detail text.</summary>
    void Report(double done, string? detail = null);
    /// <summary>Finishes the bar, leaving <paramref name="summary"/> as its last line (or nothing).</summary>
    void Complete(string? summary = null);
}

/// <summary>
/// Progress for CLI commands, on stderr: a live Spectre.Console bar on a terminal, plain lines (at most one every
/// few seconds per bar) when stderr is redirected, nothing with <c>--json</c> or <c>--quiet</c>. One bar at a time.
/// <code>
/// using var bar = CliProgress.For(io, quiet).Start("eval", total: n, unit: "samples");
/// for (...) { ...; bar.Report(i + 1); }
/// bar.Complete($"{n} samples");
/// </code>
/// </summary>
public abstract class CliProgress
{
    /// <summary>Starts a bar (with <paramref name="total"/> &gt; 0) or a spinner (total 0); rate and ETA come with a total.</summary>
    /// <param name="label">What is being done.</param>
    /// <param name="total">Total amount of work in <paramref name="unit"/>, or 0 when unknown.</param>
    /// <param name="unit">"bytes" shows sizes and B/s; any other unit is shown as a count per second.</param>
    public abstract IProgressBar Start(string label, double total = 0, string unit = "");

    /// <summary>A one-off status line (not while a bar is running).</summary>
    public abstract void Note(string line);

    /// <summary>Shows a model load (runtime line, then a bar over the weight bytes with GB/s, then a summary).</summary>
    public IProgress<SafeCoDe.Torch.LoadProgress> ForLoad()
    {
        IProgressBar? bar = null;
        var weights = new Stopwatch();
        return new Inline<SafeCoDe.Torch.LoadProgress>(p =>
        {
            switch (p.Stage)
            {
                case "runtime": Note(p.Message); break;
                case "tokenizer": bar = Start(p.Message, p.BytesTotal, "bytes"); weights.Restart(); break;
                case "weights": bar?.Report(p.BytesDone); break;
                case "done":
                    var s = Math.Max(1e-9, weights.Elapsed.TotalSeconds);
                    bar?.Complete($"read {Bytes(p.BytesTotal)} of weights in {s:F1} s = {p.BytesTotal / 1e9 / s:F2} GB/s (load {p.Elapsed.TotalSeconds:F1} s in all)");
                    bar = null;
                    break;
            }
        });
    }

    /// <summary>An <see cref="IProgress{T}"/> that runs on the reporting thread, in order.</summary>
    public sealed class Inline<T>(Action<T> report) : IProgress<T>
    {
        /// <inheritdoc/>
        public void Report(T value) => report(value);
    }

    /// <summary>The kind for these streams: silent when <paramref name="silent"/>, live on a terminal, else plain lines.</summary>
    public static CliProgress For(CliIO io, bool silent)
    {
        if (silent) return Silent.Instance;
        bool terminal = ReferenceEquals(io.Error, Console.Error) && !Console.IsErrorRedirected
                        && Environment.GetEnvironmentVariable("SAFECODE_PROGRESS") != "plain";
        return terminal ? new Live() : new Plain(io.Error);
    }

    /// <summary>"1.2 GB", "512 KB" (binary multiples).</summary>
    public static string Bytes(double b) => b switch
    {
        >= 1L << 30 => $"{b / (1L << 30):F2} GB",
        >= 1L << 20 => $"{b / (1L << 20):F1} MB",
        >= 1L << 10 => $"{b / (1L << 10):F1} KB",
        _ => $"{b:F0} B",
    };

    /// <summary>Amount in a unit: sizes for bytes, counts otherwise.</summary>
    public static string Amount(double v, string unit) => unit == "bytes" ? Bytes(v) : $"{v.ToString("0.##", CultureInfo.InvariantCulture)}{(unit.Length > 0 ? " " + unit : "")}";

    /// <summary>Rate per second in a unit ("1.53 GB/s", "12.4 tokens/s").</summary>
    public static string Rate(double perSecond, string unit) => unit == "bytes"
        ? $"{perSecond / 1e9:F2} GB/s"
        : $"{perSecond.ToString("0.0", CultureInfo.InvariantCulture)} {(unit.Length > 0 ? unit : "items")}/s";

    /// <summary>"42 s", "3 min 05 s".</summary>
    public static string Duration(TimeSpan t) => t.TotalSeconds < 60 ? $"{t.TotalSeconds:F0} s" : $"{(int)t.TotalMinutes} min {t.Seconds:00} s";

    private sealed class Silent : CliProgress
    {
        public static readonly Silent Instance = new();
        public override IProgressBar Start(string label, double total = 0, string unit = "") => new Bar();
        public override void Note(string line) { }
        private sealed class Bar : IProgressBar
        {
            public void Report(double done, string? detail = null) { }
            public void Complete(string? summary = null) { }
            public void Dispose() { }
        }
    }

    /// <summary>Plain lines: the start, then a line at most every <see cref="Interval"/>, then the summary.</summary>
    internal sealed class Plain(TextWriter err) : CliProgress
    {
        public static TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(5);

        public override IProgressBar Start(string label, double total = 0, string unit = "")
        {
            err.WriteLine($"· {label}{(total > 0 ? $" ({Amount(total, unit)})" : "")} …");
            return new Bar(err, label, total, unit);
        }

        public override void Note(string line) => err.WriteLine("· " + line);

        private sealed class Bar(TextWriter err, string label, double total, string unit) : IProgressBar
        {
            private readonly Stopwatch _sw = Stopwatch.StartNew();
            private TimeSpan _last;
            private bool _done;

            public void Report(double done, string? detail = null)
            {
                if (_done || _sw.Elapsed - _last < Interval) return;
                _last = _sw.Elapsed;
                var s = _sw.Elapsed.TotalSeconds;
                string line = total > 0
                    ? $"· {label}: {done / total * 100:F0}% ({Amount(done, unit)} of {Amount(total, unit)}, {Rate(done / s, unit)}{(done > 0 ? $", ETA {Duration(TimeSpan.FromSeconds(s * (total - done) / done))}" : "")})"
                    : $"· {label}: {Duration(_sw.Elapsed)}";
                err.WriteLine(detail is null ? line : $"{line} {detail}");
            }

            public void Complete(string? summary = null)
            {
                if (_done) return;
                _done = true;
                if (summary is null && _last == TimeSpan.Zero && _sw.Elapsed < Interval) return; // short and unremarkable: the start line said it all
                err.WriteLine($"· {label}: {summary ?? "done"} ({Duration(_sw.Elapsed)})");
            }

            public void Dispose() => Complete(null);
        }
    }

    /// <summary>A Spectre.Console live progress display on stderr, one per bar.</summary>
    private sealed class Live : CliProgress
    {
        private static readonly IAnsiConsole Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(System.Console.Error), Ansi = AnsiSupport.Detect, Interactive = InteractionSupport.Yes,
        });

        public override IProgressBar Start(string label, double total = 0, string unit = "") => new Bar(label, total, unit);

        public override void Note(string line) => System.Console.Error.WriteLine("· " + line);

        private sealed class Bar : IProgressBar
        {
            private readonly TaskCompletionSource _finish = new(TaskCreationOptions.RunContinuationsAsynchronously);
            private readonly TaskCompletionSource<ProgressTask> _task = new(TaskCreationOptions.RunContinuationsAsynchronously);
            private readonly Task _display;
            private readonly Stopwatch _sw = Stopwatch.StartNew();
            private readonly string _label;
            private bool _done;

            public Bar(string label, double total, string unit)
            {
                _label = label;
                var columns = new List<ProgressColumn> { new SpinnerColumn(), new TaskDescriptionColumn { Alignment = Justify.Left } };
                if (total > 0)
                    columns.AddRange([new ProgressBarColumn(), new PercentageColumn(), new AmountColumn(unit), new RateColumn(unit), new RemainingTimeColumn()]);
                else columns.Add(new ElapsedTimeColumn());
                _display = Console.Progress().AutoClear(true).HideCompleted(true).Columns(columns.ToArray())
                    .StartAsync(async ctx =>
                    {
                        var t = ctx.AddTask(Markup.Escape(label), maxValue: total > 0 ? total : 1);
                        t.IsIndeterminate = total <= 0;
                        _task.SetResult(t);
                        await _finish.Task;
                        t.StopTask();
                    });
            }

            public void Report(double done, string? detail = null)
            {
                if (_done) return;
                var t = _task.Task.GetAwaiter().GetResult();
                t.Value = done;
                if (detail is not null) t.Description = Markup.Escape($"{_label} {detail}");
            }

            public void Complete(string? summary = null)
            {
                if (_done) return;
                _done = true;
                _finish.TrySetResult();
                _display.GetAwaiter().GetResult();
                if (summary is not null) System.Console.Error.WriteLine($"· {_label}: {summary} ({Duration(_sw.Elapsed)})");
            }

            public void Dispose() => Complete(null);
        }

        private sealed class AmountColumn(string unit) : ProgressColumn
        {
            public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
                new Text($"{Amount(task.Value, unit)}/{Amount(task.MaxValue, unit)}", new Style(Color.Grey));
        }

        private sealed class RateColumn(string unit) : ProgressColumn
        {
            public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
                new Text(task.Speed is { } s ? Rate(s, unit) : "", new Style(Color.Grey));
        }
    }
}
