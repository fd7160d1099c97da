using System.Net;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Cli.Serve;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>
/// The requests evaluation harnesses send to an OpenAI-compatible model under test, posted byte for byte as they build
/// them: VLMEvalKit's GPT4V API model (open-compass/VLMEvalKit @989e33b vlmeval/api/gpt.py: <c>json.dumps</c> of
/// {model, messages, n, temperature, **kwargs, max_tokens}, images re-encoded as JPEG data URIs with <c>detail</c>, key
/// <c>sk-…</c>) and lmms-eval's <c>openai</c> model (EvolvingLMMs-Lab/lmms-eval lmms_eval/models/chat/openai.py
/// build_payload_for_index through the OpenAI SDK: {messages, model, max_tokens, temperature}, images as PNG data
/// URIs from protocol.py to_openai_messages). Each must be answered with a non-empty assistant message, since both
/// harnesses treat an empty one as a failure. The "model" field is the name the server serves (its /v1/models), as the
/// harness config must give it.
/// </summary>
[NonParallelizable]
public sealed class ServeHarnessRequestTests
{
    private const string Key = "sk-local-test";
    private SafeCoDeServer _server = null!;
    private HttpClient _http = null!;
    private readonly LogCapture _log = new();

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await ServeTestServer.Start(_log, key: Key, configure: o => o with { MaxTokensCap = 6 });
        _http = ServeTestServer.Http(_server, Key);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    private static string Jpeg(int seed)
    {
        using var img = new Image<Rgb24>(24, 24, new Rgb24((byte)(40 * seed), 120, 200));
        using var ms = new MemoryStream();
        img.SaveAsJpeg(ms);
        return Convert.ToBase64String(ms.ToArray());
    }

    private async Task<string> Answer(string body)
    {
        var r = await ServeTestServer.Post(_http, body);
        var text = await r.Content.ReadAsStringAsync();
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        var content = (string?)JsonNode.Parse(text)!["choices"]![0]!["message"]!["content"];
        Assert.That(content?.Trim(), Is.Not.Null.And.Not.Empty, "VLMEvalKit retries an empty answer and then stores 'Failed to obtain answer via API.'");
        return content!;
    }

    [Test]
    public async Task VlmEvalKit_DatasetPrompt_ImageThenText_DetailHigh_MaxTokensAboveTheCap()
    {
        // MathVista / MM-Vet / MIA-Bench: ImageBaseDataset.build_prompt puts the image(s) first, then the question; config img_detail "high", max_tokens 2048
        var body = "{\"model\": \"llava-next-tiny\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/jpeg;base64," + Jpeg(1) +
            "\", \"detail\": \"high\"}}, {\"type\": \"text\", \"text\": \"Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.\\nQuestion: How many squares are there?\"}]}], " +
            "\"n\": 1, \"temperature\": 0, \"max_tokens\": 2048}";
        await Answer(body);
    }

    [Test]
    public async Task VlmEvalKit_MmmuInterleaved_SeveralImages_CombinedIntoOne()
    {
        // MMMUDataset splits the text at '<image k>' and interleaves the images; a config system_prompt becomes a system message
        var body = "{\"model\": \"llava-next-tiny\", \"messages\": [{\"role\": \"system\", \"content\": \"You are a helpful assistant.\"}, {\"role\": \"user\", \"content\": [" +
            "{\"type\": \"text\", \"text\": \"Question: Compare \"}, {\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/jpeg;base64," + Jpeg(2) + "\", \"detail\": \"high\"}}, " +
            "{\"type\": \"text\", \"text\": \" and \"}, {\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/jpeg;base64," + Jpeg(3) + "\", \"detail\": \"high\"}}, " +
            "{\"type\": \"text\", \"text\": \".\\nOptions:\\nA. left\\nB. right\\nPlease select the correct answer from the options above. \\n\"}]}], \"n\": 1, \"temperature\": 0, \"max_tokens\": 2048}";
        await Answer(body);
        Assert.That(_log.ToString(), Does.Contain("\"images_combined\":2"), "the two images were sent as one, side by side, and the log says so");
    }

    [Test]
    public async Task SeveralImagesInSeveralTurns_AreStillRefused()
    {
        var img = "{\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/jpeg;base64," + Jpeg(4) + "\"}}";
        var body = "{\"model\": \"default\", \"messages\": [{\"role\": \"user\", \"content\": [" + img + ", {\"type\": \"text\", \"text\": \"first\"}]}, " +
            "{\"role\": \"assistant\", \"content\": \"ok\"}, {\"role\": \"user\", \"content\": [" + img + ", {\"type\": \"text\", \"text\": \"second\"}]}], \"max_tokens\": 4}";
        var r = await ServeTestServer.Post(_http, body);
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "images of different turns are different scenes");
        Assert.That(await r.Content.ReadAsStringAsync(), Does.Contain("more than one image"));
    }

    [Test]
    public async Task CombinedImages_OverThePixelLimit_AreRefusedBeforeDecoding()
    {
        // each 24x24 image passes a 1,000-pixel limit; side by side (48x24) they do not
        await using var small = await ServeTestServer.Start(new LogCapture(), key: Key, configure: o => o with { MaxTokensCap = 4, MaxImagePixels = 1000 });
        using var http = ServeTestServer.Http(small, Key);
        string Img(int seed) => "{\"type\": \"image_url\", \"image_url\": {\"url\": \"data:image/jpeg;base64," + Jpeg(seed) + "\", \"detail\": \"high\"}}";
        var body = "{\"model\": \"default\", \"messages\": [{\"role\": \"user\", \"content\": [" + Img(5) + ", " + Img(6) + ", {\"type\": \"text\", \"text\": \"Which?\"}]}], \"max_tokens\": 4}";
        var r = await ServeTestServer.Post(http, body);
        var text = await r.Content.ReadAsStringAsync();
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), text);
        Assert.That(text, Does.Contain("side by side would be 48x24 pixels"));
    }

    [Test]
    public async Task LmmsEval_OpenAiBackend_PngDataUri_NoDetail_NoN()
    {
        // the OpenAI SDK serialises the payload compactly and adds nothing to it
        var body = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"" + ServeTestServer.DataUri + "\"}}," +
            "{\"type\":\"text\",\"text\":\"What is shown in the image?\\nAnswer the question using a single word or phrase.\"}]}],\"model\":\"llava-next-tiny\",\"max_tokens\":1024,\"temperature\":0}";
        await Answer(body);
    }
}
