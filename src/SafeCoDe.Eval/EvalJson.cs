using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SafeCoDe.Eval;

/// <summary>The JSON settings of every file the harness writes (snake_case, UTF-8 text kept readable, nulls left out).</summary>
public static class EvalJson
{
    /// <summary>One line per object (records.jsonl, problems.jsonl, caches).</summary>
    public static readonly JsonSerializerOptions Line = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Indented, for run.json and reports.</summary>
    public static readonly JsonSerializerOptions Indented = new(Line) { WriteIndented = true };
}
