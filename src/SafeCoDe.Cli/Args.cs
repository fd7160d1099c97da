namespace SafeCoDe.Cli;

/// <summary>Minimal GNU-style option parsing: --name value, --name=value, --flag; unknown options are errors.</summary>
public sealed class Args
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    public List<string> Positional { get; } = [];

    /// <param name="flags">Options without a value.</param>
    /// <param name="valued">Options that take a value; anything else is an unknown option.</param>
    public Args(IEnumerable<string> argv, IReadOnlySet<string> flags, IReadOnlySet<string> valued)
    {
        var list = argv.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (!a.StartsWith("--") || a == "--") { Positional.Add(a); continue; }
            var name = a[2..];
            string? value = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
            if (!flags.Contains(name) && !valued.Contains(name)) throw new UsageException($"unknown option: --{name}");
            if (eq >= 0) { if (flags.Contains(name)) throw new UsageException($"option --{name} takes no value"); }
            else if (!flags.Contains(name))
            {
                if (i + 1 >= list.Count) throw new UsageException($"option --{name} needs a value");
                value = list[++i];
            }
            _values[name] = value;
        }
    }

    public bool Flag(string name) { _used.Add(name); return _values.ContainsKey(name); }
    public string? Get(string name) { _used.Add(name); return _values.TryGetValue(name, out var v) ? v : null; }
    public string Require(string name) => Get(name) ?? throw new UsageException($"--{name} is required");

    /// <summary>Fails on options the command never asked for (typos should not pass silently).</summary>
    public void RejectUnknown()
    {
        var unknown = _values.Keys.Where(k => !_used.Contains(k)).ToList();
        if (unknown.Count > 0) throw new UsageException($"unknown option{(unknown.Count > 1 ? "s" : "")}: {string.Join(", ", unknown.Select(u => "--" + u))}");
    }
}

/// <summary>Wrong command-line usage: printed with a hint to --help, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
