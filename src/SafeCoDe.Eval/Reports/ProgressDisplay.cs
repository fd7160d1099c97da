using Spectre.Console;

namespace SafeCoDe.Eval.Reports;

/// <summary>
/// Shows a run's progress: a Spectre.Console bar with rate and ETA on an interactive terminal, plain lines (at most
/// every few seconds, and at the end) when the output is redirected.
/// </summary>
public sealed class ProgressDisplay : IProgress<RunProgress>, IDisposable
{
    private readonly TextWriter _plain;
    private readonly bool _interactive;
    private readonly string _title;
    private readonly TimeSpan _every;
    private DateTime _last = DateTime.MinValue;
    private RunProgress? _latest;
    private readonly Task? _live;
    private readonly TaskCompletionSource _stop = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A display writing to <paramref name="plain"/> when not interactive (stderr by default).</summary>
    public ProgressDisplay(string title, TextWriter? plain = null, bool? interactive = null, TimeSpan? every = null)
    {
        _title = title;
        _plain = plain ?? Console.Error;
        _every = every ?? TimeSpan.FromSeconds(5);
        _interactive = interactive ?? (!Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive);
        if (_interactive)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            _live = console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferlessRateColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(title), maxValue: 1);
                    while (!_stop.Task.IsCompleted)
                    {
                        Update(task);
                        await Task.WhenAny(_stop.Task, Task.Delay(200)).ConfigureAwait(false);
                    }
                    Update(task);
                });
        }
    }

    private void Update(ProgressTask task)
    {
        if (_latest is not { } p) return;
        task.MaxValue = Math.Max(1, p.Total);
        task.Value = p.Done + p.Problems + p.Failed;
        task.Description = Markup.Escape($"{_title} {p.Done + p.Problems + p.Failed}/{p.Total}" + (p.Problems > 0 ? $" ({p.Problems} problems)" : "") + (p.Failed > 0 ? $" ({p.Failed} failed)" : ""));
    }

    /// <inheritdoc/>
    public void Report(RunProgress value)
    {
        _latest = value;
        if (_interactive) return;
        int finished = value.Done + value.Problems + value.Failed;
        if (DateTime.UtcNow - _last < _every && finished < value.Total && finished > 0) return;
        _last = DateTime.UtcNow;
        _plain.WriteLine(Line(_title, value));
    }

    /// <summary>A plain progress line: counts, rate, ETA.</summary>
    public static string Line(string title, RunProgress p)
    {
        int finished = p.Done + p.Problems + p.Failed;
        var eta = p.Eta is { } e ? $", ETA {(int)e.TotalHours:00}:{e.Minutes:00}:{e.Seconds:00}" : "";
        return FormattableString.Invariant($"{title}: {finished}/{p.Total} ({p.Done} done, {p.Problems} problems, {p.Failed} failed, {p.Resumed} resumed), {p.Rate:F2}/s{eta}");
    }

    /// <summary>Stops the live bar.</summary>
    public void Dispose()
    {
        _stop.TrySetResult();
        try { _live?.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}

/// <summary>A rate column that shows samples per second without byte units.</summary>
internal sealed class TransferlessRateColumn : ProgressColumn
{
    public override Spectre.Console.Rendering.IRenderable Render(Spectre.Console.Rendering.RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
        new Text(task.Speed is { } s ? FormattableString.Invariant($"{s:F2}/s") : "–/s");
}
