namespace SafeCoDe.Torch.Processing.Images;

/// <summary>
/// An image could not be decoded: not an image, an unsupported format, truncated or corrupt data, or larger than the
/// configured limits. <see cref="FileName"/> names the file (or the name the caller gave the bytes) and
/// <see cref="Reason"/> says what is wrong.
/// </summary>
public sealed class ImageDecodeException : Exception
{
    /// <summary>The file path, or the name given to in-memory data.</summary>
    public string FileName { get; }

    /// <summary>What is wrong, without the file name.</summary>
    public string Reason { get; }

    /// <summary>What kind of failure it is.</summary>
    public ImageDecodeFailure Failure { get; }

    /// <summary>Creates the error; the message is "SOURCE: cannot decode image: REASON".</summary>
    public ImageDecodeException(string source, ImageDecodeFailure failure, string reason, Exception? inner = null)
        : base($"{source}: cannot decode image: {reason}", inner)
    {
        FileName = source;
        Reason = reason;
        Failure = failure;
    }
}

/// <summary>Why an image was rejected.</summary>
public enum ImageDecodeFailure
{
    /// <summary>The file does not exist or cannot be read.</summary>
    Unreadable,
    /// <summary>Not one of the supported formats (JPEG, PNG, WebP, BMP, GIF).</summary>
    UnknownFormat,
    /// <summary>The data ends before the image does.</summary>
    Truncated,
    /// <summary>The data is damaged or inconsistent.</summary>
    Corrupt,
    /// <summary>Over a configured limit (file size, pixels, side length, decoder memory).</summary>
    TooLarge,
}
