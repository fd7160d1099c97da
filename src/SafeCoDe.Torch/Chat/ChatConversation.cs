using Microsoft.Extensions.AI;
using SafeCoDe.Torch.Processing.Chat;

namespace SafeCoDe.Torch.Chat;

/// <summary>Where images of a conversation may come from, and how large they may be.</summary>
public sealed record ImageSourcePolicy
{
    /// <summary>Largest image accepted, in bytes (default 20 MiB).</summary>
    public long MaxImageBytes { get; init; } = 20L << 20;
    /// <summary>Read <c>file:</c> URIs (<see cref="UriContent"/>) from the local disk (default true).</summary>
    public bool AllowFiles { get; init; } = true;
    /// <summary>Download <c>http:</c>/<c>https:</c> URIs (default false: a server must opt in).</summary>
    public bool AllowHttp { get; init; }
    /// <summary>Client for downloads (default: a shared one with a 30 s timeout).</summary>
    public HttpClient? HttpClient { get; init; }
}

/// <summary>
/// A Microsoft.Extensions.AI conversation as SafeCoDe runs it: system text, earlier user/assistant turns, the final
/// user query, and the one image of the conversation (SafeCoDe judges and contrasts one scene). Used by
/// <see cref="SafeCoDeChatClient"/>; a server reuses it for its own endpoints.
/// </summary>
/// <param name="SystemPrompt">System messages (and <see cref="ChatOptions.Instructions"/>) joined by newlines, or null.</param>
/// <param name="History">Earlier turns; the turn that carried the image has <c>Images = 1</c>.</param>
/// <param name="Prompt">The text of the last (user) message: the query the judge rules on.</param>
/// <param name="ImageBytes">The image file's bytes, or null for a text-only conversation.</param>
/// <param name="ImageMediaType">Its media type when known.</param>
public sealed record ChatConversation(string? SystemPrompt, IReadOnlyList<ChatTurn> History, string Prompt, byte[]? ImageBytes, string? ImageMediaType)
{
    private static readonly Lazy<HttpClient> SharedHttp = new(() => new HttpClient { Timeout = TimeSpan.FromSeconds(30) });

    /// <summary>Builds the conversation; images are read (files, http(s) when allowed) within the size limit.</summary>
    /// <exception cref="ArgumentException">No messages, the last message is not a user message, or more than one image.</exception>
    /// <exception cref="NotSupportedException">A role or content SafeCoDe cannot run (tools, audio, non-image data, http images when not allowed).</exception>
    /// <exception cref="InvalidDataException">An image is larger than <see cref="ImageSourcePolicy.MaxImageBytes"/>.</exception>
    public static async Task<ChatConversation> FromMessagesAsync(IEnumerable<ChatMessage> messages, string? instructions = null,
        ImageSourcePolicy? policy = null, CancellationToken cancel = default)
    {
        policy ??= new ImageSourcePolicy();
        var list = messages.ToList();
        if (list.Count == 0) throw new ArgumentException("the conversation has no messages");
        if (list[^1].Role != ChatRole.User) throw new ArgumentException($"the conversation must end with a user message (it ends with a {list[^1].Role} message)");
        var system = new List<string>();
        var turns = new List<ChatTurn>();
        byte[]? image = null;
        string? media = null;
        for (int i = 0; i < list.Count; i++)
        {
            var m = list[i];
            var text = new System.Text.StringBuilder();
            int images = 0;
            foreach (var c in m.Contents)
            {
                switch (c)
                {
                    case TextContent t: text.Append(t.Text); break;
                    case TextReasoningContent when m.Role == ChatRole.Assistant: break; // an earlier answer's reasoning is not replayed
                    case UsageContent: break;
                    case DataContent d when d.HasTopLevelMediaType("image"):
                        if (image is not null) throw new ArgumentException("SafeCoDe judges one scene: the conversation has more than one image");
                        if (d.Data.Length > policy.MaxImageBytes) throw new InvalidDataException($"the image has {d.Data.Length} bytes, more than the limit of {policy.MaxImageBytes}");
                        // the request's own array when it is exactly the image (a server's decoded data URI): no second copy
                        image = System.Runtime.InteropServices.MemoryMarshal.TryGetArray(d.Data, out var seg) && seg.Offset == 0 && seg.Count == seg.Array!.Length
                            ? seg.Array : d.Data.ToArray();
                        media = d.MediaType; images++;
                        break;
                    case UriContent u when u.HasTopLevelMediaType("image"):
                        if (image is not null) throw new ArgumentException("SafeCoDe judges one scene: the conversation has more than one image");
                        image = await ReadUriAsync(u.Uri, policy, cancel).ConfigureAwait(false); media = u.MediaType; images++;
                        break;
                    default:
                        throw new NotSupportedException($"SafeCoDeChatClient cannot use {c.GetType().Name} content{(c is DataContent dc ? $" ({dc.MediaType})" : c is UriContent uc ? $" ({uc.MediaType})" : "")}: text and images only");
                }
            }
            if (images > 0 && m.Role != ChatRole.User) throw new NotSupportedException($"an image in a {m.Role} message: images go in user messages");
            if (m.Role == ChatRole.System) { if (text.Length > 0) system.Add(text.ToString()); }
            else if (i == list.Count - 1) { /* the query */ }
            else if (m.Role == ChatRole.User) turns.Add(ChatTurn.User(text.ToString(), images));
            else if (m.Role == ChatRole.Assistant) turns.Add(ChatTurn.Assistant(text.ToString()));
            else throw new NotSupportedException($"SafeCoDeChatClient cannot use {m.Role} messages (no tools): system, user and assistant only");
        }
        if (instructions is { Length: > 0 }) system.Add(instructions);
        var last = list[^1];
        return new ChatConversation(system.Count > 0 ? string.Join("\n", system) : null, turns,
            string.Concat(last.Contents.OfType<TextContent>().Select(t => t.Text)), image, media);
    }

    private static async Task<byte[]> ReadUriAsync(Uri uri, ImageSourcePolicy policy, CancellationToken cancel)
    {
        if (uri.IsFile)
        {
            if (!policy.AllowFiles) throw new NotSupportedException($"image {uri}: file images are switched off (ImageSourcePolicy.AllowFiles)");
            return ReadFile(uri.LocalPath, policy.MaxImageBytes);
        }
        if (uri.Scheme is "http" or "https")
        {
            if (!policy.AllowHttp) throw new NotSupportedException($"image {uri}: downloading images is switched off (set ImageSourcePolicy.AllowHttp to allow http(s) images)");
            var http = policy.HttpClient ?? SharedHttp.Value;
            using var response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancel).ConfigureAwait(false);
            response.EnsureSuccessStatusCode();
            if (response.Content.Headers.ContentLength > policy.MaxImageBytes)
                throw new InvalidDataException($"image {uri}: {response.Content.Headers.ContentLength} bytes, more than the limit of {policy.MaxImageBytes}");
            await using var s = await response.Content.ReadAsStreamAsync(cancel).ConfigureAwait(false);
            using var ms = new MemoryStream();
            var buffer = new byte[81920];
            int n;
            while ((n = await s.ReadAsync(buffer, cancel).ConfigureAwait(false)) > 0)
            {
                if (ms.Length + n > policy.MaxImageBytes) throw new InvalidDataException($"image {uri}: more than the limit of {policy.MaxImageBytes} bytes");
                ms.Write(buffer, 0, n);
            }
            return ms.ToArray();
        }
        throw new NotSupportedException($"image {uri}: only file: and http(s): URIs are supported");
    }

    /// <summary>
    /// A local image file: regular files only (a FIFO would block, <c>/dev/zero</c> never ends), read within the limit
    /// whatever length the file system reports. Errors name the path, never the file's content.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="Runtime.InputFileException">A directory, FIFO, device or socket.</exception>
    /// <exception cref="InvalidDataException">Larger than <paramref name="maxBytes"/>.</exception>
    public static byte[] ReadFile(string path, long maxBytes)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"image {path}: file not found", path);
        try { return Runtime.BoundedFile.ReadAllBytes(path, maxBytes, "image file"); }
        catch (Runtime.InputLimitException) { throw new InvalidDataException($"image {path}: more than the limit of {maxBytes} bytes"); }
    }
}
