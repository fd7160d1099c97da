using Microsoft.Extensions.AI;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Safety;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a SafeCoDe model as the app's <see cref="IChatClient"/>.</summary>
public static class SafeCoDeServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="SafeCoDeEngine"/> for <paramref name="modelDir"/> (loaded on first use, disposed
    /// with the container) and a <see cref="SafeCoDeChatClient"/> over it as the <see cref="IChatClient"/>. An
    /// <see cref="ISafetyJudge"/> registered in the container is used when the options name none.
    /// </summary>
    /// <returns>The builder of the chat client pipeline: chain <c>.UseLogging()</c>, <c>.UseOpenTelemetry()</c>, ….</returns>
    public static ChatClientBuilder AddSafeCoDeChatClient(this IServiceCollection services, string modelDir,
        EngineOptions? engine = null, SafeCoDeChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        services.AddSingleton(_ => SafeCoDeEngine.Load(modelDir, engine));
        return services.AddChatClient(sp =>
        {
            var o = options ?? new SafeCoDeChatClientOptions();
            if (o.Judge is null && sp.GetService(typeof(ISafetyJudge)) is ISafetyJudge judge) o = o with { Judge = judge };
            return new SafeCoDeChatClient(sp.GetRequiredService<SafeCoDeEngine>(), o);
        });
    }
}
