using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Llava;
using SafeCoDe.Torch.Tests.Conformance;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests.Checkpoints;

public class TiedWeightsTests
{
    [Test]
    public void TiedLmHead_SharesTheEmbeddingTable_AndGivesTheSameLogitsAsAnExplicitCopy()
    {
        var fixture = Path.Combine(TestPaths.Root, "weights", "fixtures", "llava", "v5");
        var tmp = TestPaths.NewTempDir();
        try
        {
            var src = SafetensorsFile.Open(Path.Combine(fixture, "model.safetensors"));
            const string head = "language_model.lm_head.weight", embed = "language_model.model.embed_tokens.weight";
            // tied: no lm_head in the file, tie_word_embeddings true
            var tiedDir = Path.Combine(tmp, "tied"); Directory.CreateDirectory(tiedDir);
            var tensors = src.Entries.Keys.Where(k => k != head).Select(k => new KeyValuePair<string, Tensor>(k, src.Read(k))).ToList();
            SafetensorsWriter.Write(Path.Combine(tiedDir, "model.safetensors"), tensors);
            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(fixture, "config.json")))!;
            cfg["tie_word_embeddings"] = true; cfg["text_config"]!["tie_word_embeddings"] = true;
            File.WriteAllText(Path.Combine(tiedDir, "config.json"), cfg.ToJsonString());
            // untied: lm_head = a copy of the embedding table
            var copyDir = Path.Combine(tmp, "copy"); Directory.CreateDirectory(copyDir);
            tensors.Add(new(head, tensors.First(kv => kv.Key == embed).Value.clone()));
            SafetensorsWriter.Write(Path.Combine(copyDir, "model.safetensors"), tensors);
            File.Copy(Path.Combine(fixture, "config.json"), Path.Combine(copyDir, "config.json"));
            foreach (var kv in tensors) kv.Value.Dispose();

            using var tied = (LlavaBackbone)Backbones.Load(tiedDir, CPU, ScalarType.Float32);
            using var copy = Backbones.Load(copyDir, CPU, ScalarType.Float32);
            Assert.That(ReferenceEquals(tied.language_model.lm_head.weight, tied.language_model.model.embed_tokens.weight), Is.True, "one tensor, not a copy");
            var owned = new List<Tensor>();
            var (real, _) = BackboneConformanceTests.ReferenceInputs(fixture, owned);
            var (s1, a) = tied.Prefill(real, 0, allLogits: true);
            var (s2, b) = copy.Prefill(real, 0, allLogits: true);
            using (s1) using (s2) using (a) using (b)
                Assert.That((a - b).abs().max().item<float>(), Is.EqualTo(0f));
            foreach (var t in owned) t.Dispose();
        }
        finally { Directory.Delete(tmp, true); }
    }
}
