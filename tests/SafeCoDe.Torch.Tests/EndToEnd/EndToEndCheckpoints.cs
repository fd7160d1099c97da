using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Tests.EndToEnd;

/// <summary>
/// Random-weight checkpoints of every supported family with a real tokenizer, built once per test run in a temp
/// folder: the vendored llama2 (32k SentencePiece-BPE) or qwen3 (151k byte-level BPE) tokenizer.json with the
/// family's added tokens at the ids its Hub checkpoints use, a config.json derived from the tiny fixture
/// (weights/fixtures/FAMILY/v5) with vocab size and special ids moved onto that tokenizer, the fixture's
/// preprocessor_config.json, and weights written by <see cref="RandomCheckpoint.Write"/>.
/// </summary>
public static class EndToEndCheckpoints
{
    /// <summary>Width and height of <see cref="Gradient"/> (the fixtures' image.png size, whose layouts are documented).</summary>
    public const int ImageWidth = 80, ImageHeight = 60;

    /// <summary>
    /// Image tokens the prompt must hold for one 80×60 image, worked out by hand from each vision config and
    /// preprocessor config (not from the code under test): LLaVA (56/14)² = 16; LLaVA-NeXT 70 (fixtures README);
    /// Qwen smart_resize 80×60 → 84×56 = 6×4 patches / merge 2² = 6; InstructBLIP 8 query tokens; IDEFICS one
    /// &lt;image&gt; (features enter by cross-attention); Idefics3 112×84 → 2×2 tiles + global, (56/14)²/2² = 4 per tile = 20.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, int> ExpectedImageTokens = new Dictionary<string, int>
    {
        [ModelFamilies.Llava] = 16, [ModelFamilies.LlavaNext] = 70, [ModelFamilies.Qwen2VL] = 6, [ModelFamilies.Qwen25VL] = 6,
        [ModelFamilies.InstructBlip] = 8, [ModelFamilies.Idefics] = 1, [ModelFamilies.Idefics3] = 20,
    };

    /// <summary>The text of the placeholder token the prompt repeats per image token.</summary>
    public static string ImageTokenText(string family) => family is ModelFamilies.Qwen2VL or ModelFamilies.Qwen25VL ? "<|image_pad|>" : "<image>";

    private static readonly Lazy<string> Root = new(() =>
    {
        var d = Path.Combine(Path.GetTempPath(), "safecode-tests", "e2e-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(d);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(d, true); } catch (IOException) { } catch (UnauthorizedAccessException) { } };
        return d;
    });

    private static readonly ConcurrentDictionary<string, Lazy<string>> Built = new();

    /// <summary>The checkpoint folder of a family (built on first use).</summary>
    public static string For(string family) => Built.GetOrAdd(family, f => new Lazy<string>(() => Build(f))).Value;

    /// <summary>A smooth 80×60 RGB gradient with a bright square, made in memory.</summary>
    public static RgbImage Gradient(int seed = 0)
    {
        var img = new RgbImage(ImageWidth, ImageHeight);
        for (int y = 0; y < ImageHeight; y++)
        for (int x = 0; x < ImageWidth; x++)
        {
            bool square = x >= 20 + seed && x < 40 + seed && y >= 15 && y < 35;
            img[x, y] = square ? ((byte)250, (byte)240, (byte)30) : ((byte)(x * 3), (byte)(y * 4), (byte)((x + y + seed * 17) % 256));
        }
        return img;
    }

    /// <summary>PNG bytes of an image.</summary>
    public static byte[] Png(RgbImage img)
    {
        using var image = SixLabors.ImageSharp.Image.LoadPixelData<SixLabors.ImageSharp.PixelFormats.Rgb24>(img.Pixels, img.Width, img.Height);
        using var ms = new MemoryStream();
        SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, ms);
        return ms.ToArray();
    }

    private static string Build(string family)
    {
        var root = Root.Value;
        var tok = Path.Combine(root, family + "-tokenizer");
        var model = Path.Combine(root, family);
        Directory.CreateDirectory(tok);
        var fixture = Path.Combine(TestPaths.Root, "weights", "fixtures", family, "v5");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(fixture, "config.json")))!.AsObject();
        var text = config["text_config"]?.AsObject();

        switch (family)
        {
            case ModelFamilies.Llava or ModelFamilies.LlavaNext:
            {
                // llava-hf: <image> = 32000, <pad> = 32001, vocab 32064
                WriteLlamaTokenizer(tok, [("<image>", true), ("<pad>", true)], pad: "<pad>");
                config["image_token_index"] = 32000;
                config["pad_token_id"] = 32001;
                SetText(text!, vocab: 32064, bos: 1, eos: 2, pad: 32001);
                break;
            }
            case ModelFamilies.InstructBlip:
            {
                // Salesforce/instructblip-vicuna-7b (transformers ≥ 4.47): [PAD] = 32000, <image> = 32001
                WriteLlamaTokenizer(tok, [("[PAD]", true), ("<image>", true)], pad: "[PAD]");
                config["image_token_index"] = 32001;
                SetText(text!, vocab: 32064, bos: 1, eos: 2, pad: 32000);
                var q = Path.Combine(tok, "qformer_tokenizer");
                Directory.CreateDirectory(q);
                foreach (var f in new[] { "vocab.txt", "tokenizer_config.json" })
                    File.Copy(TestPaths.TestData("tokenizers", "qformer", f), Path.Combine(q, f));
                int qVocab = File.ReadLines(Path.Combine(q, "vocab.txt")).Count();
                config["qformer_config"]!["vocab_size"] = qVocab;
                config["qformer_config"]!["pad_token_id"] = 0; // [PAD]
                break;
            }
            case ModelFamilies.Idefics:
            {
                // HuggingFaceM4/idefics-9b-instruct: the three tokens after Llama's 32000 live in the decoupled additional embedding
                WriteLlamaTokenizer(tok, [("<fake_token_around_image>", true), ("<image>", true), ("<end_of_utterance>", true)], pad: "<unk>");
                config["vocab_size"] = 32000;
                config["additional_vocab_size"] = 3;
                config["bos_token_id"] = 1; config["eos_token_id"] = 2; config["pad_token_id"] = 0;
                break;
            }
            case ModelFamilies.Idefics3:
            {
                // SmolVLM's added tokens on the llama2 vocabulary (ids 32000…): <|im_start|>, the image markers, the tile tokens
                var added = new List<(string, bool)> { ("<|im_start|>", true), ("<fake_token_around_image>", true), ("<image>", true), ("<global-img>", true) };
                for (int r = 1; r <= 6; r++) for (int c = 1; c <= 6; c++) added.Add(($"<row_{r}_col_{c}>", true));
                added.Add(("<end_of_utterance>", true));
                added.Add(("<pad>", true));
                var ids = WriteLlamaTokenizer(tok, added, pad: "<pad>");
                config["image_token_id"] = ids["<image>"];
                config["pad_token_id"] = ids["<pad>"];
                SetText(text!, vocab: 32064, bos: 1, eos: ids["<end_of_utterance>"], pad: ids["<pad>"]);
                break;
            }
            case ModelFamilies.Qwen2VL or ModelFamilies.Qwen25VL:
            {
                // Qwen2-VL: the qwen3 vocabulary already holds the vision tokens at the Hub ids
                File.WriteAllBytes(Path.Combine(tok, "tokenizer.json"), Gunzip(TestPaths.TestData("tokenizers", "qwen3", "tokenizer.json.gz")));
                File.Copy(TestPaths.TestData("tokenizers", "qwen3", "tokenizer_config.json"), Path.Combine(tok, "tokenizer_config.json"));
                config["image_token_id"] = 151655;
                config["video_token_id"] = 151656;
                config["vision_start_token_id"] = 151652;
                config["vision_end_token_id"] = 151653;
                SetText(text!, vocab: 151680, bos: 151643, eos: 151645, pad: 151643);
                break;
            }
            default: throw new ArgumentException($"no end-to-end checkpoint recipe for {family}");
        }

        var configPath = Path.Combine(root, family + "-config.json");
        File.WriteAllText(configPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        RandomCheckpoint.Write(configPath, model, new RandomCheckpointOptions
        {
            Seed = 11, InitScale = 1.0, TokenizerDir = tok, PreprocessorConfig = Path.Combine(fixture, "preprocessor_config.json"),
        });
        return model;
    }

    private static void SetText(JsonObject text, int vocab, int bos, int eos, int pad)
    {
        text["vocab_size"] = vocab;
        text["bos_token_id"] = bos;
        text["eos_token_id"] = eos;
        text["pad_token_id"] = pad;
    }

    private static byte[] Gunzip(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>
    /// The vendored llama2 tokenizer.json with <paramref name="added"/> appended as added tokens from id 32000 on (as
    /// tools/default-weights/make.sh does), and its tokenizer_config.json with the same added_tokens_decoder entries.
    /// </summary>
    private static Dictionary<string, int> WriteLlamaTokenizer(string dir, IReadOnlyList<(string content, bool special)> added, string pad)
    {
        var json = JsonNode.Parse(Gunzip(TestPaths.TestData("tokenizers", "llama2", "tokenizer.json.gz")))!.AsObject();
        var cfg = JsonNode.Parse(File.ReadAllText(TestPaths.TestData("tokenizers", "llama2", "tokenizer_config.json")))!.AsObject();
        var list = json["added_tokens"]!.AsArray();
        var decoder = cfg["added_tokens_decoder"]!.AsObject();
        var ids = new Dictionary<string, int>();
        int next = 32000;
        foreach (var (content, special) in added)
        {
            int id = next++;
            ids[content] = id;
            list.Add(new JsonObject { ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = special });
            decoder[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
                { ["content"] = content, ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = special };
        }
        cfg["pad_token"] = pad;
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return ids;
    }
}
