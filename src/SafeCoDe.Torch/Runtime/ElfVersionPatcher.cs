using System.Buffers.Binary;
using System.Text;

namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// Marks one version requirement of an ELF64 little-endian shared object weak (VER_FLG_WEAK in the vna_flags of its
/// .gnu.version_r entry). The dynamic loader then accepts the file on a libstdc++ that lacks that version, and the
/// symbols bound to it resolve by name and version from whatever library provides them (our compat shim).
/// </summary>
public static class ElfVersionPatcher
{
    private const uint SHT_GNU_verneed = 0x6ffffffe;
    private const ushort VER_FLG_WEAK = 0x2;

    /// <summary>Result of inspecting a file for a version requirement.</summary>
    public enum NeedState
    {
        /// <summary>The file does not require the version.</summary>
        Absent,
        /// <summary>The file requires it; loading fails where it is missing.</summary>
        Strong,
        /// <summary>The requirement is marked VER_FLG_WEAK; loading succeeds without it.</summary>
        Weak,
    }

    /// <summary>Finds the requirement <paramref name="version"/> and reports whether it is absent, strong or weak.</summary>
    public static NeedState Inspect(byte[] elf, string version) => Find(elf, version, out _) switch
    {
        null => NeedState.Absent,
        var flags when (flags.Value & VER_FLG_WEAK) != 0 => NeedState.Weak,
        _ => NeedState.Strong,
    };

    /// <summary>Sets VER_FLG_WEAK on the requirement; returns false when the file does not require that version.</summary>
    public static bool MarkWeak(byte[] elf, string version)
    {
        var flags = Find(elf, version, out var flagsOffset);
        if (flags is null) return false;
        BinaryPrimitives.WriteUInt16LittleEndian(elf.AsSpan(flagsOffset), (ushort)(flags.Value | VER_FLG_WEAK));
        return true;
    }

    private static ushort? Find(byte[] elf, string version, out int flagsOffset)
    {
        flagsOffset = -1;
        var s = elf.AsSpan();
        if (s.Length < 64 || s[0] != 0x7f || s[1] != (byte)'E' || s[2] != (byte)'L' || s[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (s[4] != 2 || s[5] != 1)
            throw new InvalidDataException("only 64-bit little-endian ELF files are supported");
        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(s[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(s[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(s[0x3C..]);
        if (shentsize < 64 || shoff + (ulong)(shentsize * shnum) > (ulong)s.Length)
            throw new InvalidDataException("ELF section header table out of range");

        (ulong off, ulong size, uint link, uint type, ulong info) Section(int i)
        {
            var h = elf.AsSpan(checked((int)shoff + i * shentsize), shentsize);
            return (BinaryPrimitives.ReadUInt64LittleEndian(h[0x18..]), BinaryPrimitives.ReadUInt64LittleEndian(h[0x20..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(h[0x28..]), BinaryPrimitives.ReadUInt32LittleEndian(h[0x04..]),
                    BinaryPrimitives.ReadUInt32LittleEndian(h[0x2C..]));
        }

        for (int i = 0; i < shnum; i++)
        {
            var sec = Section(i);
            if (sec.type != SHT_GNU_verneed) continue;
            var strtab = Section((int)sec.link);
            int count = (int)sec.info; // number of Verneed entries
            int vn = checked((int)sec.off);
            for (int n = 0; n < count; n++)
            {
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(s[(vn + 2)..]);
                int aux = vn + (int)BinaryPrimitives.ReadUInt32LittleEndian(s[(vn + 8)..]);
                for (int a = 0; a < cnt; a++)
                {
                    ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(s[(aux + 4)..]);
                    uint nameOff = BinaryPrimitives.ReadUInt32LittleEndian(s[(aux + 8)..]);
                    if (ReadCString(s, checked((int)(strtab.off + nameOff))) == version)
                    {
                        flagsOffset = aux + 4;
                        return flags;
                    }
                    uint next = BinaryPrimitives.ReadUInt32LittleEndian(s[(aux + 12)..]);
                    if (next == 0) break;
                    aux += (int)next;
                }
                uint vnNext = BinaryPrimitives.ReadUInt32LittleEndian(s[(vn + 12)..]);
                if (vnNext == 0) break;
                vn += (int)vnNext;
            }
        }
        return null;
    }

    private static string ReadCString(ReadOnlySpan<byte> s, int at)
    {
        int end = s[at..].IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? s[at..] : s.Slice(at, end));
    }
}
