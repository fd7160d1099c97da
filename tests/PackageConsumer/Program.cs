// Loads a checkpoint through the package's public API and answers one question about an image with SafeCoDe.
using System.Text.Json;
using Microsoft.Extensions.AI;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

var modelDir = args[0];
var image = File.ReadAllBytes(args[1]);
using var client = await SafeCoDeChatClient.LoadAsync(modelDir, new EngineOptions { Device = DeviceRequest.Cpu },
    new SafeCoDeChatClientOptions { Judge = new FixedJudge(Verdict.Safe) });
var response = await client.GetResponseAsync(
    [new ChatMessage(ChatRole.User, [new DataContent(image, "image/png"), new TextContent("What is in the picture?")])],
    new ChatOptions { Temperature = 0, MaxOutputTokens = 6, Seed = 1 });
var runtime = NativeRuntime.Initialize(new RuntimeOptions { Device = DeviceRequest.Cpu });
Console.WriteLine(JsonSerializer.Serialize(new
{
    model_id = response.ModelId,
    text = response.Text,
    verdict = response.AdditionalProperties?["safecode.verdict"]?.ToString(),
    output_tokens = response.Usage?.OutputTokenCount,
    compat_used = runtime.CompatUsed,
    compat_library = runtime.CompatLibrary,
}));
