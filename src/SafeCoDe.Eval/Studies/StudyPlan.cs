using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace SafeCoDe.Eval.Studies;

/// <summary>A plan file that cannot be used: the message names the file, line, column and field.</summary>
public sealed class StudyPlanException(string message) : Exception(message);

/// <summary>
/// One option of a plan section as <c>eval run</c> spells it: the flag without its dashes and its values (one for a
/// plain value, several for a list, none for <c>true</c>: a switch turned on; <c>false</c> is passed as the value
/// <c>false</c>, which turns off a switch that is on by default), with where the plan wrote it.
/// </summary>
public sealed record PlanOption(string Name, IReadOnlyList<string> Values, string Where)
{
    /// <summary>The option as command-line words: <c>--name v1 v2</c>, or <c>--name</c> alone for a switch.</summary>
    public IEnumerable<string> Words => [ "--" + Name, .. Values ];
}

/// <summary>A model of the plan: a short name (used in cell folder names) and its checkpoint folder.</summary>
public sealed record PlanModel(string Name, string Path, string Where);

/// <summary>A method of the plan: a short name and its <c>eval run</c> options (<c>mode</c>, <c>preset</c>, the method's own flags).</summary>
public sealed record PlanMethod(string Name, IReadOnlyList<PlanOption> Options, string Where)
{
    /// <summary>The decoding method (<c>mode</c>; the name when no mode is given).</summary>
    public string Mode => Options.FirstOrDefault(o => o.Name == "mode")?.Values.FirstOrDefault() ?? Name;
}

/// <summary>
/// A benchmark of the plan: a short name, the registered benchmark, its local copy, the scorer, which metric set and
/// which metrics the study table shows (all of the run's top-level rows when none are named) and its selection
/// options (<c>splits</c>, <c>subset</c>, <c>limit</c>, …).
/// </summary>
public sealed record PlanBenchmark(string Name, string Benchmark, string Data, string? Scorer, string? MetricSet, IReadOnlyList<string> Metrics,
    IReadOnlyList<PlanOption> Options, string Where);

/// <summary>
/// A study: models × methods × benchmarks, one shared set of generation settings, and the baseline method the others
/// are tested against (by default the first method with the registry's plain mode). Read from YAML or JSON (<see cref="Load"/>); every error names the line and the field.
/// </summary>
public sealed record StudyPlan(string Name, string Baseline, IReadOnlyList<PlanOption> Generation, IReadOnlyList<PlanModel> Models,
    IReadOnlyList<PlanMethod> Methods, IReadOnlyList<PlanBenchmark> Benchmarks, string? Out, string File)
{
    /// <summary>The options a plan's sections may not set: the study sets them per cell.</summary>
    public static readonly IReadOnlySet<string> Reserved = new HashSet<string>(StringComparer.Ordinal)
        { "benchmark", "b", "data", "d", "model", "m", "out", "o", "shard", "shard-count", "json", "quiet", "scorer", "options" };

    /// <summary>Every cell in plan order: each model, each benchmark, each method.</summary>
    public IEnumerable<(PlanModel Model, PlanBenchmark Benchmark, PlanMethod Method)> Cells =>
        from m in Models from b in Benchmarks from x in Methods select (m, b, x);

    private static readonly Regex NamePattern = new("^[A-Za-z0-9][A-Za-z0-9_.-]*$", RegexOptions.CultureInvariant);

    /// <summary>Reads a plan file (YAML, of which JSON is a form); relative paths are taken from the plan's folder.</summary>
    /// <exception cref="StudyPlanException">The file cannot be parsed or a field is missing or wrong.</exception>
    public static StudyPlan Load(string file)
    {
        if (!System.IO.File.Exists(file)) throw new StudyPlanException($"{file}: plan file not found");
        return Parse(System.IO.File.ReadAllText(file), file, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file))!);
    }

    /// <summary>Parses plan text; <paramref name="name"/> is the file named in errors, <paramref name="baseDir"/> the folder relative paths start from.</summary>
    public static StudyPlan Parse(string text, string name, string baseDir)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException ex) { throw new StudyPlanException($"{name}:{ex.Start.Line}:{ex.Start.Column}: not valid YAML/JSON — {Inner(ex)}"); }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new StudyPlanException($"{name}:1:1: the plan must be a mapping with the keys name, models, methods, benchmarks (and generation, baseline, out)");
        var r = new Reader(name, baseDir);
        r.Known(root, "", "name", "models", "methods", "benchmarks", "generation", "baseline", "out");
        var models = r.List(root, "models", required: true).Select((n, i) => r.Model(n, $"models[{i}]")).ToList();
        var methods = r.List(root, "methods", required: true).Select((n, i) => r.Method(n, $"methods[{i}]")).ToList();
        var benchmarks = r.List(root, "benchmarks", required: true).Select((n, i) => r.Benchmark(n, $"benchmarks[{i}]")).ToList();
        var generation = r.Child(root, "generation") is { } g ? r.Options(g, "generation") : [];
        foreach (var o in generation.Where(o => o.Name is "mode" or "preset"))
            throw new StudyPlanException($"{o.Where}: the method is set per method (methods[].mode, methods[].options.preset), not in the shared generation settings");
        r.Unique(models.Select(m => (m.Name, m.Where)), "models");
        r.Unique(methods.Select(m => (m.Name, m.Where)), "methods");
        r.Unique(benchmarks.Select(m => (m.Name, m.Where)), "benchmarks");
        // without a baseline field: the first method that decodes the model as it is (the registry's plain method)
        var baselineNode = r.Child(root, "baseline");
        var plain = SafeCoDe.Torch.Decoding.Methods.DecodingMethods.Plain;
        var baseline = baselineNode is not null ? r.Scalar(baselineNode, "baseline")
            : methods.FirstOrDefault(m => string.Equals(m.Mode, plain, StringComparison.OrdinalIgnoreCase))?.Name
              ?? throw new StudyPlanException($"{r.At(root, "baseline")}: no method with mode {plain} to compare the others with ({string.Join(", ", methods.Select(m => m.Name))}); name one with baseline: NAME");
        if (!methods.Any(m => m.Name == baseline))
            throw new StudyPlanException($"{r.At(baselineNode!, "baseline")}: the baseline method '{baseline}' is not among methods ({string.Join(", ", methods.Select(m => m.Name))})");
        var studyName = r.Child(root, "name") is { } nn ? r.Name(nn, "name") : System.IO.Path.GetFileNameWithoutExtension(name);
        var outDir = r.Child(root, "out") is { } on ? r.PathOf(on, "out") : null;
        return new StudyPlan(studyName, baseline, generation, models, methods, benchmarks, outDir, name);
    }

    private static string Inner(Exception ex) => ex.InnerException is { } i ? ex.Message + " " + i.Message : ex.Message;

    /// <summary>Reads nodes with the plan's file and positions at hand, for errors that say where.</summary>
    private sealed class Reader(string file, string baseDir)
    {
        public string At(YamlNode node, string field) => $"{file}:{node.Start.Line}:{node.Start.Column}: {field}";

        public YamlNode? Child(YamlMappingNode map, string key) =>
            map.Children.FirstOrDefault(kv => kv.Key is YamlScalarNode s && s.Value == key).Value;

        public void Known(YamlMappingNode map, string path, params string[] keys)
        {
            foreach (var kv in map.Children)
            {
                var key = (kv.Key as YamlScalarNode)?.Value ?? "";
                if (!keys.Contains(key))
                    throw new StudyPlanException($"{At(kv.Key, Join(path, key))}: unknown field; expected one of {string.Join(", ", keys)}");
            }
        }

        public List<YamlNode> List(YamlMappingNode map, string key, bool required)
        {
            var node = Child(map, key);
            if (node is null)
            {
                if (required) throw new StudyPlanException($"{At(map, key)}: missing (a list with at least one entry)");
                return [];
            }
            if (node is not YamlSequenceNode seq || seq.Children.Count == 0)
                throw new StudyPlanException($"{At(node, key)}: expected a list with at least one entry");
            return [.. seq.Children];
        }

        public string Scalar(YamlNode node, string field)
        {
            if (node is not YamlScalarNode s || s.Value is null || (s.Style == YamlDotNet.Core.ScalarStyle.Plain && s.Value is "" or "~" or "null"))
                throw new StudyPlanException($"{At(node, field)}: expected a value");
            return s.Value;
        }

        public string Name(YamlNode node, string field)
        {
            var v = Scalar(node, field);
            if (!NamePattern.IsMatch(v)) throw new StudyPlanException($"{At(node, field)}: '{v}' — a name is letters, digits, '.', '_' and '-' (it names folders)");
            return v;
        }

        public string PathOf(YamlNode node, string field)
        {
            var v = Scalar(node, field);
            if (v.StartsWith('~')) v = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), v.TrimStart('~').TrimStart('/'));
            return System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, v));
        }

        private YamlMappingNode Map(YamlNode node, string field, string expect) =>
            node as YamlMappingNode ?? throw new StudyPlanException($"{At(node, field)}: expected a mapping ({expect})");

        private YamlNode Required(YamlMappingNode map, string key, string path) =>
            Child(map, key) ?? throw new StudyPlanException($"{At(map, Join(path, key))}: missing");

        public PlanModel Model(YamlNode node, string path)
        {
            if (node is YamlScalarNode)
            {
                var p = PathOf(node, path);
                return new PlanModel(System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(p)), p, At(node, path));
            }
            var map = Map(node, path, "name, path");
            Known(map, path, "name", "path");
            var dir = PathOf(Required(map, "path", path), Join(path, "path"));
            var n = Child(map, "name") is { } nn ? Name(nn, Join(path, "name")) : System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(dir));
            if (!NamePattern.IsMatch(n)) throw new StudyPlanException($"{At(map, path)}: the folder name '{n}' cannot name a cell; give name: NAME");
            return new PlanModel(n, dir, At(map, path));
        }

        public PlanMethod Method(YamlNode node, string path)
        {
            if (node is YamlScalarNode)
            {
                var n = Name(node, path);
                return new PlanMethod(n, [new PlanOption("mode", [n], At(node, path))], At(node, path));
            }
            var map = Map(node, path, "name, mode, options");
            Known(map, path, "name", "mode", "options");
            var name = Name(Required(map, "name", path), Join(path, "name"));
            var options = Child(map, "options") is { } o ? Options(o, Join(path, "options")) : [];
            foreach (var opt in options.Where(x => x.Name == "mode"))
                throw new StudyPlanException($"{opt.Where}: give the method as {path}.mode, not among its options");
            var modeNode = Child(map, "mode");
            var mode = modeNode is null ? name : Scalar(modeNode, Join(path, "mode"));
            return new PlanMethod(name, [new PlanOption("mode", [mode], At(modeNode ?? map, Join(path, "mode"))), .. options], At(map, path));
        }

        public PlanBenchmark Benchmark(YamlNode node, string path)
        {
            var map = Map(node, path, "name, benchmark, data, scorer, metric_set, metrics, options");
            Known(map, path, "name", "benchmark", "data", "scorer", "metric_set", "metrics", "options");
            var benchNode = Required(map, "benchmark", path);
            var bench = Scalar(benchNode, Join(path, "benchmark"));
            var descriptor = SafeCoDe.Eval.Benchmarks.EvalBenchmarks.TryGet(bench)
                ?? throw new StudyPlanException($"{At(benchNode, Join(path, "benchmark"))}: unknown benchmark '{bench}'; known: {string.Join(", ", SafeCoDe.Eval.Benchmarks.EvalBenchmarks.Registered)}");
            var name = Child(map, "name") is { } nn ? Name(nn, Join(path, "name")) : descriptor.Name;
            var data = PathOf(Required(map, "data", path), Join(path, "data"));
            var scorer = Child(map, "scorer") is { } s ? Scalar(s, Join(path, "scorer")) : null;
            string? set = null;
            if (Child(map, "metric_set") is { } ms)
            {
                set = Scalar(ms, Join(path, "metric_set"));
                if (!descriptor.MetricSets.ContainsKey(set))
                    throw new StudyPlanException($"{At(ms, Join(path, "metric_set"))}: {descriptor.Name} reports the metric sets {string.Join(", ", descriptor.MetricSets.Keys)}, not '{set}'");
            }
            var metrics = new List<string>();
            if (Child(map, "metrics") is { } mn)
            {
                if (mn is not YamlSequenceNode seq || seq.Children.Count == 0) throw new StudyPlanException($"{At(mn, Join(path, "metrics"))}: expected a list of metric paths (e.g. total_acc, chat.safe_acc)");
                metrics.AddRange(seq.Children.Select((c, i) => Scalar(c, $"{Join(path, "metrics")}[{i}]")));
            }
            var options = Child(map, "options") is { } o ? Options(o, Join(path, "options")) : [];
            return new PlanBenchmark(name, descriptor.Name, data, scorer, set, metrics, options, At(map, path));
        }

        public List<PlanOption> Options(YamlNode node, string path)
        {
            var map = Map(node, path, "option: value, as eval run spells its flags without the dashes");
            var list = new List<PlanOption>();
            foreach (var kv in map.Children)
            {
                var key = (kv.Key as YamlScalarNode)?.Value ?? "";
                var where = At(kv.Key, Join(path, key));
                var flag = key.TrimStart('-').Replace('_', '-');
                if (flag.Length == 0) throw new StudyPlanException($"{where}: empty option name");
                if (Reserved.Contains(flag))
                    throw new StudyPlanException($"{where}: '{flag}' is set by the study for each cell (models[], benchmarks[].benchmark/data/scorer, the --out and --shard of 'eval study')");
                var values = kv.Value switch
                {
                    YamlScalarNode { Value: "true", Style: ScalarStyle.Plain } => [],
                    YamlScalarNode { Value: "false", Style: ScalarStyle.Plain } => ["false"],
                    YamlScalarNode s => [Scalar(s, Join(path, key))],
                    YamlSequenceNode seq when seq.Children.Count > 0 => seq.Children.Select((c, i) => Scalar(c, $"{Join(path, key)}[{i}]")).ToList(),
                    _ => throw new StudyPlanException($"{where}: expected a value, a list of values or true"),
                };
                if (flag is "data-path" or "ids" or "scorer-template" or "scorer-refusal-phrases" or "judge-cache" && values.Count == 1)
                    values = [PathOf(kv.Value, Join(path, key))];
                list.Add(new PlanOption(flag, values, where));
            }
            return list;
        }

        public void Unique(IEnumerable<(string Name, string Where)> items, string field)
        {
            foreach (var g in items.GroupBy(x => x.Name).Where(g => g.Count() > 1))
                throw new StudyPlanException($"{g.Skip(1).First().Where}: the name '{g.Key}' is used twice in {field}");
        }

        private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
    }
}
