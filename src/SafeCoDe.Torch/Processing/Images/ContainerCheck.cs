using System.Buffers.Binary;
using System.Text;

namespace SafeCoDe.Torch.Processing.Images;

#pragma warning disable CS1591 // self-describing format names
/// <summary>The encoded formats the decoder accepts.</summary>
public enum ImageFormatKind { Jpeg, Png, WebP, Bmp, Gif }
#pragma warning restore CS1591

/// <summary>
/// Format sniffing and structural checks done before decoding: the decoders tolerate missing data (they fill the
/// rest of the image with a flat color), so a file that ends early is found here by walking its container, not by
/// the decoder. Each check returns null when the structure is complete, else the reason.
/// </summary>
internal static class ContainerCheck
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public static ImageFormatKind? Sniff(ReadOnlySpan<byte> d)
    {
        if (d.Length >= 8 && d[..8].SequenceEqual(PngSignature)) return ImageFormatKind.Png;
        if (d.Length >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormatKind.Jpeg;
        if (d.Length >= 12 && d[..4].SequenceEqual("RIFF"u8) && d.Slice(8, 4).SequenceEqual("WEBP"u8)) return ImageFormatKind.WebP;
        if (d.Length >= 6 && (d[..6].SequenceEqual("GIF87a"u8) || d[..6].SequenceEqual("GIF89a"u8))) return ImageFormatKind.Gif;
        if (d.Length >= 2 && d[0] == (byte)'B' && d[1] == (byte)'M') return ImageFormatKind.Bmp;
        return null;
    }

    public static string Describe(ReadOnlySpan<byte> d)
    {
        if (d.Length == 0) return "the file is empty";
        var sb = new StringBuilder("it does not start like a JPEG, PNG, WebP, BMP or GIF file (first bytes:");
        foreach (var b in d[..Math.Min(8, d.Length)]) sb.Append($" {b:X2}");
        return sb.Append(')').ToString();
    }

    public static string? Check(ImageFormatKind kind, ReadOnlySpan<byte> d) => kind switch
    {
        ImageFormatKind.Png => CheckPng(d),
        ImageFormatKind.Jpeg => CheckJpeg(d),
        ImageFormatKind.WebP => CheckWebP(d),
        ImageFormatKind.Gif => CheckGif(d),
        ImageFormatKind.Bmp => CheckBmp(d),
        _ => null,
    };

    /// <summary>Chunks from the signature to IEND, each wholly inside the file; IHDR first.</summary>
    private static string? CheckPng(ReadOnlySpan<byte> d)
    {
        long pos = 8;
        bool first = true;
        while (true)
        {
            if (pos + 8 > d.Length) return $"the file ends at byte {d.Length} before the IEND chunk";
            uint len = BinaryPrimitives.ReadUInt32BigEndian(d[(int)pos..]);
            var type = Encoding.ASCII.GetString(d.Slice((int)pos + 4, 4));
            if (first && type != "IHDR") return $"the first chunk is '{type}', not IHDR";
            first = false;
            if (len > int.MaxValue) return $"chunk '{type}' at byte {pos} declares an impossible length {len}";
            long end = pos + 12 + len;
            if (end > d.Length) return $"the file ends at byte {d.Length} inside the '{type}' chunk that starts at byte {pos} and needs {len} data bytes";
            if (type == "IEND") return null;
            pos = end;
        }
    }

    /// <summary>The orientation tag of a PNG's eXIf chunk (raw TIFF-structured EXIF), or 1 when there is none or it is unreadable.</summary>
    public static int PngExifOrientation(ReadOnlySpan<byte> d)
    {
        long pos = 8;
        while (pos + 12 <= d.Length)
        {
            uint len = BinaryPrimitives.ReadUInt32BigEndian(d[(int)pos..]);
            if (len > d.Length - pos - 12) return 1;
            var type = d.Slice((int)pos + 4, 4);
            if (type.SequenceEqual("IDAT"u8) || type.SequenceEqual("IEND"u8)) return 1; // eXIf must come before the image data
            if (type.SequenceEqual("eXIf"u8)) return ExifOrientation(d.Slice((int)pos + 8, (int)len));
            pos += 12 + len;
        }
        return 1;
    }

    /// <summary>Orientation (tag 0x0112) from IFD0 of a TIFF-structured EXIF block; 1 when absent or invalid.</summary>
    internal static int ExifOrientation(ReadOnlySpan<byte> e)
    {
        if (e.Length >= 6 && e[..6].SequenceEqual("Exif\0\0"u8)) e = e[6..];
        if (e.Length < 8) return 1;
        bool little = e[0] == (byte)'I' && e[1] == (byte)'I';
        if (!little && !(e[0] == (byte)'M' && e[1] == (byte)'M')) return 1;
        ushort U16(ReadOnlySpan<byte> s) => little ? BinaryPrimitives.ReadUInt16LittleEndian(s) : BinaryPrimitives.ReadUInt16BigEndian(s);
        uint U32(ReadOnlySpan<byte> s) => little ? BinaryPrimitives.ReadUInt32LittleEndian(s) : BinaryPrimitives.ReadUInt32BigEndian(s);
        if (U16(e[2..]) != 42) return 1;
        uint ifd = U32(e[4..]);
        if (ifd > e.Length - 2) return 1;
        int count = U16(e[(int)ifd..]);
        for (int i = 0; i < count; i++)
        {
            long entry = ifd + 2 + 12L * i;
            if (entry + 12 > e.Length) return 1;
            var en = e.Slice((int)entry, 12);
            if (U16(en) != 0x0112) continue;
            if (U16(en[2..]) != 3 || U32(en[4..]) != 1) return 1; // SHORT, one value
            int v = U16(en[8..]);
            return v is >= 1 and <= 8 ? v : 1;
        }
        return 1;
    }

    /// <summary>Marker segments from SOI through the entropy-coded scans to EOI.</summary>
    private static string? CheckJpeg(ReadOnlySpan<byte> d)
    {
        int pos = 2;
        bool sawScan = false;
        while (true)
        {
            if (pos >= d.Length) return sawScan ? $"the file ends at byte {d.Length} without an EOI marker (the scan data is incomplete)"
                                                : $"the file ends at byte {d.Length} before any image data";
            if (d[pos] != 0xFF) return $"expected a marker at byte {pos}, found {d[pos]:X2}";
            while (pos < d.Length && d[pos] == 0xFF) pos++; // fill bytes
            if (pos >= d.Length) continue;
            byte m = d[pos++];
            if (m == 0xD9) return sawScan ? null : "the file has an EOI marker but no image data";
            if (m == 0x01 || m is >= 0xD0 and <= 0xD7) continue;
            if (m == 0x00) return $"invalid marker FF00 at byte {pos - 2}";
            if (pos + 2 > d.Length) return $"the file ends at byte {d.Length} inside the FF{m:X2} segment header";
            int len = BinaryPrimitives.ReadUInt16BigEndian(d[pos..]);
            if (len < 2) return $"segment FF{m:X2} at byte {pos - 2} has an invalid length {len}";
            if (pos + len > d.Length) return $"the file ends at byte {d.Length} inside the FF{m:X2} segment that starts at byte {pos - 2}";
            pos += len;
            if (m != 0xDA) continue;
            sawScan = true;
            // entropy-coded data: runs until an FF followed by something other than 00, FF or a restart marker
            while (true)
            {
                int ff = d[pos..].IndexOf((byte)0xFF);
                if (ff < 0) { pos = d.Length; break; }
                pos += ff;
                if (pos + 1 >= d.Length) { pos = d.Length; break; }
                byte next = d[pos + 1];
                if (next == 0x00 || next is >= 0xD0 and <= 0xD7) { pos += 2; continue; }
                if (next == 0xFF) { pos += 1; continue; }
                break; // a marker: back to the segment loop
            }
        }
    }

    /// <summary>The RIFF container holds as many bytes as its header declares.</summary>
    private static string? CheckWebP(ReadOnlySpan<byte> d)
    {
        uint riff = BinaryPrimitives.ReadUInt32LittleEndian(d[4..]);
        long need = 8L + riff;
        if (riff < 4) return $"the RIFF header declares an impossible size {riff}";
        if (need > d.Length) return $"the RIFF header declares {need} bytes but the file has {d.Length}";
        return null;
    }

    /// <summary>Header, color tables and extensions up to the end of the first frame's image data.</summary>
    private static string? CheckGif(ReadOnlySpan<byte> d)
    {
        if (d.Length < 13) return $"the file ends at byte {d.Length} inside the GIF header";
        int pos = 13;
        byte flags = d[10];
        if ((flags & 0x80) != 0) pos += 3 * (1 << ((flags & 7) + 1));
        while (true)
        {
            if (pos >= d.Length) return $"the file ends at byte {d.Length} before the first frame's image data is complete";
            byte b = d[pos++];
            if (b == 0x3B) return "the file has no image frame";
            if (b == 0x21)
            {
                if (pos >= d.Length) return $"the file ends at byte {d.Length} inside an extension block";
                pos++; // label
                if (!SkipSubBlocks(d, ref pos)) return $"the file ends at byte {d.Length} inside an extension block";
                continue;
            }
            if (b != 0x2C) return $"unexpected block introducer {b:X2} at byte {pos - 1}";
            if (pos + 9 > d.Length) return $"the file ends at byte {d.Length} inside an image descriptor";
            byte lflags = d[pos + 8];
            pos += 9;
            if ((lflags & 0x80) != 0) pos += 3 * (1 << ((lflags & 7) + 1));
            pos++; // LZW minimum code size
            if (pos > d.Length || !SkipSubBlocks(d, ref pos)) return $"the file ends at byte {d.Length} inside the first frame's image data";
            return null;
        }
    }

    private static bool SkipSubBlocks(ReadOnlySpan<byte> d, ref int pos)
    {
        while (true)
        {
            if (pos >= d.Length) return false;
            int n = d[pos++];
            if (n == 0) return true;
            pos += n;
            if (pos > d.Length) return false;
        }
    }

    /// <summary>For uncompressed and bit-field BMPs the pixel array fits in the file.</summary>
    private static string? CheckBmp(ReadOnlySpan<byte> d)
    {
        if (d.Length < 30) return $"the file ends at byte {d.Length} inside the BMP headers";
        uint offBits = BinaryPrimitives.ReadUInt32LittleEndian(d[10..]);
        uint dibSize = BinaryPrimitives.ReadUInt32LittleEndian(d[14..]);
        if (dibSize < 40) return null; // OS/2 core header: leave to the decoder
        if (d.Length < 14 + 40) return $"the file ends at byte {d.Length} inside the BMP headers";
        long width = BinaryPrimitives.ReadInt32LittleEndian(d[18..]);
        long height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(d[22..]));
        int bpp = BinaryPrimitives.ReadUInt16LittleEndian(d[28..]);
        uint compression = BinaryPrimitives.ReadUInt32LittleEndian(d[30..]);
        if (compression is not (0 or 3 or 6) || width <= 0 || width > int.MaxValue / 32 || bpp is 0 or > 32) return null;
        long stride = (width * bpp + 31) / 32 * 4;
        long need = offBits + stride * height;
        if (need > d.Length) return $"the pixel data needs {need} bytes but the file has {d.Length}";
        return null;
    }
}
