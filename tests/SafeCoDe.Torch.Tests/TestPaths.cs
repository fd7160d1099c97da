namespace SafeCoDe.Torch.Tests;

/// <summary>Locations of test inputs inside the test output folder (copied there by the project file).</summary>
public static class TestPaths
{
    public static string Root => AppContext.BaseDirectory;
    public static string TestData(params string[] parts) => Path.Combine([Root, "TestData", .. parts]);

    /// <summary>A fresh scratch folder under the system temp folder, removed by the caller.</summary>
    public static string NewTempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "safecode-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }
}
