using System.Text.Json;
using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// Options records in JSON as <see cref="DecodingMethods.ToJson"/> writes them and <see cref="DecodingMethods.FromJson"/>
/// reads them — whatever the serializer's naming policy — so a result's <c>options</c> block replays through
/// <c>--options</c> and the server's <c>safecode</c> field spells every option the same way.
/// </summary>
public sealed class DecodingOptionsJson : JsonConverterFactory
{
    /// <inheritdoc/>
    public override bool CanConvert(Type typeToConvert) => typeof(DecodingOptions).IsAssignableFrom(typeToConvert);

    /// <inheritdoc/>
    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(Converter<>).MakeGenericType(typeToConvert))!;

    private sealed class Converter<T> : JsonConverter<T> where T : DecodingOptions
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var doc = JsonDocument.ParseValue(ref reader);
            try
            {
                var (o, _) = DecodingMethods.FromJson(doc.RootElement, "");
                return o as T ?? throw new JsonException($"the options are for the {o.Method} method, not {typeof(T).Name}");
            }
            catch (ArgumentException ex) { throw new JsonException(ex.Message, ex); }
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => DecodingMethods.ToJson(value).WriteTo(writer);
    }
}
