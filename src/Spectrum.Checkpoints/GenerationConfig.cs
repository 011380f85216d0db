// What a model folder's generation_config.json sets for generation: the ids that end it, greedy or sampled, and sampling's knobs.
namespace Spectrum.Checkpoints;

/// <summary>
/// The keys of transformers' GenerationConfig that decide how text is generated, with transformers' defaults for the
/// ones a file leaves out (greedy; when sampling, temperature 1, top-k 50, top-p 1). Other keys are ignored.
/// </summary>
public sealed record GenerationConfig
{
    public const string FileName = "generation_config.json";

    /// <summary>transformers' defaults, for a folder without the file.</summary>
    public static GenerationConfig Default { get; } = new();

    /// <summary>Generation ends at any of these (<c>eos_token_id</c>: one id or a list).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary><c>do_sample</c>: draw the next token instead of taking the most likely one.</summary>
    public bool DoSample { get; init; }

    public double Temperature { get; init; } = 1.0;

    /// <summary>0 keeps every token.</summary>
    public int TopK { get; init; } = 50;

    public double TopP { get; init; } = 1.0;

    /// <summary><c>max_new_tokens</c>, when the file sets it.</summary>
    public int? MaxNewTokens { get; init; }

    /// <summary>The folder's generation_config.json, or <see cref="Default"/> when it has none.</summary>
    /// <exception cref="CheckpointException">The file exists but cannot be read or holds a key of the wrong type.</exception>
    public static GenerationConfig Read(string modelFolder)
    {
        string path = Path.GetFullPath(Path.Combine(modelFolder, FileName));
        if (!File.Exists(path))
            return Default;
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(CheckpointError.FileNotReadable, path, null,
                $"{path}: cannot read it ({failure.Message}). Check its permissions, or remove it to use the defaults.", failure);
        }
        return Parse(json, path);
    }

    /// <param name="sourcePath">Where the JSON came from; used in error messages.</param>
    /// <exception cref="CheckpointException">Not a JSON object, or a key of the wrong type.</exception>
    public static GenerationConfig Parse(string json, string sourcePath)
    {
        var reader = new JsonConfigReader(JsonConfigReader.ParseObject(json, sourcePath), sourcePath);
        var config = new GenerationConfig
        {
            EosTokenIds = reader.OptionalIds("eos_token_id") ?? [],
            DoSample = reader.OptionalBool("do_sample") ?? false,
            Temperature = reader.OptionalDouble("temperature") ?? Default.Temperature,
            TopK = reader.OptionalNonNegativeInt("top_k") ?? Default.TopK,
            TopP = reader.OptionalDouble("top_p") ?? Default.TopP,
            MaxNewTokens = reader.OptionalPositiveInt("max_new_tokens"),
        };
        if (config.DoSample && !(config.Temperature > 0))
            throw reader.Invalid("temperature", "a positive number when do_sample is true", config.Temperature.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (!(config.TopP > 0 && config.TopP <= 1))
            throw reader.Invalid("top_p", "a number in (0, 1]", config.TopP.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return config;
    }
}
