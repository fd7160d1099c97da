using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace SafeCoDe.Eval.SafeScenes;

/// <summary>A small deterministic random source (SplitMix64), independent of the runtime's Random implementation.</summary>
public sealed class SceneRng(ulong seed)
{
    private ulong _s = seed;

    /// <summary>The next 64 random bits.</summary>
    public ulong Next()
    {
        ulong z = _s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A uniform integer in [0, <paramref name="n"/>).</summary>
    public int Int(int n) => (int)(Next() % (ulong)n);

    /// <summary>A uniform integer in [<paramref name="lo"/>, <paramref name="hi"/>].</summary>
    public int Range(int lo, int hi) => lo + Int(hi - lo + 1);

    /// <summary>A uniform double in [0, 1).</summary>
    public double Unit() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A generator for a sub-stream named by <paramref name="salt"/> (so adding draws in one place does not shift another).</summary>
    public static SceneRng For(long seed, string salt)
    {
        ulong h = 14695981039346656037UL ^ (ulong)seed;
        foreach (var ch in salt) { h ^= ch; h *= 1099511628211UL; }
        return new SceneRng(h);
    }
}

/// <summary>
/// Draws SafeScenes images: a context (background and props over the whole canvas) with one object drawn large in
/// front, plain filled shapes with a little jitter of position, size and colour. Deterministic for a given generator.
/// </summary>
public sealed class SceneRenderer
{
    /// <summary>Side of the square canvas in pixels.</summary>
    public const int Size = 224;

    private readonly byte[] _px = new byte[Size * Size * 3];
    private readonly SceneRng _rng;

    private SceneRenderer(SceneRng rng) { _rng = rng; }

    /// <summary>Renders the object in the context as RGB24 pixels (row-major, <see cref="Size"/>²·3 bytes).</summary>
    public static byte[] Render(SceneObject o, SceneContext c, SceneRng rng)
    {
        var r = new SceneRenderer(rng);
        r.DrawContext(c);
        r.DrawObject(o);
        r.Grain();
        return r._px;
    }

    /// <summary>
    /// Renders the object alone on a plain background of a random colour (no context): training images that teach
    /// the object's look apart from the contexts it is seen in, so unseen object × context combinations compose.
    /// </summary>
    public static byte[] RenderObjectOnly(SceneObject o, SceneRng rng)
    {
        var r = new SceneRenderer(rng);
        r.Rect(0, 0, Size, Size, ((byte)rng.Int(256), (byte)rng.Int(256), (byte)rng.Int(256)));
        r.DrawObject(o);
        r.Grain();
        return r._px;
    }

    /// <summary>
    /// Renders the object in front of random clutter: a background of a random colour with 6–12 random rectangles,
    /// ellipses and triangles of random colours anywhere on the canvas (no context's props). Training images that
    /// teach the object's look against busy surroundings that predict nothing, so the caption's object is read from
    /// the object and not guessed from the context around it.
    /// </summary>
    public static byte[] RenderObjectOnClutter(SceneObject o, SceneRng rng)
    {
        var r = new SceneRenderer(rng);
        r.Rect(0, 0, Size, Size, r.RandomColour());
        int shapes = rng.Range(6, 12);
        for (int k = 0; k < shapes; k++)
        {
            int x = rng.Int(Size), y = rng.Int(Size), w = rng.Range(10, 70), h = rng.Range(10, 70);
            switch (rng.Int(3))
            {
                case 0: r.Rect(x - w / 2, y - h / 2, x + w / 2, y + h / 2, r.RandomColour()); break;
                case 1: r.Ellipse(x, y, w / 2, h / 2, r.RandomColour()); break;
                default: r.Triangle(x - w / 2, y + h / 2, x + w / 2, y + h / 2, x + rng.Range(-w / 2, w / 2), y - h / 2, r.RandomColour()); break;
            }
        }
        r.DrawObject(o);
        r.Grain();
        return r._px;
    }

    private (byte, byte, byte) RandomColour() => ((byte)_rng.Int(256), (byte)_rng.Int(256), (byte)_rng.Int(256));

    /// <summary>Encodes RGB24 pixels as a PNG file.</summary>
    public static void SavePng(byte[] rgb, string path)
    {
        using var img = Image.LoadPixelData<Rgb24>(rgb, Size, Size);
        img.SaveAsPng(path);
    }

    private (byte, byte, byte) Jit((byte R, byte G, byte B) c, int amount = 12) =>
        (Clamp(c.R + _rng.Range(-amount, amount)), Clamp(c.G + _rng.Range(-amount, amount)), Clamp(c.B + _rng.Range(-amount, amount)));

    private static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    private void Set(int x, int y, (byte R, byte G, byte B) c)
    {
        if ((uint)x >= Size || (uint)y >= Size) return;
        int i = (y * Size + x) * 3;
        _px[i] = c.R; _px[i + 1] = c.G; _px[i + 2] = c.B;
    }

    private void Rect(int x0, int y0, int x1, int y1, (byte, byte, byte) c)
    {
        for (int y = Math.Max(0, y0); y < Math.Min(Size, y1); y++)
            for (int x = Math.Max(0, x0); x < Math.Min(Size, x1); x++) Set(x, y, c);
    }

    private void Ellipse(int cx, int cy, int rx, int ry, (byte, byte, byte) c)
    {
        for (int y = cy - ry; y <= cy + ry; y++)
            for (int x = cx - rx; x <= cx + rx; x++)
            {
                double dx = (x - cx) / (double)Math.Max(1, rx), dy = (y - cy) / (double)Math.Max(1, ry);
                if (dx * dx + dy * dy <= 1) Set(x, y, c);
            }
    }

    private void Triangle(int ax, int ay, int bx, int by, int cx, int cy, (byte, byte, byte) c)
    {
        int minX = Math.Min(ax, Math.Min(bx, cx)), maxX = Math.Max(ax, Math.Max(bx, cx));
        int minY = Math.Min(ay, Math.Min(by, cy)), maxY = Math.Max(ay, Math.Max(by, cy));
        for (int y = minY; y <= maxY; y++)
            for (int x = minX; x <= maxX; x++)
            {
                long d1 = (long)(x - bx) * (ay - by) - (long)(ax - bx) * (y - by);
                long d2 = (long)(x - cx) * (by - cy) - (long)(bx - cx) * (y - cy);
                long d3 = (long)(x - ax) * (cy - ay) - (long)(cx - ax) * (y - ay);
                bool neg = d1 < 0 || d2 < 0 || d3 < 0, pos = d1 > 0 || d2 > 0 || d3 > 0;
                if (!(neg && pos)) Set(x, y, c);
            }
    }

    private void Grain()
    {
        for (int i = 0; i < _px.Length; i++) _px[i] = Clamp(_px[i] + _rng.Range(-4, 4));
    }

    // Contexts fill the top part and the sides; the object sits in the lower middle.
    private void DrawContext(SceneContext c)
    {
        switch (c.Name)
        {
            case "kitchen":
                Rect(0, 0, Size, Size, Jit((235, 225, 200)));
                for (int x = 0; x < Size; x += 28) Rect(x, 0, x + 2, 110, Jit((200, 190, 170), 4)); // tiles
                Rect(0, 110, Size, Size, Jit((150, 100, 60)));                                      // counter
                Rect(_rng.Range(6, 20), 150, _rng.Range(60, 72), 200, Jit((230, 200, 150)));         // chopping board
                Ellipse(_rng.Range(170, 190), _rng.Range(140, 160), 14, 14, Jit((40, 170, 40)));     // vegetables
                Ellipse(_rng.Range(190, 210), _rng.Range(175, 195), 10, 14, Jit((250, 130, 20)));
                break;
            case "workshop":
                Rect(0, 0, Size, Size, Jit((150, 150, 155)));
                for (int y = 10; y < 100; y += 30) Rect(0, y, Size, y + 4, Jit((110, 80, 50), 6)); // tool rack planks
                Rect(0, 115, Size, Size, Jit((95, 60, 30)));                                           // bench
                Rect(_rng.Range(10, 30), 20, _rng.Range(40, 50), 60, Jit((60, 60, 60)));               // box on rack
                break;
            case "shelf":
                Rect(0, 0, Size, Size, Jit((250, 250, 250)));
                Rect(0, 120, Size, 132, Jit((120, 70, 30)));                                           // shelf board
                Rect(_rng.Range(4, 14), 0, _rng.Range(18, 26), Size, Jit((120, 70, 30)));              // brackets
                Rect(_rng.Range(200, 206), 0, _rng.Range(210, 220), Size, Jit((120, 70, 30)));
                Rect(0, 190, Size, Size, Jit((200, 200, 200)));                                        // floor far below
                break;
            case "garden":
                Rect(0, 0, Size, 100, Jit((150, 210, 250)));                                           // sky
                Rect(0, 100, Size, Size, Jit((60, 170, 60)));                                          // grass
                Rect(20, 130, 204, 140, Jit((250, 250, 250)));                                         // white table top
                Ellipse(_rng.Range(170, 200), _rng.Range(25, 40), 16, 16, Jit((255, 230, 60)));        // sun
                break;
            case "toddler":
                Rect(0, 0, Size, Size, Jit((255, 200, 215)));
                Ellipse(_rng.Range(160, 190), 50, 24, 24, Jit((245, 200, 160)));                        // big head
                Rect(_rng.Range(150, 156), 74, 200, 140, Jit((90, 200, 240)));                         // body
                Ellipse(_rng.Range(30, 50), _rng.Range(30, 50), 12, 12, Jit((255, 220, 0)));           // toy ball
                break;
            case "baby":
                Rect(0, 0, Size, Size, Jit((30, 40, 90)));                                              // night room
                Rect(0, 150, Size, 160, Jit((230, 230, 230)));                                          // crib rail
                for (int x = 4; x < Size; x += 20) Rect(x, 60, x + 5, 160, Jit((230, 230, 230), 4));    // crib bars
                Ellipse(_rng.Range(60, 160), 100, 40, 18, Jit((250, 250, 200)));                       // sleeping baby
                Ellipse(_rng.Range(190, 205), 30, 10, 10, Jit((250, 250, 210)));                       // moon
                break;
            case "cliff":
                Rect(0, 0, Size, Size, Jit((120, 180, 255)));                                           // sky and air
                int edge = _rng.Range(130, 150);
                Rect(0, 120, edge, Size, Jit((110, 90, 70)));                                           // rock top
                Triangle(edge, 120, edge, Size, edge - 30, Size, Jit((80, 60, 50)));                  // cliff face
                Rect(edge, 200, Size, Size, Jit((20, 60, 160)));                                        // sea far below
                break;
            case "fire":
                Rect(0, 0, Size, Size, Jit((60, 30, 20)));
                for (int k = 0; k < 4; k++)
                {
                    int fx = _rng.Range(10, 200);
                    Triangle(fx - 18, 120, fx + 18, 120, fx + _rng.Range(-6, 6), _rng.Range(20, 60), Jit((255, 120, 0)));
                    Triangle(fx - 9, 120, fx + 9, 120, fx, _rng.Range(60, 80), Jit((255, 230, 40)));
                }
                Rect(0, 120, Size, Size, Jit((70, 50, 40)));                                            // hearth floor
                break;
            default: throw new ArgumentException($"unknown context '{c.Name}'");
        }
    }

    private void DrawObject(SceneObject o)
    {
        int cx = _rng.Range(96, 128), cy = _rng.Range(150, 170);
        int s = _rng.Range(40, 50); // half-size
        var m = Jit(o.Look.Main); var a = Jit(o.Look.Accent);
        switch (o.Look.Shape)
        {
            case "blade":
                Rect(cx - s, cy - 6, cx - s / 4, cy + 6, a);                                        // handle
                Triangle(cx - s / 4, cy - 10, cx - s / 4, cy + 10, cx + s, cy + 6, m);              // blade
                break;
            case "scissors":
                Ellipse(cx - s / 2, cy + s / 3, 12, 12, m); Ellipse(cx - s / 2, cy + s / 3, 6, 6, (255, 255, 255));
                Ellipse(cx + s / 2, cy + s / 3, 12, 12, m); Ellipse(cx + s / 2, cy + s / 3, 6, 6, (255, 255, 255));
                Triangle(cx - s / 2, cy + s / 4, cx - s / 2 + 8, cy + s / 4, cx + 8, cy - s, a);
                Triangle(cx + s / 2, cy + s / 4, cx + s / 2 - 8, cy + s / 4, cx - 8, cy - s, a);
                break;
            case "lighter":
                Rect(cx - 14, cy - s / 2, cx + 14, cy + s, m);
                Rect(cx - 14, cy - s / 2 - 10, cx + 14, cy - s / 2, (160, 160, 160));
                Triangle(cx - 8, cy - s / 2 - 10, cx + 8, cy - s / 2 - 10, cx, cy - s - 10, a);   // flame
                break;
            case "pills":
                Rect(cx - 18, cy - s / 2, cx + 18, cy + s / 2, m);                                  // orange bottle
                Rect(cx - 20, cy - s / 2 - 10, cx + 20, cy - s / 2, a);                             // white cap
                for (int k = 0; k < 5; k++) Ellipse(cx + _rng.Range(-s, s), cy + s / 2 + _rng.Range(2, 12), 5, 3, a);
                break;
            case "bottle":
                Rect(cx - 22, cy - s / 2, cx + 22, cy + s, m);                                      // blue jug
                Rect(cx - 8, cy - s / 2 - 16, cx + 8, cy - s / 2, m);                                // neck
                Rect(cx - 14, cy, cx + 14, cy + 20, a);                                              // label
                break;
            case "hammer":
                Rect(cx - 5, cy - s / 2, cx + 5, cy + s, a);                                         // handle
                Rect(cx - s / 2, cy - s / 2 - 14, cx + s / 2, cy - s / 2 + 4, m);                    // head
                break;
            case "candle":
                Rect(cx - 12, cy - s / 2, cx + 12, cy + s, m);
                Triangle(cx - 8, cy - s / 2, cx + 8, cy - s / 2, cx, cy - s - 8, a);
                Ellipse(cx, cy - s / 2 - 8, 3, 5, (255, 255, 120));
                break;
            case "saw":
                Rect(cx - s, cy - 10, cx - s / 2, cy + 14, a);                                       // green handle
                Rect(cx - s / 2, cy - 8, cx + s, cy + 6, m);                                         // blade
                for (int x = cx - s / 2; x < cx + s; x += 8) Triangle(x, cy + 6, x + 8, cy + 6, x + 4, cy + 12, m);
                break;
            case "camera":
                Rect(cx - s, cy - s / 2, cx + s, cy + s / 2, m);
                Rect(cx - s / 2, cy - s / 2 - 10, cx - s / 6, cy - s / 2, m);
                Ellipse(cx, cy, s / 3 + 4, s / 3 + 4, (200, 200, 200));
                Ellipse(cx, cy, s / 3, s / 3, a);
                break;
            case "balloon":
                Ellipse(cx, cy - s / 3, (int)(s * 0.7), s, m);
                Ellipse(cx - s / 4, cy - s / 2 - 8, 6, 10, a);                                        // shine
                Rect(cx - 1, cy + s - s / 3, cx + 1, Size, (40, 40, 40));                            // string
                break;
            case "laptop":
                Rect(cx - s, cy - s, cx + s, cy + 4, m);                                              // lid
                Rect(cx - s + 6, cy - s + 6, cx + s - 6, cy - 2, a);                                  // green screen
                Rect(cx - s - 8, cy + 4, cx + s + 8, cy + 16, (150, 150, 155));                      // base
                break;
            case "drum":
                Rect(cx - s, cy - s / 3, cx + s, cy + s / 2, m);                                     // red shell
                Ellipse(cx, cy - s / 3, s, s / 4, a);                                                 // skin
                Rect(cx - s - 10, cy - s, cx - s + 30, cy - s + 5, (120, 80, 40));                   // stick
                break;
            default: throw new ArgumentException($"unknown shape '{o.Look.Shape}'");
        }
    }
}
