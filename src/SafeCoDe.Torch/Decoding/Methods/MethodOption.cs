using System.Text.Json;
using System.Text.Json.Nodes;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// One option of a decoding method, described once: its name (the command-line flag without <c>--</c>; JSON, the
/// server's <c>safecode</c> field, run.json and the chat client's <c>safecode.NAME</c> property use the same name with
/// underscores), its help text, how its values are read and written, and which field of the method's options record
/// it sets. The command line, the options file, the server and the chat client all go through these descriptors, so
/// none of them names a method or an option.
/// </summary>
public abstract class MethodOption
{
    /// <summary>The option's name, e.g. <c>lambda-supp</c> (flag <c>--lambda-supp</c>, JSON <c>lambda_supp</c>).</summary>
    public required string Name { get; init; }
    /// <summary>The help text, with its default (e.g. "... [default: 1]").</summary>
    public required string Help { get; init; }
    /// <summary>The value's placeholder in help (e.g. <c>L</c>, <c>FILE</c>); null for switches.</summary>
    public string? HelpName { get; init; }
    /// <summary>
    /// False for a shorthand that sets other, stored options (e.g. <c>temperature</c> for both verdicts): it is read
    /// from the command line and requests but never written to an options record's JSON.
    /// </summary>
    public bool Stored { get; init; } = true;
    /// <summary>True when a value can weaken the method's safety (e.g. the refusal settings): servers may refuse clients that set it.</summary>
    public bool WeakensSafety { get; init; }
    /// <summary>
    /// Values (in their JSON spelling) that can only make decoding stricter than any other value of an option that
    /// <see cref="WeakensSafety"/> (e.g. <c>unknown-verdict</c> <c>unsafe</c> or <c>error</c>): a server lets every client set them.
    /// </summary>
    public IReadOnlyList<string> StricterValues { get; init; } = [];

    /// <summary>The option's name in JSON (<c>lambda_supp</c>).</summary>
    public string JsonName => Name.Replace('-', '_');
    /// <summary>The command-line flag (<c>--lambda-supp</c>).</summary>
    public string Flag => "--" + Name;

    /// <summary>The .NET type of the values.</summary>
    public abstract Type ValueType { get; }
    /// <summary>True for a switch (<c>--greedy</c> alone means true).</summary>
    public abstract bool IsSwitch { get; }
    /// <summary>The accepted values, for choices (null otherwise).</summary>
    public abstract IReadOnlyList<string>? Choices { get; }
    /// <summary>True when the option sets a field of <paramref name="options"/>' record type.</summary>
    public abstract bool AppliesTo(DecodingOptions options);

    /// <summary>Reads a command-line value; <paramref name="at"/> names it in errors (<see cref="OptionValueException"/>).</summary>
    public abstract object? Parse(string text, string at);
    /// <summary>Reads a JSON value.</summary>
    public abstract object? Read(JsonElement value, string at);
    /// <summary>Takes a .NET value (the value itself, its text or its JSON).</summary>
    public abstract object? From(object? value, string at);
    /// <summary>The options with this option set to <paramref name="value"/> (a value <see cref="Parse"/>, <see cref="Read"/> or <see cref="From"/> returned).</summary>
    public abstract DecodingOptions Set(DecodingOptions options, object? value);
    /// <summary>The current value in <paramref name="options"/> as JSON.</summary>
    public abstract JsonNode? Write(DecodingOptions options);
}

/// <summary>An option that sets one field of the options record <typeparamref name="TOptions"/>.</summary>
public sealed class MethodOption<TOptions, T> : MethodOption where TOptions : DecodingOptions
{
    /// <summary>Reads the field.</summary>
    public required Func<TOptions, T> Get { get; init; }
    /// <summary>The record with the field set (a shorthand may set several).</summary>
    public required Func<TOptions, T, TOptions> With { get; init; }
    /// <summary>How the values are read and written.</summary>
    public required OptionCodec<T> Codec { get; init; }

    /// <inheritdoc/>
    public override Type ValueType => typeof(T);
    /// <inheritdoc/>
    public override bool IsSwitch => Codec.IsSwitch;
    /// <inheritdoc/>
    public override IReadOnlyList<string>? Choices => Codec.Choices;
    /// <inheritdoc/>
    public override bool AppliesTo(DecodingOptions options) => options is TOptions;
    /// <inheritdoc/>
    public override object? Parse(string text, string at) => Codec.Parse(text, at);
    /// <inheritdoc/>
    public override object? Read(JsonElement value, string at) => Codec.Read(value, at);
    /// <inheritdoc/>
    public override object? From(object? value, string at) => Codec.From(value, at);
    /// <inheritdoc/>
    public override DecodingOptions Set(DecodingOptions options, object? value) => options is TOptions o
        ? With(o, (T)value!)
        : throw new ArgumentException($"{Flag} sets {typeof(TOptions).Name}, not {options.GetType().Name}");
    /// <inheritdoc/>
    public override JsonNode? Write(DecodingOptions options) => Codec.Write(Get((TOptions)options));
}
