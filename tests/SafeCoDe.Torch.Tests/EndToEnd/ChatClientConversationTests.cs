using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using System.Net;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using NUnit.Framework;
using SafeCoDe.Torch.Chat;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Tests.EndToEnd;

/// <summary>The IChatClient's conversation handling, streaming summary, image sources, options and DI, on llava-next-tiny.</summary>
public sealed class ChatClientConversationTests
{
    private SafeCoDeEngine _engine = null!;
    private readonly RgbImage _image = EndToEndCheckpoints.Gradient(seed: 3);
    private byte[] _png = null!;
    private static string Tiny => Path.Combine(TestPaths.Root, "weights", "llava-next-tiny");
    private static SafeCoDeOptions Greedy(int max) => SafeCoDeOptions.For(SafeCoDePreset.Faithful) with { Greedy = true, MaxNewTokens = max, MaxTotalTokens = max, Seed = 2 };

    [OneTimeSetUp]
    public void Load()
    {
        _engine = SafeCoDeEngine.Load(Tiny, new EngineOptions { Device = DeviceRequest.Cpu });
        _png = EndToEndCheckpoints.Png(_image);
    }

    [OneTimeTearDown]
    public void Unload() => _engine?.Dispose();

    private SafeCoDeChatClient Client(SafeCoDeChatClientOptions? o = null) =>
        new(_engine, (o ?? new SafeCoDeChatClientOptions()) with { Decoding = Greedy(6), Judge = o?.Judge ?? new FixedJudge(Verdict.Safe) });

    private List<ChatMessage> Conversation() =>
    [
        new(ChatRole.System, "Answer briefly."),
        new(ChatRole.User, [new DataContent(_png, "image/png"), new TextContent("What is in the picture?")]),
        new(ChatRole.Assistant, "A gradient with a square."),
        new(ChatRole.User, "What colour is the square?"),
    ];

    [Test]
    public async Task MultiTurn_RendersTheWholeConversation()
    {
        using var client = Client();
        var r = await client.GetResponseAsync(Conversation());

        var turns = new List<ChatTurn>
        {
            ChatTurn.System("Answer briefly."), ChatTurn.User("What is in the picture?", 1), ChatTurn.Assistant("A gradient with a square."),
            ChatTurn.User("What colour is the square?"),
        };
        var expected = new PromptBuilder(_engine.Directory.Config, _engine.Tokenizer, _engine.Format)
            .Encode(turns, [_engine.Images.Layout(_image.Width, _image.Height)]);
        Assert.That(r.Usage!.InputTokenCount, Is.EqualTo(expected.Length), "the prompt is the rendered conversation, history included");
        Assert.That(expected.Text, Does.Contain("A gradient with a square.").And.Contain("What colour is the square?"));

        var direct = await _engine.GenerateAsync(new SafeCoDeRequest
        {
            Prompt = "What colour is the square?", ImageBytes = _png, Options = Greedy(6), Judge = new FixedJudge(Verdict.Safe),
            SystemPrompt = "Answer briefly.", History = turns.Skip(1).Take(2).ToList(),
        });
        Assert.That(r.Text, Is.EqualTo(direct.Answer));
        Assert.That(r.Usage.InputTokenCount, Is.EqualTo(direct.PromptTokens));

        var single = await client.GetResponseAsync([new ChatMessage(ChatRole.User, [new DataContent(_png, "image/png"), new TextContent("What colour is the square?")])]);
        Assert.That(single.Usage!.InputTokenCount, Is.LessThan(r.Usage.InputTokenCount!.Value), "dropping the history would shorten the prompt");

        var c = await ChatConversation.FromMessagesAsync(Conversation(), instructions: "Be kind.");
        Assert.That(c.SystemPrompt, Is.EqualTo("Answer briefly.\nBe kind."));
        Assert.That(c.History, Is.EqualTo(turns.Skip(1).Take(2).ToList()));
        Assert.That(c.Prompt, Is.EqualTo("What colour is the square?"));
    }

    [Test]
    public async Task Streaming_EndsWithFinishReasonUsageAndVerdict()
    {
        using var client = Client(new SafeCoDeChatClientOptions { Judge = new FixedJudge(Verdict.Unsafe) });
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(Conversation())) updates.Add(u);
        var whole = await client.GetResponseAsync(Conversation());

        Assert.That(updates.Count, Is.GreaterThan(2));
        var last = updates[^1];
        Assert.That(last.FinishReason, Is.EqualTo(whole.FinishReason));
        Assert.That(last.Contents.OfType<UsageContent>().Single().Details.OutputTokenCount, Is.EqualTo(whole.Usage!.OutputTokenCount));
        Assert.That(updates.Take(updates.Count - 1).All(u => u.FinishReason is null), Is.True);

        var merged = updates.ToChatResponse();
        Assert.That(merged.Text.Trim(), Is.EqualTo(whole.Text));
        Assert.That(merged.FinishReason, Is.EqualTo(whole.FinishReason));
        Assert.That(merged.Usage!.InputTokenCount, Is.EqualTo(whole.Usage.InputTokenCount));
        Assert.That(merged.Usage.OutputTokenCount, Is.EqualTo(whole.Usage.OutputTokenCount));
        Assert.That(merged.ModelId, Is.EqualTo("llava-next-tiny"));
        Assert.That(last.AdditionalProperties!["safecode.verdict"], Is.EqualTo("unsafe"));
        Assert.That(last.AdditionalProperties["safecode.judge"], Is.EqualTo("fixed:unsafe"));
        Assert.That(last.AdditionalProperties["safecode.mode"], Is.EqualTo("safecode"));
        // ToChatResponse keeps update properties on the message they belong to
        var props = merged.AdditionalProperties ?? merged.Messages[^1].AdditionalProperties;
        Assert.That(props?["safecode.verdict"], Is.EqualTo("unsafe"), $"response: {merged.AdditionalProperties?.Count}, message: {merged.Messages[^1].AdditionalProperties?.Count}");
    }

    [Test]
    public async Task TextOnly_IsRefused_UnlessVanillaIsChosenExplicitly()
    {
        using var client = Client();
        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, "Hello?")]));
        Assert.That(ex!.Message, Does.Contain("needs an image").And.Contain("TextOnly"));

        using var lenient = Client(new SafeCoDeChatClientOptions { TextOnly = TextOnlyPolicy.Plain });
        var r = await lenient.GetResponseAsync([new ChatMessage(ChatRole.User, "Hello?")]);
        Assert.That(r.AdditionalProperties!["safecode.mode"], Is.EqualTo("vanilla"));
        Assert.That(r.AdditionalProperties["safecode.fallback"], Does.Contain("no image"));
        Assert.That(r.AdditionalProperties["safecode.verdict"], Is.Null);

        // asking for vanilla per call is not a fallback
        var v = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Hello?")], new ChatOptions { AdditionalProperties = new() { ["safecode.mode"] = "vanilla" } });
        Assert.That(v.AdditionalProperties!.ContainsKey("safecode.fallback"), Is.False);
        Assert.That(v.Text, Is.EqualTo(r.Text));
    }

    [Test]
    public async Task UriImages_FilesWork_HttpOnlyWhenEnabled_SizeIsLimited()
    {
        var dir = TestPaths.NewTempDir();
        try
        {
            var file = Path.Combine(dir, "scene.png");
            File.WriteAllBytes(file, _png);
            using var client = Client();
            var viaData = await client.GetResponseAsync(Conversation());
            var conv = Conversation();
            conv[1] = new ChatMessage(ChatRole.User, [new UriContent(new Uri(file), "image/png"), new TextContent("What is in the picture?")]);
            var viaFile = await client.GetResponseAsync(conv);
            Assert.That(viaFile.Text, Is.EqualTo(viaData.Text));
            Assert.That(viaFile.Usage!.InputTokenCount, Is.EqualTo(viaData.Usage!.InputTokenCount));

            conv[1] = new ChatMessage(ChatRole.User, [new UriContent(new Uri("http://127.0.0.1:9/scene.png"), "image/png"), new TextContent("Hi")]);
            var http = Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(conv));
            Assert.That(http!.Message, Does.Contain("AllowHttp"));

            using var small = Client(new SafeCoDeChatClientOptions { Images = new ImageSourcePolicy { MaxImageBytes = 100 } });
            Assert.ThrowsAsync<InvalidDataException>(() => small.GetResponseAsync(Conversation()));

            var two = Conversation();
            two[3] = new ChatMessage(ChatRole.User, [new DataContent(_png, "image/png"), new TextContent("And this?")]);
            Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(two));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public async Task ChatOptions_AreHonouredOrRejected()
    {
        using var client = Client();
        foreach (var (name, options) in new (string, ChatOptions)[]
        {
            ("stop", new ChatOptions { StopSequences = ["."] }),
            ("penalty", new ChatOptions { FrequencyPenalty = 0.5f }),
            ("presence", new ChatOptions { PresencePenalty = 0.5f }),
            ("tools", new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "one")] }),
            ("json", new ChatOptions { ResponseFormat = ChatResponseFormat.Json }),
            ("model", new ChatOptions { ModelId = "gpt-4o" }),
            ("conversation", new ChatOptions { ConversationId = "c1" }),
            ("unknown safecode key", new ChatOptions { AdditionalProperties = new() { ["safecode.frobnicate"] = 0.5 } }),
        })
            Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(Conversation(), options), name);

        // honoured: model id of this checkpoint, top-k, instructions, options through RawRepresentationFactory
        var k1 = await client.GetResponseAsync(Conversation(), new ChatOptions { ModelId = "llava-next-tiny", TopK = 3, Temperature = 1.5f, Seed = 9 });
        var expected = await client.GetResponseAsync(Conversation(), new ChatOptions
        {
            RawRepresentationFactory = _ => Greedy(6) with { Greedy = false, TopKSampling = 3, TemperatureSafe = 1.5, TemperatureUnsafe = 1.5, Seed = 9 },
        });
        Assert.That(k1.Text, Is.EqualTo(expected.Text), "TopK, Temperature and Seed reach the decoder");
        var greedy = await client.GetResponseAsync(Conversation());
        var raw = await client.GetResponseAsync(Conversation(), new ChatOptions { RawRepresentationFactory = _ => Greedy(2) });
        Assert.That(raw.Usage!.OutputTokenCount, Is.LessThanOrEqualTo(2));
        var instructed = await client.GetResponseAsync(Conversation(), new ChatOptions { Instructions = "Speak like a pirate." });
        Assert.That(instructed.Usage!.InputTokenCount, Is.GreaterThan(greedy.Usage!.InputTokenCount!.Value));
    }

    [Test]
    public async Task DependencyInjection_AndLoadAsync()
    {
        var services = new ServiceCollection();
        services.AddSingleton<ISafetyJudge>(new FixedJudge(Verdict.Unsafe));
        services.AddSafeCoDeChatClient(Tiny, new EngineOptions { Device = DeviceRequest.Cpu }, new SafeCoDeChatClientOptions { Decoding = Greedy(4) })
            .Use(inner => new ConfigureOptionsChatClient(inner, o => o.Seed = 2));
        await using (var sp = services.BuildServiceProvider())
        {
            var chat = sp.GetRequiredService<IChatClient>();
            var r = await chat.GetResponseAsync(Conversation());
            Assert.That(r.AdditionalProperties!["safecode.judge"], Is.EqualTo("fixed:unsafe"), "the container's judge is used");
            Assert.That(chat.GetService<ChatClientMetadata>()!.DefaultModelId, Is.EqualTo("llava-next-tiny"));
            Assert.That(chat.GetService<SafeCoDeEngine>(), Is.SameAs(sp.GetRequiredService<SafeCoDeEngine>()));
        }

        var reports = new List<LoadProgress>();
        using (var loaded = await SafeCoDeChatClient.LoadAsync(Tiny, new EngineOptions { Device = DeviceRequest.Cpu, DType = ModelDType.Float32 },
                   progress: new SyncProgress<LoadProgress>(reports.Add)))
        {
            Assert.That(loaded.ModelId, Is.EqualTo("llava-next-tiny"));
            var last = reports[^1];
            Assert.That(last.Stage, Is.EqualTo("done"));
            Assert.That(last.BytesDone, Is.EqualTo(last.BytesTotal).And.GreaterThan(1_000_000));
            var weights = reports.Where(p => p.Stage == "weights").ToList();
            Assert.That(weights.Count, Is.EqualTo(last.TensorsTotal));
            Assert.That(weights.Select(p => p.BytesDone), Is.Ordered.Ascending);
            Assert.That(weights[^1].BytesDone, Is.EqualTo(last.BytesTotal), "the byte count is exact, not estimated");
        }

        using var cancel = new CancellationTokenSource();
        int seen = 0;
        var stopAt = new SyncProgress<LoadProgress>(p => { if (p.Stage == "weights" && ++seen == 3) cancel.Cancel(); });
        Assert.CatchAsync<OperationCanceledException>(() => SafeCoDeChatClient.LoadAsync(Tiny, new EngineOptions { Device = DeviceRequest.Cpu }, null, stopAt, cancel.Token));
        Assert.That(seen, Is.EqualTo(3), "the load stopped right after the cancel");
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
