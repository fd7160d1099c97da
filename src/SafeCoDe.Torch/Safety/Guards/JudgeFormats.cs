namespace SafeCoDe.Torch.Safety.Guards;

/// <summary>
/// The judge formats by name: <c>safecode</c> (the project's own caption-then-decide prompts, the default) and the
/// guard-model families. Run-time <see cref="Register"/> adds a format without editing this file.
/// </summary>
public static class JudgeFormats
{
    private static readonly object Lock = new();
    private static IReadOnlyList<JudgeFormat> _all = [new SafeCoDeFormat(), new LlamaGuardFormat(), new LlavaGuardFormat(), new ShieldGemmaFormat()];

    /// <summary>The default format: the project's own judge prompts.</summary>
    public const string Default = SafeCoDeFormat.FormatName;

    /// <summary>Every registered format.</summary>
    public static IReadOnlyList<JudgeFormat> All { get { lock (Lock) return _all; } }

    /// <summary>The registered names, in order.</summary>
    public static IReadOnlyList<string> Names => All.Select(f => f.Name).ToArray();

    /// <summary>Adds a format (its name must be new).</summary>
    /// <exception cref="ArgumentException">A format of that name is registered already.</exception>
    public static void Register(JudgeFormat format)
    {
        lock (Lock)
        {
            if (_all.Any(f => string.Equals(f.Name, format.Name, StringComparison.OrdinalIgnoreCase)))
                throw new ArgumentException($"a judge format named '{format.Name}' is registered already");
            _all = [.. _all, format];
        }
    }

    /// <summary>Removes a registered format; false when none has that name.</summary>
    public static bool Unregister(string name)
    {
        lock (Lock)
        {
            var left = _all.Where(f => !string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase)).ToArray();
            if (left.Length == _all.Count) return false;
            _all = left;
            return true;
        }
    }

    /// <summary>The format named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such format; the message lists the known ones.</exception>
    public static JudgeFormat Get(string name, string option = "--judge-format") =>
        All.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"{option} '{name}': expected {string.Join(", ", Names)}");
}
