using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>A tokenizer.json "post_processor" for a single sequence: the ids it wraps around the encoded text.</summary>
internal abstract class PostProcessor
{
    public abstract int[] Apply(int[] ids);

    public static PostProcessor? FromJson(JsonNode? node, Func<string, int> tokenId)
    {
        if (node is null) return null;
        var type = Json.Str(node, "type");
        switch (type)
        {
            case "ByteLevel": return null; // only adjusts offsets
            case "Sequence":
                {
                    var parts = Json.Parts(node, "processors", "post_processor").Select(n => FromJson(n, tokenId)).Where(p => p is not null).ToArray();
                    return new SequencePostProcessor(parts!);
                }
            case "BertProcessing":
            case "RobertaProcessing":
                {
                    int cls = node["cls"]!.AsArray()[1]!.GetValue<int>(), sep = node["sep"]!.AsArray()[1]!.GetValue<int>();
                    return new TemplatePostProcessor([cls], [sep]);
                }
            case "TemplateProcessing":
                {
                    var specials = node["special_tokens"]?.AsObject();
                    var before = new List<int>();
                    var after = new List<int>();
                    bool seenSequence = false;
                    foreach (var item in node["single"]!.AsArray())
                    {
                        if (item!["Sequence"] is not null) { seenSequence = true; continue; }
                        var sp = item["SpecialToken"] ?? throw new FormatException($"template item {item.ToJsonString()} is not supported");
                        var name = Json.Str(sp, "id");
                        IEnumerable<int> ids = specials?[name]?["ids"] is JsonArray arr ? arr.Select(x => x!.GetValue<int>()) : [tokenId(name)];
                        (seenSequence ? after : before).AddRange(ids);
                    }
                    return new TemplatePostProcessor(before.ToArray(), after.ToArray());
                }
            default: throw new NotSupportedException($"tokenizer.json post_processor '{type}' is not supported");
        }
    }
}

internal sealed class TemplatePostProcessor(int[] before, int[] after) : PostProcessor
{
    public int[] Before => before;
    public int[] After => after;
    public override int[] Apply(int[] ids) => [.. before, .. ids, .. after];
}

internal sealed class SequencePostProcessor(PostProcessor[] parts) : PostProcessor
{
    public override int[] Apply(int[] ids) { foreach (var p in parts) ids = p.Apply(ids); return ids; }
}
