using System.Collections.Concurrent;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;

namespace SafeCoDe.Torch.Processing.Images;

/// <summary>What an encoded image declares about itself, read without decoding pixels.</summary>
public sealed record ImageHeader(ImageFormatKind Format, int Width, int Height, int ExifOrientation)
{
    /// <summary>Size after the EXIF orientation is applied (orientations 5–8 swap the sides).</summary>
    public (int Width, int Height) OrientedSize => ExifOrientation is >= 5 and <= 8 ? (Height, Width) : (Width, Height);
}

/// <summary>
/// Decodes JPEG, PNG, WebP, BMP and GIF (first frame) into an <see cref="RgbImage"/>: EXIF orientation applied,
/// alpha composited over white (or <see cref="ImageDecodeOptions.Background"/>), 16-bit and palette images reduced
/// to 8-bit RGB. The order of checks bounds memory: file size, format sniffing, the header's dimensions against
/// the pixel and side limits, the container's structure (truncation), and only then the decoder, whose allocator
/// refuses any buffer above <see cref="ImageDecodeOptions.MaxBufferMegabytes"/>. Every failure is an
/// <see cref="ImageDecodeException"/> naming the file.
/// </summary>
public static class ImageDecoder
{
    private static readonly ConcurrentDictionary<int, Configuration> Configs = new();

    /// <summary>Reads and decodes the file at <paramref name="path"/>.</summary>
    public static RgbImage Load(string path, ImageDecodeOptions? options = null)
        => Decode(ReadFile(path, options ?? ImageDecodeOptions.Default), path, options);

    /// <summary>Decodes encoded bytes; <paramref name="source"/> names them in errors.</summary>
    public static RgbImage Decode(byte[] data, string source, ImageDecodeOptions? options = null)
    {
        options ??= ImageDecodeOptions.Default;
        options.Validate();
        var header = ReadHeader(data, source, options);
        var config = ConfigFor(options);
        Image<Rgba32> image;
        try
        {
            image = Image.Load<Rgba32>(config, data);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            for (var x = e; x is not null; x = x.InnerException)
                if (x is InvalidMemoryOperationException)
                    throw new ImageDecodeException(source, ImageDecodeFailure.TooLarge,
                        $"decoding needs a buffer larger than the {options.EffectiveBufferMegabytes} MiB limit ({x.Message})", e);
            throw new ImageDecodeException(source, ImageDecodeFailure.Corrupt, $"the {header.Format} data is invalid: {e.Message}", e);
        }
        using (image)
        {
            if (image.Width != header.Width || image.Height != header.Height)
                throw new ImageDecodeException(source, ImageDecodeFailure.Corrupt,
                    $"the header declares {header.Width}x{header.Height} but the decoder produced {image.Width}x{image.Height}");
            int orientation = options.ApplyExifOrientation ? header.ExifOrientation : 1;
            return ToRgb(image, orientation, options.Background);
        }
    }

    /// <summary>Reads the header of the file at <paramref name="path"/> (format, size, orientation) and checks it against the limits.</summary>
    public static ImageHeader Identify(string path, ImageDecodeOptions? options = null)
        => ReadHeader(ReadFile(path, options ?? ImageDecodeOptions.Default), path, options ?? ImageDecodeOptions.Default);

    /// <summary>Reads the header of encoded bytes and checks it against the limits and the container's structure.</summary>
    public static ImageHeader Identify(byte[] data, string source, ImageDecodeOptions? options = null)
        => ReadHeader(data, source, options ?? ImageDecodeOptions.Default);

    /// <summary>Reads an image file's bytes within the size limit (typed errors for missing, unreadable or oversized files).</summary>
    public static byte[] ReadBytes(string path, ImageDecodeOptions? options = null) => ReadFile(path, options ?? ImageDecodeOptions.Default);

    private static byte[] ReadFile(string path, ImageDecodeOptions options)
    {
        options.Validate();
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
                throw new ImageDecodeException(path, ImageDecodeFailure.Unreadable, Directory.Exists(path) ? "it is a directory, not a file" : "the file does not exist");
            if (info.Length > options.MaxFileBytes)
                throw new ImageDecodeException(path, ImageDecodeFailure.TooLarge, $"the file has {info.Length} bytes, over the {options.MaxFileBytes}-byte limit");
            // the reported length is not trusted (devices, /proc files): the read itself is capped, and FIFOs/devices are refused
            return Runtime.BoundedFile.ReadAllBytes(path, options.MaxFileBytes, "image file");
        }
        catch (Runtime.InputFileException e) { throw new ImageDecodeException(path, ImageDecodeFailure.Unreadable, e.Reason, e); }
        catch (Runtime.InputLimitException e) { throw new ImageDecodeException(path, ImageDecodeFailure.TooLarge, $"the file is larger than the {options.MaxFileBytes}-byte limit", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new ImageDecodeException(path, ImageDecodeFailure.Unreadable, e.Message, e);
        }
    }

    private static ImageHeader ReadHeader(byte[] data, string source, ImageDecodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        options.Validate();
        if (data.LongLength > options.MaxFileBytes)
            throw new ImageDecodeException(source, ImageDecodeFailure.TooLarge, $"the data has {data.LongLength} bytes, over the {options.MaxFileBytes}-byte limit");
        var kind = ContainerCheck.Sniff(data)
                   ?? throw new ImageDecodeException(source, ImageDecodeFailure.UnknownFormat, ContainerCheck.Describe(data));
        IImageInfo? info;
        try
        {
            info = Image.Identify(ConfigFor(options), data, out _);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // a header so damaged that the identifier fails: report truncation if that is the cause
            var structural = ContainerCheck.Check(kind, data);
            throw new ImageDecodeException(source, structural is null ? ImageDecodeFailure.Corrupt : ImageDecodeFailure.Truncated,
                structural ?? $"the {kind} header is invalid: {e.Message}", e);
        }
        if (info is null)
        {
            var structural = ContainerCheck.Check(kind, data);
            throw new ImageDecodeException(source, structural is null ? ImageDecodeFailure.Corrupt : ImageDecodeFailure.Truncated,
                structural ?? $"the {kind} header could not be read");
        }
        int w = info.Width, h = info.Height;
        if (w <= 0 || h <= 0)
            throw new ImageDecodeException(source, ImageDecodeFailure.Corrupt, $"the header declares an empty image ({w}x{h})");
        if (w > options.MaxSide || h > options.MaxSide)
            throw new ImageDecodeException(source, ImageDecodeFailure.TooLarge, $"the header declares {w}x{h} pixels; the limit is {options.MaxSide} a side");
        if ((long)w * h > options.MaxPixels)
            throw new ImageDecodeException(source, ImageDecodeFailure.TooLarge,
                $"the header declares {w}x{h} = {(long)w * h} pixels, over the {options.MaxPixels}-pixel limit");
        if ((long)w * h * 4 > options.MaxDecodedBytes)
            throw new ImageDecodeException(source, ImageDecodeFailure.TooLarge,
                $"the header declares {w}x{h} pixels, which decode to {(long)w * h * 4 / (1024 * 1024)} MiB, over the {options.MaxDecodedBytes / (1024 * 1024)} MiB limit (ImageDecodeOptions.MaxDecodedBytes)");
        var problem = ContainerCheck.Check(kind, data);
        if (problem is not null) throw new ImageDecodeException(source, ImageDecodeFailure.Truncated, problem);
        int orientation = kind == ImageFormatKind.Png ? ContainerCheck.PngExifOrientation(data) : Orientation(info.Metadata.ExifProfile);
        return new ImageHeader(kind, w, h, orientation);
    }

    private static int Orientation(ExifProfile? exif)
    {
        if (exif is null) return 1;
        try
        {
            var v = exif.GetValue(ExifTag.Orientation);
            return v is not null && v.Value is >= 1 and <= 8 ? v.Value : 1;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return 1; // an unreadable EXIF block does not make the picture unusable
        }
    }

    private static Configuration ConfigFor(ImageDecodeOptions options)
    {
        int limit = options.EffectiveBufferMegabytes;
        return Configs.GetOrAdd(limit, mb =>
        {
            var c = new Configuration(new PngConfigurationModule(), new JpegConfigurationModule(), new GifConfigurationModule(),
                new BmpConfigurationModule(), new WebpConfigurationModule())
            {
                MemoryAllocator = MemoryAllocator.Create(new MemoryAllocatorOptions { AllocationLimitMegabytes = mb, MaximumPoolSizeMegabytes = 0 }),
            };
            c.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { MaxFrames = 1 });
            // PNG text and profile chunks are deflated and the decoder inflates them without a bound (a 400 KB zTXt
            // chunk inflates to gigabytes): skip PNG metadata; the eXIf orientation is read by ContainerCheck
            c.ImageFormatsManager.SetDecoder(PngFormat.Instance, new PngDecoder { IgnoreMetadata = true });
            return c;
        });
    }

    /// <summary>Copies the first frame into RGB, compositing alpha over the background and applying the orientation.</summary>
    private static RgbImage ToRgb(Image<Rgba32> image, int orientation, (byte R, byte G, byte B) bg)
    {
        int w = image.Width, h = image.Height;
        bool swap = orientation is >= 5 and <= 8;
        int ow = swap ? h : w, oh = swap ? w : h;
        var dst = new RgbImage(ow, oh);
        var p = dst.Pixels;
        image.ProcessPixelRows(acc =>
        {
            for (int y = 0; y < h; y++)
            {
                var row = acc.GetRowSpan(y);
                for (int x = 0; x < w; x++)
                {
                    var px = row[x];
                    // where source pixel (x, y) lands in the displayed image
                    (int dx, int dy) = orientation switch
                    {
                        2 => (w - 1 - x, y),
                        3 => (w - 1 - x, h - 1 - y),
                        4 => (x, h - 1 - y),
                        5 => (y, x),
                        6 => (h - 1 - y, x),
                        7 => (h - 1 - y, w - 1 - x),
                        8 => (y, w - 1 - x),
                        _ => (x, y),
                    };
                    int o = (dy * ow + dx) * 3;
                    int a = px.A;
                    if (a == 255)
                    {
                        p[o] = px.R; p[o + 1] = px.G; p[o + 2] = px.B;
                    }
                    else
                    {
                        int ia = 255 - a;
                        p[o] = (byte)((px.R * a + bg.R * ia + 127) / 255);
                        p[o + 1] = (byte)((px.G * a + bg.G * ia + 127) / 255);
                        p[o + 2] = (byte)((px.B * a + bg.B * ia + 127) / 255);
                    }
                }
            }
        });
        return dst;
    }
}
